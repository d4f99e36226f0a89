"""Blood Pressure Measurement (0x2A35) and Intermediate Cuff Pressure (0x2A36) bytes, as a BLS 1.0 cuff sends them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from device_simulators.encoders._fields import bits, date_time, u8, u16
from device_simulators.encoders.sfloat import Number, Special, encode_sfloat

PressureUnit = Literal["mmHg", "kPa"]

STATUS_BITS = {"body_movement": 0, "cuff_too_loose": 1, "irregular_pulse": 2, "improper_position": 5}
_PULSE_RANGE = {"pulse_rate_above_range": 1, "pulse_rate_below_range": 2}


def _status(names: Iterable[str]) -> int:
    names = set(names)
    ranges = names & _PULSE_RANGE.keys()
    if len(ranges) > 1:
        raise ValueError("pulse rate cannot be both above and below range")
    value = bits(names - ranges, STATUS_BITS, "blood pressure status")
    return value | (_PULSE_RANGE[ranges.pop()] << 3 if ranges else 0)


def _encode(
    pressures: tuple[Number, Number, Number],
    unit: PressureUnit,
    time_stamp: datetime | None,
    pulse_rate: Number | None,
    user_id: int | None,
    status: Iterable[str] | None,
) -> bytes:
    if unit not in ("mmHg", "kPa"):
        raise ValueError(f"unit must be 'mmHg' or 'kPa', not {unit!r}")
    flags = (
        (unit == "kPa") * 0x01
        | (time_stamp is not None) * 0x02
        | (pulse_rate is not None) * 0x04
        | (user_id is not None) * 0x08
        | (status is not None) * 0x10
    )
    out = u8(flags) + b"".join(encode_sfloat(p) for p in pressures)
    if time_stamp is not None:
        out += date_time(time_stamp)
    if pulse_rate is not None:
        out += encode_sfloat(pulse_rate)
    if user_id is not None:
        out += u8(user_id)
    if status is not None:
        out += u16(_status(status))
    return out


def encode_blood_pressure_measurement(
    systolic: Number,
    diastolic: Number,
    mean_arterial_pressure: Number,
    *,
    unit: PressureUnit = "mmHg",
    time_stamp: datetime | None = None,
    pulse_rate: Number | None = None,
    user_id: int | None = None,
    status: Iterable[str] | None = None,
) -> bytes:
    """Pressures in `unit`; `status=()` sends the status field with no bit set, `None` leaves it out."""
    return _encode((systolic, diastolic, mean_arterial_pressure), unit, time_stamp, pulse_rate, user_id, status)


def encode_intermediate_cuff_pressure(
    cuff_pressure: Number,
    *,
    unit: PressureUnit = "mmHg",
    time_stamp: datetime | None = None,
    pulse_rate: Number | None = None,
    user_id: int | None = None,
    status: Iterable[str] | None = None,
) -> bytes:
    """The unused diastolic and mean fields carry NaN, as the spec asks."""
    return _encode((cuff_pressure, Special.NAN, Special.NAN), unit, time_stamp, pulse_rate, user_id, status)
