"""Blood Pressure Measurement (0x2A35) and Intermediate Cuff Pressure (0x2A36), Blood Pressure Service 1.0.

Pressures arrive as SFLOAT in mmHg or kPa and leave in mm[Hg]; the measurement status bits become flags on every
component of the cuff inflation. Reserved flag and status bits are ignored, as the Core Specification asks of
receivers. Intermediate cuff pressure is a live gauge during inflation, not a measurement: it yields none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from edge_agent.gatt._cursor import Cursor, names_of_bits, usable
from edge_agent.gatt.models import Measurement, Payload, Skip, measurement
from edge_agent.gatt.sfloat import Coded
from vitals import Kind

BLOOD_PRESSURE_MEASUREMENT = 0x2A35
INTERMEDIATE_CUFF_PRESSURE = 0x2A36

MMHG_PER_KPA = Fraction(1000) / Fraction("133.322387415")
"""1 mmHg is 133.322387415 Pa by definition (13.5951 g/cm³ mercury under standard gravity)."""

UNKNOWN_USER = 0xFF

_FLAG_KPA = 0x01
_FLAG_TIMESTAMP = 0x02
_FLAG_PULSE_RATE = 0x04
_FLAG_USER_ID = 0x08
_FLAG_STATUS = 0x10
_FLAGS_RESERVED = 0xE0

_STATUS_BITS = {
    0: "body_movement",
    1: "cuff_too_loose",
    2: "irregular_pulse",
    5: "improper_position",
}
_PULSE_RANGE = {1: "pulse_rate_above_range", 2: "pulse_rate_below_range"}


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    measurements: tuple[Measurement, ...]
    """bp_systolic, bp_diastolic, bp_mean and pulse_rate (when sent), minus any skipped."""
    device_time: datetime | None
    device_unit: str
    """"mmHg" or "kPa": what the device measured in, before conversion."""
    user_id: int | None
    """None when the field is absent; 0xFF (UNKNOWN_USER) means the device does not know the user."""
    status: tuple[str, ...]
    skipped: tuple[Skip, ...]


@dataclass(frozen=True, slots=True)
class IntermediateCuffPressure:
    cuff_pressure: float | None
    """Current cuff pressure in mm[Hg]; None when sent as a special value."""
    device_time: datetime | None
    device_unit: str
    pulse_rate: float | None
    user_id: int | None
    status: tuple[str, ...]
    skipped: tuple[Skip, ...]


@dataclass(frozen=True, slots=True)
class _Frame:
    first: Coded | None
    second: Coded | None
    third: Coded | None
    device_time: datetime | None
    kpa: bool
    pulse_rate: Coded | None
    user_id: int | None
    status: tuple[str, ...]
    skipped: tuple[Skip, ...]


def _status_names(raw: int) -> tuple[str, ...]:
    pulse_range = _PULSE_RANGE.get((raw >> 3) & 0x03)
    before, after = names_of_bits(raw & 0x07, _STATUS_BITS), names_of_bits(raw & ~0x07, _STATUS_BITS)
    return (*before, pulse_range, *after) if pulse_range else (*before, *after)


def _decode_frame(data: Payload, characteristic: str, fields: tuple[str, str, str]) -> _Frame:
    cursor = Cursor(data, characteristic)
    skipped: list[Skip] = []
    flags = cursor.u8("flags")
    first = usable(cursor.sfloat(fields[0]), fields[0], skipped, characteristic)
    second_raw = cursor.sfloat(fields[1])
    third_raw = cursor.sfloat(fields[2])
    second = usable(second_raw, fields[1], skipped, characteristic) if fields[1] else None
    third = usable(third_raw, fields[2], skipped, characteristic) if fields[2] else None
    device_time = cursor.date_time("time_stamp") if flags & _FLAG_TIMESTAMP else None
    pulse_rate = (
        usable(cursor.sfloat("pulse_rate"), "pulse_rate", skipped, characteristic) if flags & _FLAG_PULSE_RATE else None
    )
    user_id = cursor.u8("user_id") if flags & _FLAG_USER_ID else None
    status = _status_names(cursor.u16("measurement_status")) if flags & _FLAG_STATUS else ()
    cursor.finish(flags & _FLAGS_RESERVED)
    return _Frame(
        first, second, third, device_time, bool(flags & _FLAG_KPA), pulse_rate, user_id, status, tuple(skipped)
    )


def _mmhg(value: Coded, kpa: bool) -> float:
    return float(value.exact() * MMHG_PER_KPA) if kpa else float(value)


def decode_blood_pressure_measurement(data: Payload) -> BloodPressureMeasurement:
    frame = _decode_frame(data, "blood_pressure_measurement", ("systolic", "diastolic", "mean_arterial_pressure"))
    pressures = (
        (Kind.BP_SYSTOLIC, frame.first),
        (Kind.BP_DIASTOLIC, frame.second),
        (Kind.BP_MEAN, frame.third),
    )
    measurements = [
        measurement(kind, _mmhg(value, frame.kpa), frame.device_time, frame.status)
        for kind, value in pressures
        if value is not None
    ]
    if frame.pulse_rate is not None:
        measurements.append(measurement(Kind.PULSE_RATE, float(frame.pulse_rate), frame.device_time, frame.status))
    return BloodPressureMeasurement(
        tuple(measurements),
        frame.device_time,
        "kPa" if frame.kpa else "mmHg",
        frame.user_id,
        frame.status,
        frame.skipped,
    )


def decode_intermediate_cuff_pressure(data: Payload) -> IntermediateCuffPressure:
    """The diastolic and mean fields are unused in 0x2A36 (the spec fills them with NaN); they are not read."""
    frame = _decode_frame(data, "intermediate_cuff_pressure", ("cuff_pressure", "", ""))
    return IntermediateCuffPressure(
        _mmhg(frame.first, frame.kpa) if frame.first is not None else None,
        frame.device_time,
        "kPa" if frame.kpa else "mmHg",
        float(frame.pulse_rate) if frame.pulse_rate is not None else None,
        frame.user_id,
        frame.status,
        frame.skipped,
    )
