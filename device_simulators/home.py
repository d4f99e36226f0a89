"""A simulated patient's home: the devices of a scenario and the path of its acts into a real edge `Agent`.

This is the fast path, used where many simulated days must pass in seconds (the scenario acceptance tests); the
demo takes the GATT path through virtual devices and the edge's own handlers (`virtual_home`).

`readings_of` turns one measurement act into the `vitals.Reading`s a gateway sends for a decoded record, written
from the wire contract rather than with the edge's code (an independent oracle: stable ids from the device's own
time, clock correction, one group per act); values the contract does not allow come back as refused.
`scenario_source` is an Agent source that hands acts over when they are due (at once for the past: a backlog), and
`AgentRunner` runs many Agents on one asyncio loop in a background thread. `faulty_gateway_envelope` is the other
path: what a gateway with broken firmware would send, values and clocks unchecked, for the cloud's own defences to
deal with.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from device_simulators.physiology import DeviceType, MeasurementAct
from edge_agent.agent import Agent, Source
from edge_agent.config import (
    BleConfig,
    BrokerConfig,
    DeviceConfig,
    EdgeConfig,
    OutboxConfig,
    PatientScreenConfig,
    PublisherConfig,
)
from vitals import KINDS, SCHEMA, DeviceRef, Kind, Reading, group_id, reading_id

log = logging.getLogger(__name__)

CLOCK_CORRECTED = "device_clock_corrected"
"""Flag on readings whose device clock was off by more than `CLOCK_TOLERANCE` and corrected by the gateway."""
CLOCK_TOLERANCE = timedelta(minutes=5)

DEVICE_MODELS: dict[DeviceType, str] = {
    "blood_pressure_monitor": "UA-651BLE",
    "pulse_oximeter": "PO-60",
    "weight_scale": "UC-352BLE",
    "thermometer": "FT-95",
    "glucose_meter": "Contour Next One",
}


def device_address(seed: int, device_type: DeviceType) -> str:
    """A stable random-static Bluetooth address for the patient's device (two top bits set, as the spec says)."""
    raw = bytearray(hashlib.sha256(f"{seed}|{device_type}".encode()).digest()[:6])
    raw[0] |= 0xC0
    return ":".join(f"{b:02X}" for b in raw)


def home_devices(seed: int, device_types: Iterable[DeviceType]) -> dict[DeviceType, DeviceRef]:
    return {t: DeviceRef(address=device_address(seed, t), type=t, model=DEVICE_MODELS[t]) for t in device_types}


@dataclass(frozen=True, slots=True)
class Refused:
    """A value of an act that the wire contract does not allow (implausible, NaN): a gateway logs it, never sends it."""

    kind: Kind
    value: float
    reason: str


@dataclass(frozen=True, slots=True)
class ActReadings:
    readings: tuple[Reading, ...]
    refused: tuple[Refused, ...]


def readings_of(
    act: MeasurementAct,
    *,
    gateway_id: str,
    device: DeviceRef,
    patient_timezone: str,
) -> ActReadings:
    """The readings a gateway sends for the act, written from the wire contract (docs/architecture.md), not with
    the edge's own code, so that the scenario tests check the edge against an independent oracle: one id per value,
    `reading_id(gateway, device address, kind, the device's own time, sequence)`, so a record fetched again maps to
    the same id; one group per act; the time in UTC, corrected for the device's clock; the act's flags.

    The gateway reads the device's current time when it connects, so it knows how far the device clock is from
    UTC; a device clock off by more than the time zone explains is flagged as corrected (`CLOCK_CORRECTED`).
    """
    correction = act.at.astimezone(UTC).replace(tzinfo=None) - act.device_time
    local_offset = act.at.astimezone(ZoneInfo(patient_timezone)).utcoffset() or timedelta()
    clock_error = -(correction + local_offset)
    flags = (*act.flags, *((CLOCK_CORRECTED,) if abs(clock_error) > CLOCK_TOLERANCE else ()))
    stamp = act.device_time.isoformat()
    group = group_id(gateway_id, device.address, stamp, act.sequence)
    measured_at = (act.device_time + correction).replace(tzinfo=UTC)
    readings: list[Reading] = []
    refused: list[Refused] = []
    for kind, value in act.values:
        try:
            readings.append(
                Reading(
                    id=reading_id(gateway_id, device.address, kind, stamp, act.sequence),
                    kind=kind,
                    value=value,
                    unit=KINDS[kind].unit,
                    measured_at=measured_at,
                    device=device,
                    group=group,
                    flags=tuple(dict.fromkeys(flags)),
                )
            )
        except ValidationError as exc:
            reason = str(exc.errors(include_url=False)[0]["msg"]).removeprefix("Value error, ")
            refused.append(Refused(kind, value, reason))
    return ActReadings(tuple(readings), tuple(refused))


def faulty_gateway_envelope(
    acts: Sequence[MeasurementAct], *, gateway_id: str, devices: dict[DeviceType, DeviceRef]
) -> bytes:
    """An envelope from a gateway that checks nothing: device clock taken as UTC, values as they came (NaN
    written as the JSON-invalid token `NaN`, as Python's json module does). Written from the wire contract
    (`vitals.SCHEMA`, gateway id, send time, readings), not with the edge's encoder."""
    readings = []
    for act in acts:
        device = devices[act.device_type]
        stamp = act.device_time.isoformat()
        group = group_id(gateway_id, device.address, stamp, act.sequence)
        for kind, value in act.values:
            readings.append(
                {
                    "id": str(reading_id(gateway_id, device.address, kind, stamp, act.sequence)),
                    "kind": str(kind),
                    "value": value,
                    "unit": KINDS[kind].unit,
                    "measured_at": act.device_time.replace(tzinfo=UTC).isoformat(),
                    "device": device.model_dump(exclude_none=True),
                    "group": group,
                    "flags": list(act.flags),
                }
            )
    sent_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    envelope = {"schema": SCHEMA, "gateway_id": gateway_id, "sent_at": sent_at, "readings": readings}
    return json.dumps(envelope, separators=(",", ":")).encode()


