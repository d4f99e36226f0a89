"""Current Time (0x2A2B) as a device's clock: the bytes it reports, and the gateway's write it must accept."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from device_simulators.encoders._fields import bits, date_time, u8

ADJUST_REASONS = {
    "manual_time_update": 0,
    "external_reference_time_update": 1,
    "change_of_time_zone": 2,
    "change_of_dst": 3,
}


def encode_current_time(when: datetime | None, adjust_reasons: Iterable[str] = ()) -> bytes:
    """10 bytes; `when=None` reports a clock that was never set (date and day of week all "not known")."""
    day_of_week = 0 if when is None else when.isoweekday()
    fractions = 0 if when is None else when.microsecond * 256 // 1_000_000
    return date_time(when) + u8(day_of_week) + u8(fractions) + u8(bits(adjust_reasons, ADJUST_REASONS, "reason"))


def parse_current_time_write(data: bytes) -> datetime:
    """The wall time a gateway writes to set the simulated clock; ValueError for anything else."""
    if len(data) != 10:
        raise ValueError(f"Current Time is 10 bytes, got {len(data)}")
    year = int.from_bytes(data[0:2], "little")
    month, day, hour, minute, second = data[2:7]
    return datetime(year, month, day, hour, minute, second, microsecond=(data[8] * 1_000_000 + 255) // 256)
