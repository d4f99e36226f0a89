"""Blood Pressure Measurement (0x2A35) and Intermediate Cuff Pressure (0x2A36): vectors, faults, round trips.

Vectors are laid out field by field from the BLS 1.0 characteristic definition (flags, three SFLOAT pressures,
optional 7-byte time stamp, SFLOAT pulse rate, uint8 user id, uint16 measurement status); all little-endian.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_simulators.encoders import Coded as EncCoded
from device_simulators.encoders import Special as EncSpecial
from device_simulators.encoders import encode_blood_pressure_measurement, encode_intermediate_cuff_pressure
from edge_agent.gatt import (
    MalformedError,
    MeasurementRecord,
    Skip,
    TruncatedError,
    decode_blood_pressure_measurement,
    decode_intermediate_cuff_pressure,
)
from vitals import Kind

MMHG_PER_KPA = Fraction(1000) / Fraction("133.322387415")


def by_kind(record: MeasurementRecord) -> dict[Kind, float]:
    return {m.kind: m.value for m in record.measurements}


def test_full_mmhg_record_decodes_every_field() -> None:
    # 1e          flags: mmHg, time stamp, pulse rate, user id, status present
    # 7800 5000 5d00   systolic 120, diastolic 80, MAP 93 (SFLOAT, exponent 0)
    # e807 0c 19 07 1e 00   2024-12-25 07:30:00
    # 4800        pulse rate 72
    # 01          user id 1
    # 0400        status bit 2: irregular pulse
    record = decode_blood_pressure_measurement(bytes.fromhex("1e 7800 5000 5d00 e8070c19071e00 4800 01 0400"))
    assert by_kind(record) == {Kind.BP_SYSTOLIC: 120, Kind.BP_DIASTOLIC: 80, Kind.BP_MEAN: 93, Kind.PULSE_RATE: 72}
    assert record.device_time == datetime(2024, 12, 25, 7, 30)
    assert record.user_id == 1
    assert record.status == ("irregular_pulse",)
    assert all(m.flags == ("irregular_pulse",) for m in record.measurements)
    assert {m.unit for m in record.measurements} == {"mm[Hg]", "/min"}
    assert all(m.device_time == datetime(2024, 12, 25, 7, 30) for m in record.measurements)


def test_minimal_record_has_no_time_user_or_status() -> None:
    # 00 flags: mmHg, nothing optional; 8c00 = 140, 5a00 = 90, 6b00 = 107
    record = decode_blood_pressure_measurement(bytes.fromhex("00 8c00 5a00 6b00"))
    assert by_kind(record) == {Kind.BP_SYSTOLIC: 140, Kind.BP_DIASTOLIC: 90, Kind.BP_MEAN: 107}
    assert (record.device_time, record.user_id, record.status, record.skipped) == (None, None, (), ())


def test_kpa_pressures_are_converted_to_mm_hg() -> None:
    # 01 flags: kPa; a0f0 = 160 × 10^-1 = 16.0 kPa, 6af0 = 10.6 kPa, 7cf0 = 12.4 kPa
    record = decode_blood_pressure_measurement(bytes.fromhex("01 a0f0 6af0 7cf0"))
    assert record.device_unit == "kPa"
    assert by_kind(record)[Kind.BP_SYSTOLIC] == pytest.approx(120.0099, abs=1e-4)
    assert by_kind(record)[Kind.BP_DIASTOLIC] == pytest.approx(79.5065, abs=1e-4)
    assert by_kind(record)[Kind.BP_MEAN] == pytest.approx(93.0076, abs=1e-4)


def test_mean_pressure_sent_as_nan_is_skipped_not_stored() -> None:
    # Cuffs that do not compute MAP send NaN (ff07).
    record = decode_blood_pressure_measurement(bytes.fromhex("00 7800 5000 ff07"))
    assert set(by_kind(record)) == {Kind.BP_SYSTOLIC, Kind.BP_DIASTOLIC}
    assert record.skipped == (Skip("mean_arterial_pressure", "nan"),)


def test_pulse_rate_sent_as_nres_is_skipped() -> None:
    record = decode_blood_pressure_measurement(bytes.fromhex("04 7800 5000 5d00 0008"))
    assert Kind.PULSE_RATE not in by_kind(record)
    assert record.skipped == (Skip("pulse_rate", "nres"),)


def test_every_status_condition_becomes_a_flag() -> None:
    # 3300 = bits 0 body movement, 1 cuff too loose, 3-4 = 0b10 pulse below range, 5 improper position
    record = decode_blood_pressure_measurement(bytes.fromhex("10 7800 5000 5d00 3300"))
    assert record.status == ("body_movement", "cuff_too_loose", "pulse_rate_below_range", "improper_position")
    # 0800 = bits 3-4 = 0b01: pulse rate above range
    record = decode_blood_pressure_measurement(bytes.fromhex("10 7800 5000 5d00 0800"))
    assert record.status == ("pulse_rate_above_range",)


def test_reserved_status_bits_are_ignored() -> None:
    # d8c0 = 0xc0d8: bits 3-4 = 0b11 (reserved range value) plus reserved bits 6, 7, 14, 15
    record = decode_blood_pressure_measurement(bytes.fromhex("10 7800 5000 5d00 d8c0"))
    assert record.status == ()


def test_unknown_user_is_reported_as_0xff() -> None:
    assert decode_blood_pressure_measurement(bytes.fromhex("08 7800 5000 5d00 ff")).user_id == 0xFF


def test_time_stamp_of_year_zero_gives_no_device_time_but_keeps_the_values() -> None:
    record = decode_blood_pressure_measurement(bytes.fromhex("02 7800 5000 5d00 0000 00 00 00 00 00"))
    assert record.device_time is None
    assert by_kind(record)[Kind.BP_SYSTOLIC] == 120


def test_impossible_date_gives_no_device_time() -> None:
    # month 13
    record = decode_blood_pressure_measurement(bytes.fromhex("02 7800 5000 5d00 e807 0d 01 00 00 00"))
    assert record.device_time is None
    assert len(record.measurements) == 3


@pytest.mark.parametrize(
    "hex_bytes",
    [
        "",  # no flags
        "00 7800 5000",  # MAP missing
        "02 7800 5000 5d00 e807 0c",  # time stamp cut short
        "04 7800 5000 5d00 48",  # pulse rate cut short
        "08 7800 5000 5d00",  # user id announced, absent
        "10 7800 5000 5d00 04",  # status cut short
    ],
)
def test_truncated_payloads_raise_truncated_error(hex_bytes: str) -> None:
    with pytest.raises(TruncatedError):
        decode_blood_pressure_measurement(bytes.fromhex(hex_bytes))


def test_trailing_bytes_without_reserved_flags_are_malformed() -> None:
    with pytest.raises(MalformedError, match="unexpected"):
        decode_blood_pressure_measurement(bytes.fromhex("00 7800 5000 5d00 48"))


def test_reserved_flag_bits_are_ignored_with_their_appended_field() -> None:
    # 20 = reserved flag bit 5; a newer spec would append its field at the end
    record = decode_blood_pressure_measurement(bytes.fromhex("20 7800 5000 5d00 aa55"))
    assert by_kind(record)[Kind.BP_SYSTOLIC] == 120


def test_intermediate_cuff_pressure_is_not_a_measurement() -> None:
    # 00 flags; a000 = 160 mmHg current cuff pressure; ff07 ff07 = unused diastolic and MAP (NaN)
    record = decode_intermediate_cuff_pressure(bytes.fromhex("00 a000 ff07 ff07"))
    assert record.cuff_pressure == 160
    assert not hasattr(record, "measurements")
    assert record.skipped == ()


def test_intermediate_cuff_pressure_in_kpa_is_converted() -> None:
    record = decode_intermediate_cuff_pressure(bytes.fromhex("01 a0f0 ff07 ff07"))
    assert record.cuff_pressure == pytest.approx(120.0099, abs=1e-4)


pressures = st.builds(EncCoded, st.integers(0, 2045), st.integers(-2, 1)) | st.sampled_from(list(EncSpecial))
times = st.none() | st.datetimes(datetime(1582, 1, 1), datetime(9999, 12, 31)).map(lambda t: t.replace(microsecond=0))
statuses = st.none() | st.lists(
    st.sampled_from(["body_movement", "cuff_too_loose", "irregular_pulse", "improper_position"]), unique=True
).flatmap(
    lambda names: st.sampled_from([names, [*names, "pulse_rate_above_range"], [*names, "pulse_rate_below_range"]])
)


def expected(value: EncCoded | EncSpecial, kpa: bool) -> float | None:
    if isinstance(value, EncSpecial):
        return None
    exact = Fraction(value.mantissa) * Fraction(10) ** value.exponent
    return float(exact * MMHG_PER_KPA) if kpa else float(exact)


@given(
    pressures,
    pressures,
    pressures,
    st.booleans(),
    times,
    st.none() | pressures,
    st.none() | st.integers(0, 255),
    statuses,
)
def test_encoded_measurements_decode_to_what_the_simulator_sent(
    systolic: EncCoded | EncSpecial,
    diastolic: EncCoded | EncSpecial,
    mean: EncCoded | EncSpecial,
    kpa: bool,
    time_stamp: datetime | None,
    pulse_rate: EncCoded | EncSpecial | None,
    user_id: int | None,
    status: list[str] | None,
) -> None:
    data = encode_blood_pressure_measurement(
        systolic,
        diastolic,
        mean,
        unit="kPa" if kpa else "mmHg",
        time_stamp=time_stamp,
        pulse_rate=pulse_rate,
        user_id=user_id,
        status=status,
    )
    record = decode_blood_pressure_measurement(data)
    sent = {Kind.BP_SYSTOLIC: expected(systolic, kpa), Kind.BP_DIASTOLIC: expected(diastolic, kpa)}
    sent[Kind.BP_MEAN] = expected(mean, kpa)
    if pulse_rate is not None:
        sent[Kind.PULSE_RATE] = expected(pulse_rate, False)
    assert by_kind(record) == {kind: value for kind, value in sent.items() if value is not None}
    assert len(record.skipped) == sum(value is None for value in sent.values())
    assert record.device_time == time_stamp
    assert record.user_id == user_id
    assert set(record.status) == set(status or ())


@given(pressures, st.booleans())
def test_encoded_cuff_pressure_decodes_to_what_the_simulator_sent(pressure: EncCoded | EncSpecial, kpa: bool) -> None:
    record = decode_intermediate_cuff_pressure(
        encode_intermediate_cuff_pressure(pressure, unit="kPa" if kpa else "mmHg")
    )
    assert record.cuff_pressure == expected(pressure, kpa)


def test_skipped_values_are_logged_with_structured_fields(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="edge_agent.gatt"):
        decode_blood_pressure_measurement(bytes.fromhex("00 7800 5000 ff07"))
    [entry] = [r for r in caplog.records if r.getMessage() == "gatt.value_skipped"]
    assert (entry.characteristic, entry.field, entry.reason) == (  # type: ignore[attr-defined]
        "blood_pressure_measurement",
        "mean_arterial_pressure",
        "nan",
    )


def test_simulator_refuses_status_it_cannot_encode() -> None:
    with pytest.raises(ValueError, match="both above and below"):
        encode_blood_pressure_measurement(120, 80, 93, status=["pulse_rate_above_range", "pulse_rate_below_range"])
    with pytest.raises(ValueError, match="unknown blood pressure status"):
        encode_blood_pressure_measurement(120, 80, 93, status=["hypertension"])
    with pytest.raises(ValueError, match="uint8"):
        encode_blood_pressure_measurement(120, 80, 93, user_id=256)
