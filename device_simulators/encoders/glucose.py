"""Glucose Measurement (0x2A18) and Glucose Measurement Context (0x2A34) bytes, as a GLS 1.0 meter sends them.

Values are given in the unit the meter displays (mg/dL or mmol/L; grams; mg or mL) and coded in the characteristic's
SI unit by moving the decimal exponent, so 100 mg/dL travels as 100 × 10^-5 kg/L, like real meters send it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from device_simulators.encoders._fields import bits, code, date_time, u8, u16
from device_simulators.encoders.sfloat import Number, encode_sfloat, sfloat_in

SAMPLE_TYPES = {
    "capillary_whole_blood": 1,
    "capillary_plasma": 2,
    "venous_whole_blood": 3,
    "venous_plasma": 4,
    "arterial_whole_blood": 5,
    "arterial_plasma": 6,
    "undetermined_whole_blood": 7,
    "undetermined_plasma": 8,
    "interstitial_fluid": 9,
    "control_solution": 10,
}
SAMPLE_LOCATIONS = {"finger": 1, "alternate_site_test": 2, "earlobe": 3, "control_solution": 4}
NOT_AVAILABLE = 15
SENSOR_STATUS = {
    "battery_low": 0,
    "sensor_malfunction": 1,
    "sample_size_insufficient": 2,
    "strip_insertion_error": 3,
    "strip_type_incorrect": 4,
    "result_above_range": 5,
    "result_below_range": 6,
    "temperature_too_high": 7,
    "temperature_too_low": 8,
    "read_interrupted": 9,
    "general_device_fault": 10,
    "time_fault": 11,
}
CARBOHYDRATES = {"breakfast": 1, "lunch": 2, "dinner": 3, "snack": 4, "drink": 5, "supper": 6, "brunch": 7}
MEALS = {"preprandial": 1, "postprandial": 2, "fasting": 3, "casual": 4, "bedtime": 5}
TESTERS = {"self": 1, "health_care_professional": 2, "lab_test": 3}
HEALTH = {
    "minor_health_issues": 1,
    "major_health_issues": 2,
    "during_menses": 3,
    "under_stress": 4,
    "no_health_issues": 5,
}
MEDICATIONS = {
    "rapid_acting_insulin": 1,
    "short_acting_insulin": 2,
    "intermediate_acting_insulin": 3,
    "long_acting_insulin": 4,
    "premixed_insulin": 5,
}


def encode_glucose_measurement(
    sequence: int,
    base_time: datetime | None,
    *,
    time_offset_minutes: int | None = None,
    concentration: Number | None = None,
    unit: Literal["mg/dL", "mmol/L"] = "mg/dL",
    sample_type: str = "capillary_whole_blood",
    sample_location: str | None = "finger",
    sensor_status: Iterable[str] | None = None,
    context_follows: bool = False,
) -> bytes:
    """`concentration` in `unit` (sent as kg/L or mol/L); `sample_location=None` sends "not available"."""
    if unit not in ("mg/dL", "mmol/L"):
        raise ValueError(f"unit must be 'mg/dL' or 'mmol/L', not {unit!r}")
    flags = (
        (time_offset_minutes is not None) * 0x01
        | (concentration is not None) * 0x02
        | (unit == "mmol/L") * 0x04
        | (sensor_status is not None) * 0x08
        | context_follows * 0x10
    )
    out = u8(flags) + u16(sequence) + date_time(base_time)
    if time_offset_minutes is not None:
        out += time_offset_minutes.to_bytes(2, "little", signed=True)
    if concentration is not None:
        out += encode_sfloat(sfloat_in(concentration, -5 if unit == "mg/dL" else -3))
        location = NOT_AVAILABLE if sample_location is None else code(sample_location, SAMPLE_LOCATIONS, "location")
        out += u8(location << 4 | code(sample_type, SAMPLE_TYPES, "sample type"))
    if sensor_status is not None:
        out += u16(bits(sensor_status, SENSOR_STATUS, "sensor status"))
    return out


def encode_glucose_measurement_context(
    sequence: int,
    *,
    carbohydrate: tuple[str, Number] | None = None,
    meal: str | None = None,
    tester: str | None = None,
    health: str | None = None,
    exercise: tuple[int, int] | None = None,
    medication: tuple[str, Number, Literal["mg", "mL"]] | None = None,
    hba1c_percent: Number | None = None,
    extended_flags: int | None = None,
) -> bytes:
    """carbohydrate = (id, grams); exercise = (seconds, intensity %); medication = (id, amount, "mg" | "mL").

    Tester and health share one byte: when only one is given the other is sent as "not available".
    """
    tester_health = tester is not None or health is not None
    flags = (
        (carbohydrate is not None) * 0x01
        | (meal is not None) * 0x02
        | tester_health * 0x04
        | (exercise is not None) * 0x08
        | (medication is not None) * 0x10
        | (medication is not None and medication[2] == "mL") * 0x20
        | (hba1c_percent is not None) * 0x40
        | (extended_flags is not None) * 0x80
    )
    out = u8(flags) + u16(sequence)
    if extended_flags is not None:
        out += u8(extended_flags)
    if carbohydrate is not None:
        out += u8(code(carbohydrate[0], CARBOHYDRATES, "carbohydrate")) + encode_sfloat(sfloat_in(carbohydrate[1], -3))
    if meal is not None:
        out += u8(code(meal, MEALS, "meal"))
    if tester_health:
        tester_code = NOT_AVAILABLE if tester is None else code(tester, TESTERS, "tester")
        health_code = NOT_AVAILABLE if health is None else code(health, HEALTH, "health")
        out += u8(health_code << 4 | tester_code)
    if exercise is not None:
        out += u16(exercise[0]) + u8(exercise[1])
    if medication is not None:
        name, amount, unit = medication
        if unit not in ("mg", "mL"):
            raise ValueError(f"medication unit must be 'mg' or 'mL', not {unit!r}")
        out += u8(code(name, MEDICATIONS, "medication")) + encode_sfloat(sfloat_in(amount, -6 if unit == "mg" else -3))
    if hba1c_percent is not None:
        out += encode_sfloat(hba1c_percent)
    return out
