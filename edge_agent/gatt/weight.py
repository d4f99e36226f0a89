"""Weight Measurement (0x2A9D), Weight Scale Service 1.0.

Weight is a uint16 at 0.005 kg (SI) or 0.01 lb (imperial) and leaves in kg; 0xFFFF means "measurement
unsuccessful" and yields no measurement. BMI (0.1 kg/m²) and height (0.001 m or 0.1 in, leaving in metres) stay on
the record. Reserved flag bits (4–7) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from edge_agent.gatt._cursor import Cursor
from edge_agent.gatt.models import Measurement, Payload, Skip, measurement, skip
from vitals import Kind

WEIGHT_MEASUREMENT = 0x2A9D

KG_PER_LB = Fraction("0.45359237")
"""Exact, by the international yard and pound agreement of 1959."""
M_PER_INCH = Fraction("0.0254")
SI_WEIGHT_RESOLUTION = Fraction(5, 1000)
"""kg per unit."""
IMPERIAL_WEIGHT_RESOLUTION = Fraction(1, 100)
"""lb per unit."""
MEASUREMENT_UNSUCCESSFUL = 0xFFFF
UNKNOWN_USER = 0xFF

_CHARACTERISTIC = "weight_measurement"


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    measurements: tuple[Measurement, ...]
    device_time: datetime | None
    device_unit: str
    """"kg" or "[lb_av]": what the scale weighed in, before conversion."""
    user_id: int | None
    """None when the field is absent; 0xFF (UNKNOWN_USER) means the scale does not know the user."""
    bmi: float | None
    height_m: float | None
    skipped: tuple[Skip, ...]


def decode_weight_measurement(data: Payload) -> WeightMeasurement:
    cursor = Cursor(data, _CHARACTERISTIC)
    flags = cursor.u8("flags")
    imperial = bool(flags & 0x01)
    raw_weight = cursor.u16("weight")
    device_time = cursor.date_time("time_stamp") if flags & 0x02 else None
    user_id = cursor.u8("user_id") if flags & 0x04 else None
    bmi = height = None
    if flags & 0x08:
        bmi = float(Fraction(cursor.u16("bmi"), 10))
        raw_height = cursor.u16("height")
        height = float(raw_height * M_PER_INCH / 10) if imperial else float(Fraction(raw_height, 1000))
    cursor.finish(flags & 0xF0)
    if raw_weight == MEASUREMENT_UNSUCCESSFUL:
        skipped = (skip(_CHARACTERISTIC, "weight", "measurement_unsuccessful"),)
        return WeightMeasurement((), device_time, _unit(imperial), user_id, bmi, height, skipped)
    kg = raw_weight * IMPERIAL_WEIGHT_RESOLUTION * KG_PER_LB if imperial else raw_weight * SI_WEIGHT_RESOLUTION
    weight = measurement(Kind.BODY_WEIGHT, float(kg), device_time)
    return WeightMeasurement((weight,), device_time, _unit(imperial), user_id, bmi, height, ())


def _unit(imperial: bool) -> str:
    return "[lb_av]" if imperial else "kg"
