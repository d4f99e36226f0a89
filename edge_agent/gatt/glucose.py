"""Glucose Measurement (0x2A18) and Glucose Measurement Context (0x2A34), Glucose Service 1.0.

Concentration arrives as SFLOAT in kg/L or mol/L and leaves in mmol/L. A control-solution test is a check of the
meter, not of the patient: it yields no measurement (skip reason `control_solution`). Sensor status annunciations
become flags and are kept with the value (a meter's "HI" result must still raise an alarm). The context record is
joined to its measurement by sequence number; `GlucoseContext.flags()` gives the flags worth carrying on the
reading. Reserved flag bits are ignored; reserved enumeration codes are logged and left out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from edge_agent.gatt._cursor import Cursor, names_of_bits, usable
from edge_agent.gatt.models import Measurement, Payload, Skip, measurement, skip
from edge_agent.gatt.sfloat import Coded
from vitals import Kind

GLUCOSE_MEASUREMENT = 0x2A18
GLUCOSE_MEASUREMENT_CONTEXT = 0x2A34

MG_PER_DL_PER_KG_PER_L = 100_000
"""1 kg/L = 10^6 mg per 10 dL."""
MG_PER_DL_PER_MMOL_PER_L = Fraction(18)
"""The clinical convention mg/dL ÷ 18 = mmol/L (glucose 180.16 g/mol gives 18.016; 0.09 % is below meter accuracy)."""
EXERCISE_DURATION_OVERRUN = 0xFFFF

SAMPLE_TYPES = {
    1: "capillary_whole_blood",
    2: "capillary_plasma",
    3: "venous_whole_blood",
    4: "venous_plasma",
    5: "arterial_whole_blood",
    6: "arterial_plasma",
    7: "undetermined_whole_blood",
    8: "undetermined_plasma",
    9: "interstitial_fluid",
    10: "control_solution",
}
SAMPLE_LOCATIONS = {1: "finger", 2: "alternate_site_test", 3: "earlobe", 4: "control_solution"}
_LOCATION_NOT_AVAILABLE = 15
SENSOR_STATUS = {
    0: "battery_low",
    1: "sensor_malfunction",
    2: "sample_size_insufficient",
    3: "strip_insertion_error",
    4: "strip_type_incorrect",
    5: "result_above_range",
    6: "result_below_range",
    7: "temperature_too_high",
    8: "temperature_too_low",
    9: "read_interrupted",
    10: "general_device_fault",
    11: "time_fault",
}
CARBOHYDRATES = {1: "breakfast", 2: "lunch", 3: "dinner", 4: "snack", 5: "drink", 6: "supper", 7: "brunch"}
MEALS = {1: "preprandial", 2: "postprandial", 3: "fasting", 4: "casual", 5: "bedtime"}
TESTERS = {1: "self", 2: "health_care_professional", 3: "lab_test"}
HEALTH = {
    1: "minor_health_issues",
    2: "major_health_issues",
    3: "during_menses",
    4: "under_stress",
    5: "no_health_issues",
}
MEDICATIONS = {
    1: "rapid_acting_insulin",
    2: "short_acting_insulin",
    3: "intermediate_acting_insulin",
    4: "long_acting_insulin",
    5: "premixed_insulin",
}
_NOT_AVAILABLE = 15

_MEASUREMENT = "glucose_measurement"
_CONTEXT = "glucose_measurement_context"
_log = logging.getLogger("edge_agent.gatt")


@dataclass(frozen=True, slots=True)
class GlucoseMeasurement:
    sequence: int
    measurements: tuple[Measurement, ...]
    base_time: datetime | None
    time_offset_minutes: int | None
    device_time: datetime | None
    """Base time plus time offset: when the sample was taken by the meter's clock."""
    device_unit: str | None
    """"kg/L" or "mol/L"; None when no concentration was sent."""
    sample_type: str | None
    sample_location: str | None
    sensor_status: tuple[str, ...]
    context_follows: bool
    skipped: tuple[Skip, ...]


@dataclass(frozen=True, slots=True)
class GlucoseContext:
    sequence: int
    extended_flags: int | None
    carbohydrate: str | None
    carbohydrate_grams: float | None
    meal: str | None
    tester: str | None
    health: str | None
    exercise_duration_s: int | None
    """Seconds; EXERCISE_DURATION_OVERRUN (0xFFFF) means longer than the field can hold."""
    exercise_intensity_percent: int | None
    medication: str | None
    medication_amount: float | None
    medication_unit: str | None
    """"mg" or "mL"."""
    hba1c_percent: float | None
    skipped: tuple[Skip, ...]

    def flags(self) -> tuple[str, ...]:
        """Flags for the glucose reading this context belongs to (meal, tester, health)."""
        pairs = (("meal", self.meal), ("tester", self.tester), ("health", self.health))
        return tuple(f"{prefix}_{name}" for prefix, name in pairs if name)


