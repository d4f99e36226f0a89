"""Helpers for the device tests: a simulated air with a gateway radio, a manager wired to a real outbox, a fake
clock, and a way to run async tests with a hard time limit.

A `Rig` runs over either link (the `link` fixture, see conftest.py): "python" is the in-process medium of
`device_simulators.link`; "bumble" serves the same virtual devices as Bumble GATT servers
(`device_simulators.bumble_air`) and drives them through `edge_agent.links.bumble_link`, so the same test runs over
real ATT/GATT/SMP."""

from __future__ import annotations

import asyncio
import functools
import json
import random
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from device_simulators.bumble_air import BumbleAir, VirtualDongle
from device_simulators.link import Air, SimClock
from device_simulators.peripherals import Peripheral
from edge_agent.config import DeviceConfig
from edge_agent.devices import Clock, DeviceManager, DeviceStateStore, Timing
from edge_agent.link import Radio
from edge_agent.links.bumble_link import BumbleRadio
from edge_agent.outbox import Outbox, PutResult
from vitals import Reading

GW = "gw-test-0001"
LINKS = ("python", "bumble")
GATEWAY = "00:1A:7D:DA:71:01"
TZ = "Europe/Oslo"
START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
"""10:00 in Oslo (CET, UTC+1)."""
FAST = Timing(
    connect_timeout_s=1.0,
    idle_s=1.0,  # real time: over Bumble on a loaded machine the gap between two records can pass 0.2 s
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


def make_air(link: str, clock: SimClock | None = None) -> Air:
    """The medium for `link`: the in-process air, or the Bumble LocalLink with the devices as GATT servers."""
    return BumbleAir(clock or SimClock(START)) if link == "bumble" else Air(clock or SimClock(START))


def make_radio(air: Air, identity: str = GATEWAY, slots: int = 5) -> Any:
    """The gateway's radio on `air`: a `VirtualRadio`, or a `BumbleRadio` on a virtual dongle."""
    if isinstance(air, BumbleAir):
        return BumbleRadio(air.dongle(identity).open, slots=slots)
    return air.radio(identity=identity, slots=slots)


class Rig:
    """One gateway (radio, manager, outbox) and the devices around it, on a fake clock, over either link."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        slots: int = 5,
        timing: Timing = FAST,
        seed: int = 7,
        start: datetime = START,
        link: str = "python",
        identity: str = GATEWAY,
    ) -> None:
        if link not in LINKS:
            raise ValueError(f"unknown link {link!r}")
        self.tmp_path = tmp_path
        self.link = link
        self.clock = SimClock(start)
        self.air: Air = BumbleAir(self.clock, seed=seed) if link == "bumble" else Air(self.clock, seed=seed)
        self.slots = slots
        self.sink = OutboxSink(tmp_path / "outbox.sqlite")
        self.timing = timing
        self.configs: list[DeviceConfig] = []
        self.manager: DeviceManager | None = None
        self.radios_made = 0
        self.dongle: VirtualDongle | None = None
        self.radio: Any = None
        self._connect(identity)

    def _connect(self, identity: str) -> None:
        if isinstance(self.air, BumbleAir):
            self.dongle = self.air.dongle(identity)
            self.radio = BumbleRadio(self.dongle.open, slots=self.slots)
        else:
            self.radio = self.air.radio(identity=identity, slots=self.slots)

    def another_gateway(self, tmp_path: Path, *, identity: str) -> Rig:
        """A second gateway (its own radio identity, outbox and state) among the same devices, on the same clock."""
        other = Rig(tmp_path, slots=self.slots, timing=self.timing, link=self.link, identity=identity)
        other.air, other.clock = self.air, self.clock
        other._connect(identity)
        return other

    def pair(self, device: Peripheral, *, bond: bool = False, passkey: str | None = None) -> DeviceConfig:
        config = DeviceConfig.model_validate(
            {"address": device.address, "type": device.device_type, "model": device.model, "bond": bond}
            | ({"passkey": passkey} if passkey else {})
        )
        self.configs.append(config)
        return config

    def _radio(self) -> Radio:
        self.radios_made += 1
        if self.dongle is not None and self.radios_made > 1:
            # A real gateway reopens its adapter after losing it: a new host on the (re-plugged) controller.
            self.radio = BumbleRadio(self.dongle.open, slots=self.slots)
        radio: Radio = self.radio
        return radio

    # ---- adapter faults --------------------------------------------------------------------------------------

    def deafen_adapter(self) -> None:
        """The adapter keeps "scanning" but delivers nothing (the BlueZ failure the scanner watchdog is for)."""
        if self.dongle is not None:
            self.dongle.deafen()
        else:
            self.radio.quiet = True

    def unplug_adapter(self) -> None:
        if self.dongle is not None:
            self.dongle.unplug()
        else:
            self.radio.power_off()

    def plug_in_adapter(self) -> None:
        if self.dongle is not None:
            self.dongle.plug_in()
        else:
            self.radio.power_on()

    # ---- running -------------------------------------------------------------------------------------------

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
        """Wait until what the devices announced has been served: on the Bumble link the stack runs in real time,
        so wait until no session has been running for a few advertising intervals, or until no session runs and no
        device is on the air any more (then nothing can start another)."""
        assert self.manager is not None
        manager = self.manager
        await asyncio.sleep(0)
        await manager.settle()
        if not isinstance(self.air, BumbleAir):
            return
        air = self.air

        def idle() -> bool:
            return not any(r.busy for r in manager.devices.values())

        quiet = 0
        deadline = asyncio.get_running_loop().time() + 10.0
        while quiet < 3 and asyncio.get_running_loop().time() < deadline:
            if idle() and not air.on_the_air():
                await self.flush()
                if idle() and not air.on_the_air():
                    return
            await asyncio.sleep(0.05)
            quiet = 0 if not idle() else quiet + 1
            await manager.settle()

    async def flush(self) -> None:
        """Let what is on the air arrive: the Bumble stack hands PDUs on through the event loop, no timers."""
        for _ in range(1 if self.link == "python" else 200):
            await asyncio.sleep(0)

    async def until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0 if self.link == "python" else 0.005)

    async def stop(self) -> None:
        if self.manager is not None:
            await self.manager.stop()
        self.sink.close()

    def kinds(self) -> list[tuple[str, float, str]]:
        return [(r["kind"], r["value"], r["unit"]) for r in self.sink.stored()]
