"""Glucose Measurement (0x2A18) and Glucose Measurement Context (0x2A34), GLS 1.0 layout.

Real meters send mg/dL concentrations as kg/L with exponent -5 (100 mg/dL → mantissa 100, exponent -5 = 0xB064)
and mmol/L as mol/L with exponent -4 (5.6 mmol/L → 0xC038); the vectors below use that coding.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_simulators.encoders import Coded as EncCoded
from device_simulators.encoders import Special as EncSpecial
from device_simulators.encoders import encode_glucose_measurement, encode_glucose_measurement_context
from device_simulators.encoders import glucose as enc
from edge_agent.gatt import (
    MalformedError,
    Skip,
    TruncatedError,
    decode_glucose_measurement,
    decode_glucose_measurement_context,
)
from vitals import Kind

BASE = "e8070c19071e00"  # 2024-12-25 07:30:00


def test_mg_per_dl_reading_with_all_fields() -> None:
    # 1b flags: time offset, concentration+type/location, status, context follows (units kg/L)
    # 0100 sequence 1; e8070c19071e00 base time; 0000 offset 0 min
    # 64b0 = 100 × 10^-5 kg/L = 100 mg/dL; 11 = location 1 finger (high nibble), type 1 capillary whole blood
    # 0000 sensor status annunciation: none
    record = decode_glucose_measurement(bytes.fromhex(f"1b 0100 {BASE} 0000 64b0 11 0000"))
    [m] = record.measurements
    assert (m.kind, m.unit, m.sequence) == (Kind.GLUCOSE, "mmol/L", 1)
    assert m.value == pytest.approx(100 / 18.0)
    assert m.device_time == datetime(2024, 12, 25, 7, 30)
    assert m.flags == ("sample_capillary_whole_blood", "site_finger")
    assert (record.sequence, record.device_unit, record.context_follows) == (1, "kg/L", True)


def test_mmol_per_l_reading_is_exact() -> None:
    # 06 flags: concentration present, mol/L; 0200 seq 2; 38c0 = 56 × 10^-4 mol/L = 5.6 mmol/L; 12 plasma, finger
    record = decode_glucose_measurement(bytes.fromhex(f"06 0200 {BASE} 38c0 12"))
    assert record.measurements[0].value == 5.6
    assert record.sample_type == "capillary_plasma"


def test_time_offset_moves_the_device_time() -> None:
    # c4ff = -60 minutes
    record = decode_glucose_measurement(bytes.fromhex(f"03 0300 {BASE} c4ff 64b0 11"))
    assert record.base_time == datetime(2024, 12, 25, 7, 30)
    assert record.device_time == datetime(2024, 12, 25, 6, 30)
    assert record.measurements[0].device_time == datetime(2024, 12, 25, 6, 30)


def test_control_solution_is_not_a_patient_measurement() -> None:
    # 4a = location 4 control solution, type 10 control solution
    record = decode_glucose_measurement(bytes.fromhex(f"02 0400 {BASE} 64b0 4a"))
    assert record.measurements == ()
    assert record.skipped == (Skip("concentration", "control_solution"),)


def test_high_result_annunciation_is_kept_as_a_flag() -> None:
    # 2000 = bit 5: result higher than the device can process (a "HI" reading still needs an alarm)
    record = decode_glucose_measurement(bytes.fromhex(f"0a 0500 {BASE} 58b2 11 2000"))
    assert record.measurements[0].value == pytest.approx(600 / 18.0)
    assert "result_above_range" in record.measurements[0].flags
    assert record.sensor_status == ("result_above_range",)


def test_record_without_concentration_has_no_measurement() -> None:
    record = decode_glucose_measurement(bytes.fromhex(f"00 0600 {BASE}"))
    assert (record.measurements, record.device_unit) == ((), None)


def test_nan_concentration_is_skipped() -> None:
    record = decode_glucose_measurement(bytes.fromhex(f"02 0700 {BASE} ff07 11"))
    assert record.measurements == ()
    assert record.skipped == (Skip("concentration", "nan"),)


def test_unknown_base_time_leaves_device_time_empty() -> None:
    record = decode_glucose_measurement(bytes.fromhex("03 0800 00000000000000 0500 64b0 11"))
    assert record.device_time is None
    assert record.measurements[0].device_time is None


@pytest.mark.parametrize(
    "hex_bytes", ["", "00 01", f"00 0100 {BASE[:8]}", f"02 0100 {BASE} 64b0", f"08 0100 {BASE} 00"]
)
def test_truncated_measurements_raise_truncated_error(hex_bytes: str) -> None:
    with pytest.raises(TruncatedError):
        decode_glucose_measurement(bytes.fromhex(hex_bytes))


def test_trailing_bytes_are_malformed() -> None:
    with pytest.raises(MalformedError):
        decode_glucose_measurement(bytes.fromhex(f"00 0100 {BASE} 00"))


def test_context_with_every_field() -> None:
    # 7f flags: carbohydrate, meal, tester-health, exercise, medication, medication in litres, HbA1c
    # 0100 sequence 1
    # 02 lunch; 2dd0 = 45 × 10^-3 kg = 45 g
    # 02 postprandial
    # 51 = health 5 no health issues (high nibble), tester 1 self (low nibble)
    # 0807 = 1800 s exercise; 3c = 60 % intensity
    # 01 rapid-acting insulin; 04d0 = 4 × 10^-3 L = 4 mL
    # 41f0 = 65 × 10^-1 = 6.5 % HbA1c
    context = decode_glucose_measurement_context(bytes.fromhex("7f 0100 02 2dd0 02 51 0807 3c 01 04d0 41f0"))
    assert context.sequence == 1
    assert (context.carbohydrate, context.carbohydrate_grams) == ("lunch", 45.0)
    assert (context.meal, context.tester, context.health) == ("postprandial", "self", "no_health_issues")
    assert (context.exercise_duration_s, context.exercise_intensity_percent) == (1800, 60)
    assert (context.medication, context.medication_amount, context.medication_unit) == (
        "rapid_acting_insulin",
        4.0,
        "mL",
    )
    assert context.hba1c_percent == 6.5
    assert context.flags() == ("meal_postprandial", "tester_self", "health_no_health_issues")


def test_context_medication_in_kilograms_is_reported_in_milligrams() -> None:
    # 10 flags: medication present, in kilograms; 0900 sequence 9; 04 long-acting insulin
    # 0aa0 = 0xa00a: exponent 0xa = -6, mantissa 0x00a = 10 → 10 × 10^-6 kg = 10 mg
    context = decode_glucose_measurement_context(bytes.fromhex("10 0900 04 0aa0"))
    assert (context.medication, context.medication_amount, context.medication_unit) == (
        "long_acting_insulin",
        10.0,
        "mg",
    )


def test_context_with_extended_flags_only() -> None:
    context = decode_glucose_measurement_context(bytes.fromhex("80 0200 00"))
    assert context.extended_flags == 0
    assert context.flags() == ()


def test_context_tester_and_health_not_available() -> None:
    context = decode_glucose_measurement_context(bytes.fromhex("04 0300 ff"))
    assert (context.tester, context.health) == (None, None)


@pytest.mark.parametrize("hex_bytes", ["01 0100 02", "02 0100", "08 0100 0807", "40 0100 41"])
def test_truncated_context_raises_truncated_error(hex_bytes: str) -> None:
    with pytest.raises(TruncatedError):
        decode_glucose_measurement_context(bytes.fromhex(hex_bytes))


concentrations = st.builds(EncCoded, st.integers(0, 2045), st.integers(-3, 0)) | st.sampled_from(list(EncSpecial))
sample_types = st.sampled_from(sorted(set(enc.SAMPLE_TYPES) - {"control_solution"}))
locations = st.none() | st.sampled_from(sorted(set(enc.SAMPLE_LOCATIONS) - {"control_solution"}))


@given(
    st.integers(0, 0xFFFF),
    st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(lambda t: t.replace(microsecond=0)),
    st.none() | st.integers(-0x8000, 0x7FFF),
    st.none() | concentrations,
    st.booleans(),
    sample_types,
    locations,
    st.none() | st.lists(st.sampled_from(sorted(enc.SENSOR_STATUS)), unique=True),
    st.booleans(),
)
def test_encoded_measurements_decode_to_what_the_simulator_sent(
    sequence: int,
    base_time: datetime,
    offset: int | None,
    concentration: EncCoded | EncSpecial | None,
    mmol: bool,
    sample_type: str,
    location: str | None,
    status: list[str] | None,
    context_follows: bool,
) -> None:
    data = encode_glucose_measurement(
        sequence,
        base_time,
        time_offset_minutes=offset,
        concentration=concentration,
        unit="mmol/L" if mmol else "mg/dL",
        sample_type=sample_type,
        sample_location=location,
        sensor_status=status,
        context_follows=context_follows,
    )
    record = decode_glucose_measurement(data)
    assert record.sequence == sequence
    assert record.device_time == base_time + timedelta(minutes=offset or 0)
    assert record.context_follows == context_follows
    assert set(record.sensor_status) == set(status or ())
    if concentration is None or isinstance(concentration, EncSpecial):
        assert record.measurements == ()
        return
    assert (record.sample_type, record.sample_location) == (sample_type, location)
    exact = Fraction(concentration.mantissa) * Fraction(10) ** concentration.exponent
    assert [m.value for m in record.measurements] == [float(exact if mmol else exact / 18)]
    assert record.measurements[0].sequence == sequence


grams = st.builds(EncCoded, st.integers(0, 2045), st.integers(-2, 0))


@given(
    st.integers(0, 0xFFFF),
    st.none() | st.tuples(st.sampled_from(sorted(enc.CARBOHYDRATES)), grams),
    st.none() | st.sampled_from(sorted(enc.MEALS)),
    st.none() | st.sampled_from(sorted(enc.TESTERS)),
    st.none() | st.sampled_from(sorted(enc.HEALTH)),
    st.none() | st.tuples(st.integers(0, 0xFFFF), st.integers(0, 100)),
    st.none() | st.tuples(st.sampled_from(sorted(enc.MEDICATIONS)), grams, st.sampled_from(["mg", "mL"])),
    st.none() | st.builds(EncCoded, st.integers(30, 200), st.just(-1)),
)
def test_encoded_contexts_decode_to_what_the_simulator_sent(
    sequence: int,
    carbohydrate: tuple[str, EncCoded] | None,
    meal: str | None,
    tester: str | None,
    health: str | None,
    exercise: tuple[int, int] | None,
    medication: tuple[str, EncCoded, str] | None,
    hba1c: EncCoded | None,
) -> None:
    data = encode_glucose_measurement_context(
        sequence,
        carbohydrate=carbohydrate,
        meal=meal,
        tester=tester,
        health=health,
        exercise=exercise,
        medication=medication,  # type: ignore[arg-type]
        hba1c_percent=hba1c,
    )
    context = decode_glucose_measurement_context(data)

    def value(coded: EncCoded) -> float:
        return float(Fraction(coded.mantissa) * Fraction(10) ** coded.exponent)

    assert context.sequence == sequence
    assert (context.carbohydrate, context.carbohydrate_grams) == (
        (carbohydrate[0], value(carbohydrate[1])) if carbohydrate else (None, None)
    )
    assert (context.meal, context.tester, context.health) == (meal, tester, health)
    assert (context.exercise_duration_s, context.exercise_intensity_percent) == (exercise or (None, None))
    assert (context.medication, context.medication_amount, context.medication_unit) == (
        (medication[0], value(medication[1]), medication[2]) if medication else (None, None, None)
    )
    assert context.hba1c_percent == (value(hba1c) if hba1c else None)
