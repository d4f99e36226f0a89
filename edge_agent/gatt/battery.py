"""Battery Level (0x2A19): one uint8, 0–100 %; anything above 100 is reserved and refused as malformed."""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.gatt._cursor import Cursor
from edge_agent.gatt.errors import MalformedError
from edge_agent.gatt.models import Payload

BATTERY_LEVEL = 0x2A19
_CHARACTERISTIC = "battery_level"


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    percent: int


def decode_battery_level(data: Payload) -> BatteryLevel:
    cursor = Cursor(data, _CHARACTERISTIC)
    percent = cursor.u8("battery_level")
    cursor.finish()
    if percent > 100:
        raise MalformedError(_CHARACTERISTIC, f"battery level {percent} % is above 100")
    return BatteryLevel(percent)