def _name(table: dict[int, str], code: int, characteristic: str, field: str) -> str | None:
    name = table.get(code)
    if name is None and code != _NOT_AVAILABLE:
        _log.info(
            "gatt.reserved_code_ignored",
            extra={
                "event": "gatt.reserved_code_ignored",
                "characteristic": characteristic,
                "field": field,
                "code": code,
            },
        )
    return name


def _mmol_per_l(value: Coded, mol_per_l: bool) -> float:
    if mol_per_l:
        return float(value.exact() * 1000)
    return float(value.exact() * MG_PER_DL_PER_KG_PER_L / MG_PER_DL_PER_MMOL_PER_L)


def decode_glucose_measurement(data: Payload) -> GlucoseMeasurement:
    cursor = Cursor(data, _MEASUREMENT)
    skipped: list[Skip] = []
    flags = cursor.u8("flags")
    sequence = cursor.u16("sequence_number")
    base_time = cursor.date_time("base_time")
    offset = cursor.s16("time_offset") if flags & 0x01 else None
    device_time = base_time + timedelta(minutes=offset or 0) if base_time is not None else None
    concentration: Coded | None = None
    sample_type = location = None
    if flags & 0x02:
        concentration = usable(cursor.sfloat("concentration"), "concentration", skipped, _MEASUREMENT)
        type_location = cursor.u8("type_sample_location")
        sample_type = _name(SAMPLE_TYPES, type_location & 0x0F, _MEASUREMENT, "type")
        location = _name(SAMPLE_LOCATIONS, type_location >> 4, _MEASUREMENT, "sample_location")
    status = names_of_bits(cursor.u16("sensor_status_annunciation"), SENSOR_STATUS) if flags & 0x08 else ()
    cursor.finish(flags & 0xE0)
    mol_per_l = bool(flags & 0x04)
    measurements: tuple[Measurement, ...] = ()
    if concentration is not None:
        if "control_solution" in (sample_type, location):
            skipped.append(skip(_MEASUREMENT, "concentration", "control_solution"))
        else:
            reading_flags = (
                *((f"sample_{sample_type}",) if sample_type else ()),
                *((f"site_{location}",) if location else ()),
                *status,
            )
            value = _mmol_per_l(concentration, mol_per_l)
            measurements = (measurement(Kind.GLUCOSE, value, device_time, reading_flags, sequence),)
    return GlucoseMeasurement(
        sequence,
        measurements,
        base_time,
        offset,
        device_time,
        ("mol/L" if mol_per_l else "kg/L") if flags & 0x02 else None,
        sample_type,
        location,
        status,
        bool(flags & 0x10),
        tuple(skipped),
    )


def decode_glucose_measurement_context(data: Payload) -> GlucoseContext:
    cursor = Cursor(data, _CONTEXT)
    skipped: list[Skip] = []
    flags = cursor.u8("flags")
    sequence = cursor.u16("sequence_number")
    extended = cursor.u8("extended_flags") if flags & 0x80 else None
    carbohydrate = carbohydrate_grams = None
    if flags & 0x01:
        carbohydrate = _name(CARBOHYDRATES, cursor.u8("carbohydrate_id"), _CONTEXT, "carbohydrate_id")
        grams = usable(cursor.sfloat("carbohydrate"), "carbohydrate", skipped, _CONTEXT)
        carbohydrate_grams = float(grams.exact() * 1000) if grams is not None else None
    meal = _name(MEALS, cursor.u8("meal"), _CONTEXT, "meal") if flags & 0x02 else None
    tester = health = None
    if flags & 0x04:
        tester_health = cursor.u8("tester_health")
        tester = _name(TESTERS, tester_health & 0x0F, _CONTEXT, "tester")
        health = _name(HEALTH, tester_health >> 4, _CONTEXT, "health")
    duration = intensity = None
    if flags & 0x08:
        duration = cursor.u16("exercise_duration")
        intensity = cursor.u8("exercise_intensity")
    medication = medication_amount = medication_unit = None
    if flags & 0x10:
        medication = _name(MEDICATIONS, cursor.u8("medication_id"), _CONTEXT, "medication_id")
        amount = usable(cursor.sfloat("medication"), "medication", skipped, _CONTEXT)
        liters = bool(flags & 0x20)
        medication_unit = "mL" if liters else "mg"
        if amount is not None:
            medication_amount = float(amount.exact() * (1000 if liters else 1_000_000))
    hba1c = None
    if flags & 0x40:
        coded = usable(cursor.sfloat("hba1c"), "hba1c", skipped, _CONTEXT)
        hba1c = float(coded) if coded is not None else None
    cursor.finish(extended or 0)
    return GlucoseContext(
        sequence,
        extended,
        carbohydrate,
        carbohydrate_grams,
        meal,
        tester,
        health,
        duration,
        intensity,
        medication,
        medication_amount,
        medication_unit,
        hba1c,
        tuple(skipped),
    )