# --- running gateways -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatewayLogin:
    gateway_id: str
    password: str
    host: str
    port: int


def edge_config(
    login: GatewayLogin,
    workdir: Path,
    devices: Iterable[DeviceRef | DeviceConfig],
    *,
    patient_timezone: str = "Europe/Oslo",
    publisher: PublisherConfig | None = None,
    ble: BleConfig | None = None,
    patient_screen: PatientScreenConfig | None = None,
) -> EdgeConfig:
    """A gateway configuration for a simulated home, outbox and plan under `workdir`; no radio unless `ble` is
    given (the GATT path: `virtual_home.VirtualHome` supplies the radio); no patient page unless `patient_screen`
    is given (many simulated homes in one process would all want the default port)."""
    return EdgeConfig(
        gateway_id=login.gateway_id,
        patient_timezone=patient_timezone,
        broker=BrokerConfig(host=login.host, port=login.port, username=login.gateway_id, password=login.password),
        outbox=OutboxConfig(path=workdir / login.gateway_id / "outbox.sqlite"),
        publisher=publisher or PublisherConfig(),
        ble=ble or BleConfig(enabled=False),
        patient_screen=patient_screen or PatientScreenConfig(enabled=False),
        devices=[
            d if isinstance(d, DeviceConfig) else DeviceConfig(address=d.address, type=d.type, model=d.model)
            for d in devices
        ],
    )


@dataclass(slots=True)
class FeedStats:
    acts: int = 0
    readings: int = 0
    refused_at_edge: int = 0
    """Values the gateway would not turn into readings (implausible, NaN): logged, never sent."""
    pending: int = 0
    done: bool = False


Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def scenario_source(
    acts: Sequence[MeasurementAct],
    devices: dict[DeviceType, DeviceRef],
    *,
    patient_timezone: str = "Europe/Oslo",
    stats: FeedStats | None = None,
    clock: Clock = _utc_now,
    max_sleep_s: float = 5.0,
) -> Source:
    """An Agent source that accepts each act once it is due (`upload_after`); past acts go in one backlog."""
    queue = sorted(acts, key=lambda a: a.upload_after)
    counters = stats if stats is not None else FeedStats()
    counters.pending = len(queue)

    async def feed(agent: Agent) -> None:
        index = 0
        while index < len(queue):
            now = clock()
            due = []
            while index < len(queue) and queue[index].upload_after <= now:
                due.append(queue[index])
                index += 1
            if due:
                readings: list[Reading] = []
                for act in due:
                    batch = readings_of(
                        act,
                        gateway_id=agent.config.gateway_id,
                        device=devices[act.device_type],
                        patient_timezone=patient_timezone,
                    )
                    readings.extend(batch.readings)
                    for refused in batch.refused:
                        counters.refused_at_edge += 1
                        log.warning(
                            "reading_refused_at_edge gateway=%s reason=%s", agent.config.gateway_id, refused.reason
                        )
                    agent.note_device(devices[act.device_type].address)
                await asyncio.to_thread(agent.accept, readings)
                counters.acts += len(due)
                counters.readings += len(readings)
                counters.pending = len(queue) - index
                continue
            wait = (queue[index].upload_after - now).total_seconds()
            await asyncio.sleep(max(0.01, min(wait, max_sleep_s)))
        counters.done = True

    return feed


@dataclass
class _Running:
    agent: Agent
    future: concurrent.futures.Future[int]


@dataclass
class AgentRunner:
    """Many edge Agents on one asyncio loop in one background thread (each Agent adds its publisher thread).

    Signal handling stays with the caller's main thread: stop the runner from there.
    """

    running: list[_Running] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="varde-sim-agents", daemon=True)
        self._thread.start()
        ready.wait(10)

    def add(self, agent: Agent, sources: Sequence[Source] = ()) -> Agent:
        """Run the agent (and its sources) until stopped; returns once it has started."""
        if self._loop is None:
            raise RuntimeError("start the runner before adding agents")
        future = asyncio.run_coroutine_threadsafe(agent.run(sources), self._loop)
        self.running.append(_Running(agent, future))
        deadline = time.monotonic() + 10
        while not agent.publisher.alive and not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        return agent

    def stop_agent(self, agent: Agent, timeout_s: float = 15.0) -> None:
        """Stop one agent gracefully (publish `offline`, keep its outbox) and wait for it."""
        entries = [e for e in self.running if e.agent is agent]
        self._stop(entries, timeout_s)
        self.running = [e for e in self.running if e.agent is not agent]

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop(self.running, timeout_s)
        self.running = []
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._loop = None
        self._thread = None

    @staticmethod
    def _stop(entries: Sequence[_Running], timeout_s: float) -> None:
        for entry in entries:
            entry.agent.request_stop()
        deadline = time.monotonic() + timeout_s
        for entry in entries:
            try:
                entry.future.result(max(0.1, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                log.warning("agent_stop_timed_out gateway=%s", entry.agent.config.gateway_id)

    def __enter__(self) -> AgentRunner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
