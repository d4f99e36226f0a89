"""IEEE 11073-20601 SFLOAT (16-bit) and FLOAT (32-bit) encoding, special values included.

A plain float is coded the way health devices do it: with as many decimals as the value has (120 → 120 × 10^0,
36.6 → 366 × 10^-1), rounding half-even only when the mantissa would not fit. Pass a `Coded` to choose the exact
mantissa and exponent, or a `Special` to send NaN, NRes, ±INF or the reserved value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum


class Special(StrEnum):
    NAN = "nan"
    NRES = "nres"
    POSITIVE_INFINITY = "positive_infinity"
    NEGATIVE_INFINITY = "negative_infinity"
    RESERVED = "reserved"


@dataclass(frozen=True, slots=True)
class Coded:
    """`mantissa × 10**exponent`, exactly as it will travel."""

    mantissa: int
    exponent: int

    def shifted(self, places: int) -> Coded:
        """The same quantity in a unit 10**places times larger per step (e.g. mg/dL → kg/L is shifted(-5))."""
        return Coded(self.mantissa, self.exponent + places)


Number = float | Special | Coded
"""What an encoder accepts for an SFLOAT or FLOAT field."""


@dataclass(frozen=True, slots=True)
class _Format:
    name: str
    mantissa_bits: int
    exponent_bits: int
    specials: dict[Special, int]

    @property
    def max_mantissa(self) -> int:
        """Largest magnitude of an ordinary number: the top mantissas are the special values."""
        return (1 << (self.mantissa_bits - 1)) - 3

    @property
    def exponent_range(self) -> tuple[int, int]:
        half = 1 << (self.exponent_bits - 1)
        return -half, half - 1


_SFLOAT = _Format(
    "SFLOAT",
    12,
    4,
    {
        Special.NAN: 0x07FF,
        Special.NRES: 0x0800,
        Special.POSITIVE_INFINITY: 0x07FE,
        Special.NEGATIVE_INFINITY: 0x0802,
        Special.RESERVED: 0x0801,
    },
)
_FLOAT = _Format(
    "FLOAT",
    24,
    8,
    {
        Special.NAN: 0x007FFFFF,
        Special.NRES: 0x00800000,
        Special.POSITIVE_INFINITY: 0x007FFFFE,
        Special.NEGATIVE_INFINITY: 0x00800002,
        Special.RESERVED: 0x00800001,
    },
)


def _coded(value: float, fmt: _Format, min_exponent: int | None = None) -> Coded:
    low, high = fmt.exponent_range
    decimal = Decimal(repr(float(value)))
    natural = decimal.normalize().as_tuple().exponent
    if not isinstance(natural, int):
        raise ValueError(f"{value!r} is not a finite number")
    exponent = max(min(0, natural), low if min_exponent is None else max(low, min_exponent))
    while exponent <= high:
        mantissa = int(decimal.scaleb(-exponent).to_integral_value(ROUND_HALF_EVEN))
        if abs(mantissa) <= fmt.max_mantissa:
            return Coded(mantissa, exponent)
        exponent += 1
    raise ValueError(f"{value!r} is too large for {fmt.name}")


def coded_sfloat(value: float, min_exponent: int | None = None) -> Coded:
    """How `value` is coded as an SFLOAT (see module docstring); `min_exponent` caps the decimals kept."""
    return _coded(value, _SFLOAT, min_exponent)


def coded_float(value: float, min_exponent: int | None = None) -> Coded:
    return _coded(value, _FLOAT, min_exponent)


def _pack(value: Number, fmt: _Format) -> int:
    if isinstance(value, Special):
        return fmt.specials[value]
    if not isinstance(value, Coded):
        if math.isnan(value):
            return fmt.specials[Special.NAN]
        if math.isinf(value):
            return fmt.specials[Special.POSITIVE_INFINITY if value > 0 else Special.NEGATIVE_INFINITY]
        value = _coded(value, fmt)
    low, high = fmt.exponent_range
    if not low <= value.exponent <= high or abs(value.mantissa) > fmt.max_mantissa:
        raise ValueError(f"{value} does not fit an {fmt.name}")
    mantissa_mask = (1 << fmt.mantissa_bits) - 1
    exponent_mask = (1 << fmt.exponent_bits) - 1
    return ((value.exponent & exponent_mask) << fmt.mantissa_bits) | (value.mantissa & mantissa_mask)


def encode_sfloat(value: Number) -> bytes:
    """Two bytes, little-endian; a float NaN or ±inf becomes the matching special value."""
    return _pack(value, _SFLOAT).to_bytes(2, "little")


def encode_float(value: Number) -> bytes:
    """Four bytes, little-endian; a float NaN or ±inf becomes the matching special value."""
    return _pack(value, _FLOAT).to_bytes(4, "little")


def sfloat_in(value: Number, places: int) -> Special | Coded:
    """`value` given in a display unit, coded as an SFLOAT of a unit 10**-places larger (mg/dL → kg/L: -5).

    The display value keeps its own decimals (100 mg/dL → 100 × 10^-5 kg/L), as glucose meters send it.
    """
    if isinstance(value, Special):
        return value
    if isinstance(value, Coded):
        return value.shifted(places)
    if math.isnan(value):
        return Special.NAN
    if math.isinf(value):
        return Special.POSITIVE_INFINITY if value > 0 else Special.NEGATIVE_INFINITY
    return coded_sfloat(value, min_exponent=_SFLOAT.exponent_range[0] - places).shifted(places)
