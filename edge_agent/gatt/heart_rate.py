"""Heart Rate Measurement (0x2A37), Heart Rate Service 1.0.

A heart rate sent while the sensor reports "supported, no skin contact" is not a measurement of the patient: it is
skipped with reason `no_sensor_contact`. RR intervals (1/1024 s) are kept as seconds on the record; every remaining
byte pair is one interval, so an odd tail is malformed (an RR flag with no interval after it is accepted as none:
the rate itself is intact). Reserved flag bits (5–7) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from edge_agent.gatt._cursor import Cursor
from edge_agent.gatt.errors import MalformedError
from edge_agent.gatt.models import Measurement, Payload, Skip, measurement, skip
from vitals import Kind

HEART_RATE_MEASUREMENT = 0x2A37
RR_INTERVAL_RESOLUTION = Fraction(1, 1024)
"""Seconds per RR-interval unit."""

_CHARACTERISTIC = "heart_rate_measurement"
_FLAG_UINT16 = 0x01
_FLAG_CONTACT_DETECTED = 0x02
_FLAG_CONTACT_SUPPORTED = 0x04
_FLAG_ENERGY = 0x08
_FLAG_RR = 0x10


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    measurements: tuple[Measurement, ...]
    sensor_contact: bool | None
    """None when the sensor does not support contact detection."""
    energy_expended_kj: int | None
    rr_intervals: tuple[float, ...]
    """Seconds between successive R waves, oldest first."""
    skipped: tuple[Skip, ...]


def decode_heart_rate_measurement(data: Payload) -> HeartRateMeasurement:
    cursor = Cursor(data, _CHARACTERISTIC)
    flags = cursor.u8("flags")
    rate = cursor.u16("heart_rate") if flags & _FLAG_UINT16 else cursor.u8("heart_rate")
    contact = bool(flags & _FLAG_CONTACT_DETECTED) if flags & _FLAG_CONTACT_SUPPORTED else None
    energy = cursor.u16("energy_expended") if flags & _FLAG_ENERGY else None
    intervals: list[float] = []
    if flags & _FLAG_RR:
        if cursor.remaining % 2:
            raise MalformedError(_CHARACTERISTIC, f"RR intervals need whole uint16 pairs, got {cursor.remaining} bytes")
        while cursor.remaining:
            intervals.append(float(cursor.u16("rr_interval") * RR_INTERVAL_RESOLUTION))
    cursor.finish(flags & 0xE0)
    if contact is False:
        return HeartRateMeasurement(
            (), contact, energy, tuple(intervals), (skip(_CHARACTERISTIC, "heart_rate", "no_sensor_contact"),)
        )
    return HeartRateMeasurement(
        (measurement(Kind.HEART_RATE, float(rate), None),), contact, energy, tuple(intervals), ()
    )
