"""Heart Rate Measurement (0x2A37): flags, uint8 ↔ uint16 rate, sensor contact, energy expended, RR intervals.

Vectors follow the HRS 1.0 layout: flags, uint8 or uint16 heart rate, optional uint16 energy (kJ), then uint16 RR
intervals in 1/1024 s until the end of the value.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_simulators.encoders import encode_heart_rate_measurement
from edge_agent.gatt import MalformedError, Skip, TruncatedError, decode_heart_rate_measurement
from vitals import Kind


def test_uint8_rate_without_contact_feature() -> None:
    # 00 flags: uint8 rate, contact detection not supported; 48 = 72 /min
    record = decode_heart_rate_measurement(bytes.fromhex("00 48"))
    assert [(m.kind, m.value, m.unit) for m in record.measurements] == [(Kind.HEART_RATE, 72.0, "/min")]
    assert record.sensor_contact is None
    assert record.measurements[0].device_time is None


def test_contact_detected_with_one_rr_interval() -> None:
    # 16 = contact supported (0x04) + detected (0x02) + RR present (0x10); 4b = 75 /min; 2a03 = 810/1024 s
    record = decode_heart_rate_measurement(bytes.fromhex("16 4b 2a03"))
    assert record.measurements[0].value == 75
    assert record.sensor_contact is True
    assert record.rr_intervals == (810 / 1024,)


def test_uint16_rate_with_energy_and_two_rr_intervals() -> None:
    # 19 = uint16 (0x01) + energy (0x08) + RR (0x10); 2c01 = 300; 3412 = 4660 kJ; 0004 = 1.0 s, 0002 = 0.5 s
    record = decode_heart_rate_measurement(bytes.fromhex("19 2c01 3412 0004 0002"))
    assert record.measurements[0].value == 300
    assert record.energy_expended_kj == 4660
    assert record.rr_intervals == (1.0, 0.5)


def test_rate_without_skin_contact_is_skipped() -> None:
    # 04 = contact supported, not detected; 00 = rate 0
    record = decode_heart_rate_measurement(bytes.fromhex("04 00"))
    assert record.measurements == ()
    assert record.sensor_contact is False
    assert record.skipped == (Skip("heart_rate", "no_sensor_contact"),)


def test_contact_bit_without_support_bit_means_no_contact_feature() -> None:
    record = decode_heart_rate_measurement(bytes.fromhex("02 48"))
    assert record.sensor_contact is None
    assert record.measurements[0].value == 72


@pytest.mark.parametrize("hex_bytes", ["", "00", "01 2c", "08 48 34"])
def test_truncated_payloads_raise_truncated_error(hex_bytes: str) -> None:
    with pytest.raises(TruncatedError):
        decode_heart_rate_measurement(bytes.fromhex(hex_bytes))


def test_rr_flag_with_no_interval_keeps_the_rate() -> None:
    record = decode_heart_rate_measurement(bytes.fromhex("10 48"))
    assert (record.measurements[0].value, record.rr_intervals) == (72.0, ())


@pytest.mark.parametrize("hex_bytes", ["10 48 2a", "10 48 2a03 00", "00 48 00"])
def test_half_rr_intervals_or_stray_bytes_are_malformed(hex_bytes: str) -> None:
    with pytest.raises(MalformedError):
        decode_heart_rate_measurement(bytes.fromhex(hex_bytes))


@given(
    st.integers(0, 0xFFFF),
    st.booleans(),
    st.none() | st.booleans(),
    st.none() | st.integers(0, 0xFFFF),
    st.lists(st.integers(0, 0xFFFF), max_size=8),
)
def test_encoded_measurements_decode_to_what_the_simulator_sent(
    rate: int, wide: bool, contact: bool | None, energy: int | None, rr_units: list[int]
) -> None:
    wide = wide or rate > 0xFF
    intervals = [units / 1024 for units in rr_units]
    data = encode_heart_rate_measurement(
        rate, wide=wide, sensor_contact=contact, energy_expended_kj=energy, rr_intervals=intervals
    )
    record = decode_heart_rate_measurement(data)
    assert record.sensor_contact == contact
    assert record.energy_expended_kj == energy
    assert record.rr_intervals == tuple(intervals)
    if contact is False:
        assert record.measurements == ()
    else:
        assert [m.value for m in record.measurements] == [rate]
