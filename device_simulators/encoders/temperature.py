"""Temperature Measurement (0x2A1C) bytes, as an HTS 1.0 thermometer sends them (32-bit FLOAT)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from device_simulators.encoders._fields import code, date_time, u8
from device_simulators.encoders.sfloat import Number, encode_float

TEMPERATURE_TYPES = {
    "armpit": 1,
    "body": 2,
    "ear": 3,
    "finger": 4,
    "gastrointestinal_tract": 5,
    "mouth": 6,
    "rectum": 7,
    "toe": 8,
    "tympanum": 9,
}


def encode_temperature_measurement(
    temperature: Number,
    *,
    unit: Literal["Cel", "[degF]"] = "Cel",
    time_stamp: datetime | None = None,
    temperature_type: str | None = None,
) -> bytes:
    if unit not in ("Cel", "[degF]"):
        raise ValueError(f"unit must be 'Cel' or '[degF]', not {unit!r}")
    flags = (unit == "[degF]") * 0x01 | (time_stamp is not None) * 0x02 | (temperature_type is not None) * 0x04
    out = u8(flags) + encode_float(temperature)
    if time_stamp is not None:
        out += date_time(time_stamp)
    if temperature_type is not None:
        out += u8(code(temperature_type, TEMPERATURE_TYPES, "temperature type"))
    return out
