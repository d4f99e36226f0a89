"""Device handlers: how each kind of BLE health device is driven, and the manager that runs the paired ones.

`manager.DeviceManager` listens to advertisements and runs a session per device with its handler (one module per
device type); `session.Session` does the link work and turns decoded values (`edge_agent.gatt`) into readings for
`Agent.accept`; `state` keeps per-device memory between connections; `pairing` backs `varde edge pair`.
Handlers see only the link interface (`edge_agent.link`), so the device simulators can stand in for hardware.
"""

from __future__ import annotations

from edge_agent.devices.base import DeviceHandler, Subscription
from edge_agent.devices.manager import HANDLERS, DeviceManager, DeviceRuntime, state_path
from edge_agent.devices.models import Clock, ReadingSink, Timing
from edge_agent.devices.pairing import Candidate, add_device, bond, discover, health_device
from edge_agent.devices.session import (
    DEVICE_CLOCK_CORRECTED,
    DEVICE_CLOCK_RESET,
    DEVICE_CLOCK_UNKNOWN,
    Session,
    SessionContext,
    SessionReport,
)
from edge_agent.devices.state import DeviceState, DeviceStateStore

__all__ = [
    "DEVICE_CLOCK_CORRECTED",
    "DEVICE_CLOCK_RESET",
    "DEVICE_CLOCK_UNKNOWN",
    "HANDLERS",
    "Candidate",
    "Clock",
    "DeviceHandler",
    "DeviceManager",
    "DeviceRuntime",
    "DeviceState",
    "DeviceStateStore",
    "ReadingSink",
    "Session",
    "SessionContext",
    "SessionReport",
    "Subscription",
    "Timing",
    "add_device",
    "bond",
    "discover",
    "health_device",
    "state_path",
]
