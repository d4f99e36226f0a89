"""Helpers for the device tests: a simulated air with a gateway radio, a manager wired to a real outbox, a fake
clock, and a way to run async tests with a hard time limit."""

from __future__ import annotations

import asyncio
import functools
import json
import random
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from device_simulators.link import Air, SimClock, VirtualRadio
from device_simulators.peripherals import Peripheral
from edge_agent.config import DeviceConfig
from edge_agent.devices import Clock, DeviceManager, DeviceStateStore, Timing
from edge_agent.outbox import Outbox, PutResult
from vitals import Reading

GW = "gw-test-0001"
TZ = "Europe/Oslo"
START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
"""10:00 in Oslo (CET, UTC+1)."""
FAST = Timing(
    connect_timeout_s=1.0,
    idle_s=0.2,
    stream_idle_s=0.5,
    racp_timeout_s=0.5,
    after_success_s=15.0,
    clock_tolerance_s=30.0,
    watchdog_period_s=0.05,
    quiet_restart_s=120.0,
)


def async_test(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop, failing it after 20 s instead of hanging the suite."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 20.0))

    return wrapper


class OutboxSink:
    """The `Agent`'s two methods over a real outbox, recording what the handlers handed over."""

    def __init__(self, path: Path, *, max_rows: int = 1_000_000) -> None:
        self.outbox = Outbox(path, max_rows=max_rows)
        self.accepted: list[Reading] = []
        self.sightings: list[str] = []
        self.battery: dict[str, int] = {}

    def accept(self, readings: Sequence[Reading]) -> PutResult:
        self.accepted.extend(readings)
        return self.outbox.put(readings)

    def note_device(self, address: str, *, battery_percent: int | None = None) -> None:
        self.sightings.append(address)
        if battery_percent is not None:
            self.battery[address] = battery_percent

    def stored(self) -> list[dict[str, Any]]:
        """Every reading in the outbox, as wire JSON, oldest first."""
        return [json.loads(row.body) for row in self.outbox.fetch(0, 1_000_000).rows]

    def close(self) -> None:
        self.outbox.close()


class Rig:
    """One gateway (radio, manager, outbox) and the devices around it, on a fake clock."""

    def __init__(
        self, tmp_path: Path, *, slots: int = 5, timing: Timing = FAST, seed: int = 7, start: datetime = START
    ) -> None:
        self.tmp_path = tmp_path
        self.clock = SimClock(start)
        self.air = Air(self.clock, seed=seed)
        self.radio: VirtualRadio = self.air.radio(slots=slots)
        self.sink = OutboxSink(tmp_path / "outbox.sqlite")
        self.timing = timing
        self.configs: list[DeviceConfig] = []
        self.manager: DeviceManager | None = None
        self.radios_made = 0

    def pair(self, device: Peripheral, *, bond: bool = False, passkey: str | None = None) -> DeviceConfig:
        config = DeviceConfig.model_validate(
            {"address": device.address, "type": device.device_type, "model": device.model, "bond": bond}
            | ({"passkey": passkey} if passkey else {})
        )
        self.configs.append(config)
        return config

    def _radio(self) -> VirtualRadio:
        self.radios_made += 1
        return self.radio

    async def start(self) -> DeviceManager:
        self.manager = DeviceManager(
            self.configs,
            gateway_id=GW,
            patient_timezone=TZ,
            sink=self.sink,
            radio_factory=self._radio,
            state=DeviceStateStore(self.tmp_path / "devices.json"),
            clock=Clock(wall=self.clock.now, monotonic=self.clock.monotonic),
            timing=self.timing,
            rng=random.Random(1),
        )
        await self.manager.start()
        return self.manager

    async def settle(self) -> None:
        assert self.manager is not None
        await asyncio.sleep(0)
        await self.manager.settle()

    async def stop(self) -> None:
        if self.manager is not None:
            await self.manager.stop()
        self.sink.close()

    def kinds(self) -> list[tuple[str, float, str]]:
        return [(r["kind"], r["value"], r["unit"]) for r in self.sink.stored()]
