"""Weight Measurement (0x2A9D) bytes, as a WSS 1.0 scale sends them (0.005 kg or 0.01 lb per step)."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from device_simulators.encoders._fields import date_time, u8, u16

MEASUREMENT_UNSUCCESSFUL = 0xFFFF


def _steps(value: float, step: str, what: str) -> int:
    steps = int((Decimal(repr(value)) / Decimal(step)).to_integral_value(ROUND_HALF_EVEN))
    if not 0 <= steps < 0xFFFF:
        raise ValueError(f"{what} {value} is outside what a uint16 of {step} steps can carry")
    return steps


def encode_weight_measurement(
    weight: float | None,
    *,
    unit: Literal["kg", "[lb_av]"] = "kg",
    time_stamp: datetime | None = None,
    user_id: int | None = None,
    bmi: float | None = None,
    height: float | None = None,
) -> bytes:
    """Weight in kg or lb (None sends "measurement unsuccessful"); height in metres (kg) or inches (lb).

    BMI and height travel together: give both or neither.
    """
    if unit not in ("kg", "[lb_av]"):
        raise ValueError(f"unit must be 'kg' or '[lb_av]', not {unit!r}")
    if (bmi is None) != (height is None):
        raise ValueError("BMI and height are one optional field pair: give both or neither")
    imperial = unit == "[lb_av]"
    flags = imperial * 0x01 | (time_stamp is not None) * 0x02 | (user_id is not None) * 0x04 | (bmi is not None) * 0x08
    raw = MEASUREMENT_UNSUCCESSFUL if weight is None else _steps(weight, "0.01" if imperial else "0.005", "weight")
    out = u8(flags) + u16(raw)
    if time_stamp is not None:
        out += date_time(time_stamp)
    if user_id is not None:
        out += u8(user_id)
    if bmi is not None and height is not None:
        out += u16(_steps(bmi, "0.1", "BMI")) + u16(_steps(height, "0.1" if imperial else "0.001", "height"))
    return out
