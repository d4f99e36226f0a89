"""PLX Spot-check (0x2A5E) and PLX Continuous (0x2A5F) Measurement, PLXS 1.0 layout.

Spot-check: flags, SpO2, PR (SFLOAT), [time stamp], [measurement status uint16], [device & sensor status uint24],
[pulse amplitude index SFLOAT]. Continuous: flags, SpO2/PR normal, [fast pair], [slow pair], then the same tail.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_simulators.encoders import Coded as EncCoded
from device_simulators.encoders import Special as EncSpecial
from device_simulators.encoders import encode_plx_continuous, encode_plx_spot_check
from device_simulators.encoders import plx as enc
from edge_agent.gatt import MalformedError, Skip, TruncatedError, decode_plx_continuous, decode_plx_spot_check
from edge_agent.gatt.plx import NO_MEASUREMENT_STATUS
from vitals import Kind


def test_minimal_spot_check() -> None:
    # 00 flags; 6100 = SpO2 97 %; 4800 = pulse rate 72 /min
    record = decode_plx_spot_check(bytes.fromhex("00 6100 4800"))
    assert [(m.kind, m.value, m.unit) for m in record.measurements] == [
        (Kind.SPO2, 97.0, "%"),
        (Kind.PULSE_RATE, 72.0, "/min"),
    ]
    assert (record.device_time, record.measurement_status, record.device_sensor_status) == (None, None, None)


def test_spot_check_with_every_field() -> None:
    # 0f flags: time stamp, measurement status, device & sensor status, PAI
    # 6200 SpO2 98; 4b00 PR 75; e8070c19071e00 2024-12-25 07:30:00
    # 8000 measurement status bit 7: validated data; 200000 sensor status bit 5: low perfusion
    # 19f0 = 25 × 10^-1 = 2.5 % pulse amplitude index
    record = decode_plx_spot_check(bytes.fromhex("0f 6200 4b00 e8070c19071e00 8000 200000 19f0"))
    assert [m.value for m in record.measurements] == [98.0, 75.0]
    assert record.device_time == datetime(2024, 12, 25, 7, 30)
    assert record.measurement_status == ("validated_data",)
    assert record.device_sensor_status == ("low_perfusion",)
    assert record.pulse_amplitude_index == 2.5
    assert all(m.flags == ("validated_data", "low_perfusion") for m in record.measurements)


def test_time_stamp_is_dropped_when_device_clock_is_not_set() -> None:
    # 11 flags: time stamp + device clock is not set
    record = decode_plx_spot_check(bytes.fromhex("11 6100 4800 d0070101000000"))
    assert record.device_clock_not_set is True
    assert record.device_time is None
    assert all(m.device_time is None for m in record.measurements)


@pytest.mark.parametrize(
    ("status_hex", "sensor_hex", "reason"),
    [
        ("0080", "000000", "invalid_measurement"),  # 0x8000 bit 15
        ("0020", "000000", "measurement_unavailable"),  # 0x2000 bit 13
        ("0004", "000000", "data_for_demonstration"),  # 0x0400 bit 10
        ("0008", "000000", "data_for_testing"),  # 0x0800 bit 11
        ("0000", "008000", "sensor_disconnected"),  # 0x008000 bit 15
        ("0000", "000800", "sensor_unconnected_to_user"),  # 0x000800 bit 11
    ],
)
def test_values_the_oximeter_disowns_are_skipped(status_hex: str, sensor_hex: str, reason: str) -> None:
    record = decode_plx_spot_check(bytes.fromhex(f"06 6100 4800 {status_hex} {sensor_hex}"))
    assert record.measurements == ()
    assert record.skipped == (Skip("spo2", reason), Skip("pulse_rate", reason))


def test_questionable_measurement_is_kept_with_a_flag() -> None:
    record = decode_plx_spot_check(bytes.fromhex("02 5a00 3c00 0040"))
    assert [m.flags for m in record.measurements] == [("questionable_measurement",)] * 2


def test_nan_spo2_is_skipped_and_pulse_rate_kept() -> None:
    record = decode_plx_spot_check(bytes.fromhex("00 ff07 4800"))
    assert [m.kind for m in record.measurements] == [Kind.PULSE_RATE]
    assert record.skipped == (Skip("spo2", "nan"),)


def test_continuous_with_fast_slow_and_tail() -> None:
    # 1f flags: fast, slow, measurement status, device & sensor status, PAI
    # normal 6100 4800 (97, 72); fast 6200 4900 (98, 73); slow 6000 4700 (96, 71)
    # 0000 status; 000000 sensor status; 19f0 PAI 2.5
    record = decode_plx_continuous(bytes.fromhex("1f 6100 4800 6200 4900 6000 4700 0000 000000 19f0"))
    assert [(m.kind, m.value, m.device_time) for m in record.measurements] == [
        (Kind.SPO2, 97.0, None),
        (Kind.PULSE_RATE, 72.0, None),
    ]
    assert record.fast == (98.0, 73.0)
    assert record.slow == (96.0, 71.0)
    assert (record.measurement_status, record.device_sensor_status, record.pulse_amplitude_index) == ((), (), 2.5)


def test_continuous_with_nan_in_fast_pair() -> None:
    record = decode_plx_continuous(bytes.fromhex("01 6100 4800 ff07 4900"))
    assert record.fast == (None, 73.0)
    assert record.skipped == (Skip("fast_spo2", "nan"),)


@pytest.mark.parametrize("hex_bytes", ["", "00 6100", "01 6100 4800", "02 6100 4800 00", "04 6100 4800 0000"])
def test_truncated_spot_checks_raise_truncated_error(hex_bytes: str) -> None:
    with pytest.raises(TruncatedError):
        decode_plx_spot_check(bytes.fromhex(hex_bytes))


@pytest.mark.parametrize("hex_bytes", ["02 6100 4800 6200", "08 6100 4800 0000", "10 6100 4800 19"])
def test_truncated_continuous_raise_truncated_error(hex_bytes: str) -> None:
    with pytest.raises(TruncatedError):
        decode_plx_continuous(bytes.fromhex(hex_bytes))


def test_trailing_bytes_are_malformed() -> None:
    with pytest.raises(MalformedError):
        decode_plx_spot_check(bytes.fromhex("00 6100 4800 00"))


values = st.builds(EncCoded, st.integers(0, 2045), st.integers(-1, 0)) | st.sampled_from(list(EncSpecial))
measurement_statuses = st.none() | st.lists(st.sampled_from(sorted(enc.MEASUREMENT_STATUS)), unique=True)
sensor_statuses = st.none() | st.lists(st.sampled_from(sorted(enc.DEVICE_SENSOR_STATUS)), unique=True)


def as_float(value: EncCoded | EncSpecial) -> float | None:
    return None if isinstance(value, EncSpecial) else float(Fraction(value.mantissa) * Fraction(10) ** value.exponent)


def expected_measurements(
    spo2: EncCoded | EncSpecial, rate: EncCoded | EncSpecial, status: list[str] | None, sensor: list[str] | None
) -> list[float]:
    if (set(status or ()) | set(sensor or ())) & NO_MEASUREMENT_STATUS:
        return []
    return [v for v in (as_float(spo2), as_float(rate)) if v is not None]


@given(
    values,
    values,
    st.none() | st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(lambda t: t.replace(microsecond=0)),
    st.booleans(),
    measurement_statuses,
    sensor_statuses,
    st.none() | values,
)
def test_encoded_spot_checks_decode_to_what_the_simulator_sent(
    spo2: EncCoded | EncSpecial,
    rate: EncCoded | EncSpecial,
    time_stamp: datetime | None,
    clock_not_set: bool,
    status: list[str] | None,
    sensor: list[str] | None,
    pai: EncCoded | EncSpecial | None,
) -> None:
    data = encode_plx_spot_check(
        spo2,
        rate,
        time_stamp=time_stamp,
        device_clock_not_set=clock_not_set,
        measurement_status=status,
        device_sensor_status=sensor,
        pulse_amplitude_index=pai,
    )
    record = decode_plx_spot_check(data)
    assert [m.value for m in record.measurements] == expected_measurements(spo2, rate, status, sensor)
    assert record.device_time == (None if clock_not_set else time_stamp)
    assert set(record.measurement_status or ()) == set(status or ())
    assert (record.measurement_status is None) == (status is None)
    assert set(record.device_sensor_status or ()) == set(sensor or ())
    assert record.pulse_amplitude_index == (None if pai is None else as_float(pai))


@given(
    values,
    values,
    st.none() | st.tuples(values, values),
    st.none() | st.tuples(values, values),
    measurement_statuses,
    sensor_statuses,
    st.none() | values,
)
def test_encoded_continuous_decode_to_what_the_simulator_sent(
    spo2: EncCoded | EncSpecial,
    rate: EncCoded | EncSpecial,
    fast: tuple[EncCoded | EncSpecial, EncCoded | EncSpecial] | None,
    slow: tuple[EncCoded | EncSpecial, EncCoded | EncSpecial] | None,
    status: list[str] | None,
    sensor: list[str] | None,
    pai: EncCoded | EncSpecial | None,
) -> None:
    data = encode_plx_continuous(
        spo2,
        rate,
        fast=fast,
        slow=slow,
        measurement_status=status,
        device_sensor_status=sensor,
        pulse_amplitude_index=pai,
    )
    record = decode_plx_continuous(data)
    assert [m.value for m in record.measurements] == expected_measurements(spo2, rate, status, sensor)
    assert record.fast == (None if fast is None else (as_float(fast[0]), as_float(fast[1])))
    assert record.slow == (None if slow is None else (as_float(slow[0]), as_float(slow[1])))
    assert set(record.device_sensor_status or ()) == set(sensor or ())
