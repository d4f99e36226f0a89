"""Field encoders shared by the characteristic encoders: Date Time, named bit sets, little-endian integers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime


def u8(value: int) -> bytes:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{value} does not fit a uint8")
    return bytes((value,))


def u16(value: int) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{value} does not fit a uint16")
    return value.to_bytes(2, "little")


def date_time(when: datetime | None) -> bytes:
    """Date Time (0x2A08), 7 bytes; None is sent as all zeros ("not known")."""
    if when is None:
        return bytes(7)
    if not 1582 <= when.year <= 9999:
        raise ValueError(f"year {when.year} is outside 1582–9999")
    return u16(when.year) + bytes((when.month, when.day, when.hour, when.minute, when.second))


def bits(names: Iterable[str], table: Mapping[str, int], what: str) -> int:
    """OR of the bits of `names` (name → bit number); an unknown name is a ValueError."""
    value = 0
    for name in names:
        if name not in table:
            raise ValueError(f"unknown {what} {name!r}; known: {sorted(table)}")
        value |= 1 << table[name]
    return value


def code(name: str, table: Mapping[str, int], what: str) -> int:
    if name not in table:
        raise ValueError(f"unknown {what} {name!r}; known: {sorted(table)}")
    return table[name]
