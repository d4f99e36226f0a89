"""Battery Level (0x2A19) bytes."""

from __future__ import annotations


def encode_battery_level(percent: int) -> bytes:
    if not 0 <= percent <= 100:
        raise ValueError(f"battery level {percent} % is outside 0–100")
    return bytes((percent,))
