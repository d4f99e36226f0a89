"""Current Time (0x2A2B), Current Time Service 1.1: read a device's clock, and build the value that sets it.

Layout (10 bytes): Date Time (year uint16, month, day, hours, minutes, seconds), Day of Week (0 unknown,
1 Monday … 7 Sunday), Fractions256 (1/256 s), Adjust Reason bits. The gateway writes the clock in the patient's
local wall time, since devices have no time zone. Reserved adjust-reason bits (4–7) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from edge_agent.gatt._cursor import Cursor, names_of_bits
from edge_agent.gatt.errors import MalformedError
from edge_agent.gatt.models import Payload

CURRENT_TIME = 0x2A2B

ADJUST_REASONS = {
    0: "manual_time_update",
    1: "external_reference_time_update",
    2: "change_of_time_zone",
    3: "change_of_dst",
}
_CHARACTERISTIC = "current_time"


@dataclass(frozen=True, slots=True)
class CurrentTime:
    exact_time: datetime | None
    """Naive device wall time with sub-second part from Fractions256; None when the device does not know it."""
    day_of_week: int | None
    """1 = Monday … 7 = Sunday; None when unknown."""
    fractions256: int
    adjust_reasons: tuple[str, ...]


def decode_current_time(data: Payload) -> CurrentTime:
    cursor = Cursor(data, _CHARACTERISTIC)
    when = cursor.date_time("date_time")
    day_of_week = cursor.u8("day_of_week")
    fractions = cursor.u8("fractions256")
    reasons = cursor.u8("adjust_reason")
    cursor.finish()
    if day_of_week > 7:
        raise MalformedError(_CHARACTERISTIC, f"day of week {day_of_week} is not 0–7")
    if when is not None:
        when = when.replace(microsecond=(fractions * 1_000_000 + 255) // 256)
    return CurrentTime(when, day_of_week or None, fractions, names_of_bits(reasons, ADJUST_REASONS))


def encode_current_time(when: datetime, adjust_reasons: tuple[str, ...] = ("manual_time_update",)) -> bytes:
    """The 10-byte value the gateway writes to set a device's clock to `when` (naive local wall time)."""
    if not 1582 <= when.year <= 9999:
        raise ValueError(f"year {when.year} is outside 1582–9999")
    bits = {name: bit for bit, name in ADJUST_REASONS.items()}
    unknown = set(adjust_reasons) - bits.keys()
    if unknown:
        raise ValueError(f"unknown adjust reasons {sorted(unknown)}")
    reasons = sum(1 << bits[name] for name in set(adjust_reasons))
    return (
        when.year.to_bytes(2, "little")
        + bytes((when.month, when.day, when.hour, when.minute, when.second, when.isoweekday()))
        + bytes((when.microsecond * 256 // 1_000_000, reasons))
    )
