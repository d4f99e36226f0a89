"""What the device handlers share: the clocks and timings they run on, and where readings go (the `Agent`).

Clocks are injected so the simulator tests can move time instead of sleeping; production uses the system clocks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from edge_agent.outbox import PutResult
from vitals import Reading


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Clock:
    wall: Callable[[], datetime] = field(default=_utc_now)
    """Timezone-aware UTC now: what readings are timed and device clocks are set by."""
    monotonic: Callable[[], float] = field(default=time.monotonic)
    """Seconds for back-off and the scanner watchdog."""
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)
    """How the manager's watchdog loop waits between checks and adapter retries."""


@dataclass(frozen=True, slots=True)
class Timing:
    connect_timeout_s: float = 20.0
    idle_s: float = 10.0
    """A cuff, scale or thermometer that sends nothing for this long is done; the gateway disconnects."""
    stream_idle_s: float = 60.0
    """A streaming device (heart-rate strap, continuous oximeter) silent for this long is dropped."""
    racp_timeout_s: float = 30.0
    """Longest wait for the next record or answer during a Record Access Control Point procedure."""
    after_success_s: float = 15.0
    """Ignore a device's advertisements this long after a complete transfer (cuffs keep advertising briefly)."""
    clock_tolerance_s: float = 30.0
    """A device clock off by more than this is set, and its readings are flagged `device_clock_corrected`."""
    watchdog_period_s: float = 30.0
    quiet_restart_s: float = 120.0
    """Restart scanning when no advertisement at all was heard for this long."""


class ReadingSink(Protocol):
    """Where handlers hand readings and device sightings: `edge_agent.agent.Agent` in production."""

    def accept(self, readings: Sequence[Reading]) -> PutResult: ...

    def note_device(self, address: str, *, battery_percent: int | None = None) -> None: ...
