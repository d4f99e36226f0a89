"""IEEE 11073-20601 SFLOAT (16-bit) and FLOAT (32-bit): decimal mantissa × 10^exponent, with special values.

A special value (NaN, NRes, ±INF, reserved) is returned as a `Special`, never as a number, so no caller can
mistake "the device has no value" for a measurement. The specials are recognised by their mantissa alone: a
device that sets an exponent on a special mantissa still yields no number (safer than reading 2047 × 10^e).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction


class Special(StrEnum):
    """The reserved mantissas; the string value is the skip reason a decoder records."""

    NAN = "nan"
    NRES = "nres"
    """Not at this resolution: the value cannot be represented with the encoding's precision."""
    POSITIVE_INFINITY = "positive_infinity"
    NEGATIVE_INFINITY = "negative_infinity"
    RESERVED = "reserved"


@dataclass(frozen=True, slots=True)
class Coded:
    """An exact decimal as it travelled: `mantissa × 10**exponent`."""

    mantissa: int
    exponent: int

    def exact(self) -> Fraction:
        return Fraction(self.mantissa) * Fraction(10) ** self.exponent

    def __float__(self) -> float:
        return float(self.exact())


_SFLOAT_SPECIALS = {
    0x07FF: Special.NAN,
    0x0800: Special.NRES,
    0x07FE: Special.POSITIVE_INFINITY,
    0x0802: Special.NEGATIVE_INFINITY,
    0x0801: Special.RESERVED,
}
_FLOAT_SPECIALS = {
    0x7FFFFF: Special.NAN,
    0x800000: Special.NRES,
    0x7FFFFE: Special.POSITIVE_INFINITY,
    0x800002: Special.NEGATIVE_INFINITY,
    0x800001: Special.RESERVED,
}


def _signed(raw: int, bits: int) -> int:
    return raw - (1 << bits) if raw & (1 << (bits - 1)) else raw


def decode_sfloat(raw: int) -> Coded | Special:
    """Decode a 16-bit SFLOAT given as an unsigned integer (4-bit exponent, 12-bit mantissa, both signed)."""
    if not 0 <= raw <= 0xFFFF:
        raise ValueError(f"SFLOAT must be a 16-bit unsigned integer, got {raw}")
    special = _SFLOAT_SPECIALS.get(raw & 0x0FFF)
    if special is not None:
        return special
    return Coded(_signed(raw & 0x0FFF, 12), _signed(raw >> 12, 4))


def decode_float(raw: int) -> Coded | Special:
    """Decode a 32-bit FLOAT given as an unsigned integer (8-bit exponent, 24-bit mantissa, both signed)."""
    if not 0 <= raw <= 0xFFFFFFFF:
        raise ValueError(f"FLOAT must be a 32-bit unsigned integer, got {raw}")
    special = _FLOAT_SPECIALS.get(raw & 0xFFFFFF)
    if special is not None:
        return special
    return Coded(_signed(raw & 0xFFFFFF, 24), _signed(raw >> 24, 8))


def sfloat_value(data: bytes) -> float | Special:
    """The value of a little-endian 2-byte SFLOAT, as a float or a Special."""
    if len(data) != 2:
        raise ValueError(f"SFLOAT is 2 bytes, got {len(data)}")
    decoded = decode_sfloat(int.from_bytes(data, "little"))
    return decoded if isinstance(decoded, Special) else float(decoded)


def float_value(data: bytes) -> float | Special:
    """The value of a little-endian 4-byte FLOAT, as a float or a Special."""
    if len(data) != 4:
        raise ValueError(f"FLOAT is 4 bytes, got {len(data)}")
    decoded = decode_float(int.from_bytes(data, "little"))
    return decoded if isinstance(decoded, Special) else float(decoded)
