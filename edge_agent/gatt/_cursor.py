"""A bounds-checked little-endian reader over one characteristic value; every short read is a TruncatedError."""

from __future__ import annotations

import logging
from datetime import datetime

from edge_agent.gatt.errors import MalformedError, TruncatedError
from edge_agent.gatt.models import Payload, Skip, skip
from edge_agent.gatt.sfloat import Coded, Special, decode_float, decode_sfloat

_log = logging.getLogger("edge_agent.gatt")


class Cursor:
    def __init__(self, data: Payload, characteristic: str) -> None:
        self.data = bytes(data)
        self.characteristic = characteristic
        self.offset = 0

    def take(self, size: int, field: str) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise TruncatedError(
                self.characteristic,
                f"{field} needs {size} bytes at offset {self.offset}, payload has {len(self.data)}",
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def uint(self, size: int, field: str) -> int:
        return int.from_bytes(self.take(size, field), "little")

    def u8(self, field: str) -> int:
        return self.uint(1, field)

    def u16(self, field: str) -> int:
        return self.uint(2, field)

    def s16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "little", signed=True)

    def sfloat(self, field: str) -> Coded | Special:
        return decode_sfloat(self.u16(field))

    def float32(self, field: str) -> Coded | Special:
        return decode_float(self.uint(4, field))

    def date_time(self, field: str) -> datetime | None:
        return decode_date_time(self.take(7, field), self.characteristic, field)

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset

    def finish(self, reserved_flags: int = 0) -> None:
        """Refuse trailing bytes, unless reserved flag bits are set (a newer spec appends its fields at the end)."""
        if self.remaining and not reserved_flags:
            raise MalformedError(self.characteristic, f"{self.remaining} unexpected bytes after offset {self.offset}")
        if reserved_flags:
            _log.debug(
                "gatt.reserved_flags_ignored",
                extra={
                    "event": "gatt.reserved_flags_ignored",
                    "characteristic": self.characteristic,
                    "reserved_flags": reserved_flags,
                    "trailing_bytes": self.remaining,
                },
            )


def decode_date_time(raw: bytes, characteristic: str, field: str) -> datetime | None:
    """The 7-byte Date Time (0x2A08): year uint16, month, day, hours, minutes, seconds.

    Year, month or day 0 means "not known" and gives None; an impossible date (month 13, hour 24) is logged and
    also gives None, since the measurement itself is still good and the gateway can time it on receipt.
    """
    year = int.from_bytes(raw[0:2], "little")
    month, day, hour, minute, second = raw[2:7]
    if year == 0 or month == 0 or day == 0:
        return None
    try:
        if year < 1582:
            raise ValueError(f"year {year} before 1582")
        return datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        _log.warning(
            "gatt.invalid_device_time",
            extra={
                "event": "gatt.invalid_device_time",
                "characteristic": characteristic,
                "field": field,
                "raw": raw.hex(),
                "detail": str(exc),
            },
        )
        return None


def usable(value: Coded | Special, field: str, skipped: list[Skip], characteristic: str) -> Coded | None:
    """The coded number, or None after recording why the device sent no number in this field."""
    if isinstance(value, Special):
        skipped.append(skip(characteristic, field, value.value))
        return None
    return value


def names_of_bits(value: int, names: dict[int, str]) -> tuple[str, ...]:
    """The names of the set bits of `value` that `names` knows (bit number → name), in bit order."""
    return tuple(name for bit, name in sorted(names.items()) if value & (1 << bit))
