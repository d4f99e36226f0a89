"""The agent: owns the outbox and the publisher, takes decoded readings from device handlers, runs until SIGTERM.

Device handlers run as asyncio tasks ("sources") on the agent's loop and hand readings to `accept`, which commits
them to the outbox before returning and then wakes the publisher thread. BLE trouble never stops the outbox from
draining: the radio and the publisher fail and retry independently.

The patient's screen (`edge_agent.patient`) sees every committed reading at once, judged by the last good plan,
and its questionnaire answers travel through their own durable queue, published like readings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

from edge_agent.config import BleConfig, EdgeConfig
from edge_agent.link import AdapterUnavailableError, Radio
from edge_agent.outbox import Outbox, PutResult
from edge_agent.patient.screen import PatientScreen
from edge_agent.patient.server import PatientScreenServer
from edge_agent.plan_store import PlanStore
from edge_agent.publisher import Lane, Publisher
from edge_agent.systemd import notify, watchdog_period_s
from vitals import DeviceStatus, GatewayStatus, Reading, questionnaires_topic
from vitals.questionnaire import MAX_RESPONSES_PER_ENVELOPE, build_questionnaire_envelope

if TYPE_CHECKING:
    from edge_agent.devices.manager import DeviceManager

log = logging.getLogger(__name__)

Source = Callable[["Agent"], Coroutine[Any, Any, None]]
"""A device handler (or a test feed): runs on the agent's loop and calls `agent.accept(...)`."""
RadioFactory = Callable[[BleConfig], Radio]


def _agent_version() -> str:
    try:
        return metadata.version("varde")
    except metadata.PackageNotFoundError:
        return "0.0.0+source"


AGENT_VERSION = _agent_version()
_EXPIRE_EVERY_S = 600.0
_HEARTBEAT_STALE_S = 30.0


def configured_radio(config: EdgeConfig) -> Radio:
    """The radio `[ble]` asks for: bleak on BlueZ, or Bumble driving a dongle (imported only when chosen)."""
    ble = config.ble
    if ble.backend == "bumble":
        try:
            from edge_agent.links.bumble_link import BumbleRadio
        except ImportError as exc:
            raise AdapterUnavailableError(
                f"[ble] backend = \"bumble\" needs Bumble: pip install 'varde[bumble]' ({exc})"
            ) from exc
        return BumbleRadio.on_transport(ble.bumble_transport, keys=config.bumble_keys_path)
    from edge_agent.links.bleak_link import BleakRadio

    return BleakRadio(adapter=ble.adapter, quiet_restart_s=ble.quiet_restart_s)


def _configured(ble: BleConfig) -> Radio:
    raise AssertionError("placeholder for the configured radio; replaced in Agent.__init__")


