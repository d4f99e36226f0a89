"""Temperature Measurement (0x2A1C), Health Thermometer Service 1.0.

The temperature is a 32-bit FLOAT in °C or °F and leaves in Cel. The measurement site (temperature type) becomes a
`site_*` flag, since a tympanic and an axillary reading are judged differently. A reserved temperature type code is
logged and left out; reserved flag bits (3–7) are ignored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from edge_agent.gatt._cursor import Cursor, usable
from edge_agent.gatt.models import Measurement, Payload, Skip, measurement
from vitals import Kind

TEMPERATURE_MEASUREMENT = 0x2A1C

TEMPERATURE_TYPES = {
    1: "armpit",
    2: "body",
    3: "ear",
    4: "finger",
    5: "gastrointestinal_tract",
    6: "mouth",
    7: "rectum",
    8: "toe",
    9: "tympanum",
}

_CHARACTERISTIC = "temperature_measurement"
_FLAG_FAHRENHEIT = 0x01
_FLAG_TIMESTAMP = 0x02
_FLAG_TYPE = 0x04
_log = logging.getLogger("edge_agent.gatt")


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    measurements: tuple[Measurement, ...]
    device_time: datetime | None
    device_unit: str
    """"Cel" or "[degF]": what the device measured in, before conversion."""
    temperature_type: str | None
    skipped: tuple[Skip, ...]


def fahrenheit_to_celsius(value: Fraction) -> Fraction:
    return (value - 32) * Fraction(5, 9)


def decode_temperature_measurement(data: Payload) -> TemperatureMeasurement:
    cursor = Cursor(data, _CHARACTERISTIC)
    skipped: list[Skip] = []
    flags = cursor.u8("flags")
    fahrenheit = bool(flags & _FLAG_FAHRENHEIT)
    value = usable(cursor.float32("temperature"), "temperature", skipped, _CHARACTERISTIC)
    device_time = cursor.date_time("time_stamp") if flags & _FLAG_TIMESTAMP else None
    site: str | None = None
    if flags & _FLAG_TYPE:
        code = cursor.u8("temperature_type")
        site = TEMPERATURE_TYPES.get(code)
        if site is None:
            _log.info(
                "gatt.reserved_code_ignored",
                extra={"event": "gatt.reserved_code_ignored", "characteristic": _CHARACTERISTIC, "code": code},
            )
    cursor.finish(flags & 0xF8)
    measurements: tuple[Measurement, ...] = ()
    if value is not None:
        celsius = fahrenheit_to_celsius(value.exact()) if fahrenheit else value.exact()
        flags_out = (f"site_{site}",) if site else ()
        measurements = (measurement(Kind.BODY_TEMPERATURE, float(celsius), device_time, flags_out),)
    return TemperatureMeasurement(measurements, device_time, "[degF]" if fahrenheit else "Cel", site, tuple(skipped))