class Agent:
    def __init__(self, config: EdgeConfig, *, radio_factory: RadioFactory | None = _configured) -> None:
        self.config = config
        if radio_factory is _configured:
            radio_factory = lambda _ble: configured_radio(config)  # noqa: E731
        self.outbox = Outbox(
            config.outbox.path, max_rows=config.outbox.max_rows, max_age_s=config.outbox.max_age_days * 86400
        )
        self.plans = PlanStore(config.resolved_plan_path)
        self.questionnaires = Outbox(
            config.questionnaire_queue_path, max_rows=10_000, max_age_s=config.outbox.max_age_days * 86400
        )
        self.screen = PatientScreen(
            plans=self.plans,
            journal_path=config.patient_journal_path,
            questionnaire_queue=self.questionnaires,
            timezone=config.patient_timezone,
            language=config.patient_screen.language,
            connected=lambda: self.publisher.connected,
            pending_readings=lambda: self.outbox.depth,
            wake_publisher=lambda: self.publisher.wake(),
        )
        self.screen_server: PatientScreenServer | None = None
        """The local patient page, while it listens."""
        self.publisher = Publisher(
            gateway_id=config.gateway_id,
            username=config.username,
            broker=config.broker,
            settings=config.publisher,
            outbox=self.outbox,
            plans=self.plans,
            status=self.status,
            lanes=[
                Lane(
                    "questionnaires",
                    self.questionnaires,
                    questionnaires_topic(config.gateway_id),
                    build_questionnaire_envelope,
                    max_rows=MAX_RESPONSES_PER_ENVELOPE,
                )
            ],
            on_plan=self._plan_received,
            on_receipt=self.screen.receive_receipt,
        )
        self.devices: DeviceManager | None = None
        """The device manager, once the radio task runs it; it owns the radio and stops scanning itself."""
        self._radio_factory = radio_factory if config.ble.enabled and config.devices else None
        self._devices = {d.address: DeviceStatus(address=d.address, type=d.type) for d in config.devices}
        self._refusing = False
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.exit_code = 0

    # ---- what device handlers call ---------------------------------------------------------------------------

    def accept(self, readings: Sequence[Reading]) -> PutResult:
        """Commit readings to the outbox (durable on return), then wake the publisher.

        Readings refused because the outbox is full are reported in the result and logged; a handler should then
        leave the records in the device's memory and fetch them again later.
        """
        result = self.outbox.put(readings)
        if result.refused:
            log.error(
                "outbox_full refused=%d depth=%d max_rows=%d hint=%s",
                result.refused,
                self.outbox.depth,
                self.outbox.max_rows,
                "the gateway has been offline too long; check its internet connection",
            )
            if not self._refusing:
                self._refusing = True
                self.publisher.request_status()
        elif self._refusing:
            self._refusing = False
            self.publisher.request_status()
        if result.added:
            self.publisher.wake()
        try:
            self.screen.observe(readings)
        except Exception:  # the screen must never cost a reading its place in the outbox
            log.exception("patient_screen_observe_failed readings=%d", len(readings))
        return result

    def _plan_received(self, topic: str, payload: bytes, retained: bool) -> None:
        """Publisher thread: judge the plan message; a change of plan (or a refusal) goes into the status at once."""
        if self.screen.plans.receive(topic, payload, retained) in ("accepted", "refused"):
            self.publisher.request_status()

    def note_device(self, address: str, *, battery_percent: int | None = None) -> None:
        """Record that a configured device was seen (and its battery level, when the handler read it)."""
        known = self._devices.get(address.upper())
        if known is None:
            return
        update: dict[str, object] = {"last_seen": datetime.now(UTC)}
        if battery_percent is not None:
            update["battery_percent"] = max(0, min(100, battery_percent))
        self._devices[known.address] = known.model_copy(update=update)

    def status(self) -> GatewayStatus:
        """The retained `online` status; called from the publisher thread."""
        return GatewayStatus(
            state="online",
            agent_version=AGENT_VERSION,
            outbox_depth=self.outbox.depth,
            outbox_full=self.outbox.full or self._refusing,
            devices=list(self._devices.values()),
            at=datetime.now(UTC),
            plan_version=plan.version if (plan := self.screen.plans.plan) is not None else None,
            plan_problem=self.screen.plans.problem,
        )

    # ---- running -------------------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Thread-safe: ask `run` to shut down gracefully."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def run(self, sources: Sequence[Source] = ()) -> int:
        """Run until SIGTERM/SIGINT (or `request_stop`); returns the process exit code."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(sig, self._stop.set)
        self.publisher.start()
        await self._start_screen()
        log.info(
            "agent_started gateway=%s version=%s devices=%d depth=%d",
            self.config.gateway_id,
            AGENT_VERSION,
            len(self._devices),
            self.outbox.depth,
        )
        tasks = [asyncio.create_task(self._housekeeping(), name="housekeeping")]
        if self._radio_factory is not None:
            tasks.append(asyncio.create_task(self._watch_radio(self._radio_factory), name="radio"))
        tasks.extend(asyncio.create_task(source(self), name=f"source-{i}") for i, source in enumerate(sources))
        notify("READY=1")
        try:
            await self._stop.wait()
        finally:
            notify("STOPPING=1")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.screen_server is not None:
                await self.screen_server.close()
            await asyncio.to_thread(self.publisher.stop)
            self.outbox.close()
            self.questionnaires.close()
            self.screen.close()
            self.plans.close()
            log.info("agent_stopped exit_code=%d", self.exit_code)
        return self.exit_code

    async def _start_screen(self) -> None:
        """Serve the patient's page; if its port is taken the agent still runs (readings matter most)."""
        settings = self.config.patient_screen
        if not settings.enabled:
            return
        server = PatientScreenServer(self.screen, settings)
        try:
            await server.start()
        except OSError as exc:
            log.error(
                "patient_screen_unavailable bind=%s port=%d error=%s hint=%s",
                settings.bind,
                settings.port,
                exc.strerror or exc,
                "set patient_screen.port to a free port",
            )
            return
        self.screen_server = server

    async def _housekeeping(self) -> None:
        period = watchdog_period_s()
        tick = min(period or 5.0, 5.0)
        next_expire = time.monotonic()
        while True:
            now = time.monotonic()
            if not self.publisher.alive:
                log.critical("publisher_thread_died stopping=true")
                self.exit_code = 1
                assert self._stop is not None
                self._stop.set()
                return
            if now >= next_expire:
                await asyncio.to_thread(self.outbox.expire)
                await asyncio.to_thread(self.questionnaires.expire)
                await asyncio.to_thread(self.screen.journal.prune)
                next_expire = now + _EXPIRE_EVERY_S
            if period is not None and now - self.publisher.heartbeat < _HEARTBEAT_STALE_S:
                notify("WATCHDOG=1")
            await asyncio.sleep(tick)

    async def _watch_radio(self, factory: RadioFactory) -> None:
        """Run the paired devices (edge_agent.devices): scanning, sessions, back-off and the scanner watchdog."""
        from edge_agent.devices.manager import DeviceManager

        manager = DeviceManager.for_config(self.config, sink=self, radio_factory=lambda: factory(self.config.ble))
        self.devices = manager
        await manager.run()
