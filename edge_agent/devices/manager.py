"""Runs the paired devices: listens to advertisements, starts a session with a device's handler when one of them
wakes up, backs off by the class of failure, persists per-device state, reports battery and last-seen to the sink,
and restarts scanning when the adapter has gone quiet or away (habluetooth's manager/scanner-watchdog split).

Sessions are driven by advertisements rather than timers: health devices advertise when they have something to
send, so a device in back-off is simply ignored until its `not_before` time and picked up at the next advertisement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from edge_agent.backoff import delay_for
from edge_agent.config import DeviceConfig, DeviceType, EdgeConfig
from edge_agent.devices.base import DeviceHandler
from edge_agent.devices.blood_pressure import BloodPressureHandler
from edge_agent.devices.glucose_meter import GlucoseMeterHandler
from edge_agent.devices.heart_rate import HeartRateHandler
from edge_agent.devices.models import Clock, ReadingSink, Timing
from edge_agent.devices.pulse_oximeter import PulseOximeterHandler
from edge_agent.devices.session import SessionContext, SessionReport
from edge_agent.devices.state import DeviceState, DeviceStateStore
from edge_agent.devices.thermometer import ThermometerHandler
from edge_agent.devices.weight_scale import WeightScaleHandler
from edge_agent.link import AdapterUnavailableError, Advertisement, LinkError, Radio

log = logging.getLogger(__name__)

HANDLERS: dict[DeviceType, type[DeviceHandler]] = {
    h.device_type: h
    for h in (
        BloodPressureHandler,
        PulseOximeterHandler,
        WeightScaleHandler,
        ThermometerHandler,
        GlucoseMeterHandler,
        HeartRateHandler,
    )
}

RadioFactory = Callable[[], Radio]


@dataclass(slots=True)
class DeviceRuntime:
    """The manager's view of one paired device."""

    config: DeviceConfig
    handler: DeviceHandler
    state: DeviceState
    failures: int = 0
    """Consecutive failed sessions; picks the back-off step."""
    not_before: float = 0.0
    """Monotonic time before which advertisements do not start a session."""
    last_error: LinkError | None = None
    last_report: SessionReport | None = None
    sessions: int = 0
    readings_added: int = 0
    """Readings committed to the outbox by this device's completed sessions since the manager started."""
    readings_rejected: int = 0
    """Decoded values refused as readings (implausible, wrong unit) in those sessions."""
    task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()


class DeviceManager:
    def __init__(
        self,
        devices: Sequence[DeviceConfig],
        *,
        gateway_id: str,
        patient_timezone: str,
        sink: ReadingSink,
        radio_factory: RadioFactory,
        state: DeviceStateStore | None = None,
        clock: Clock | None = None,
        timing: Timing | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self.timing = timing or Timing()
        self.sink = sink
        self.store = state or DeviceStateStore(None)
        self.radio: Radio | None = None
        self.scanner_restarts = 0
        self._radio_factory = radio_factory
        self._rng = rng or random.Random()
        self._context = SessionContext(gateway_id, ZoneInfo(patient_timezone), sink, self.clock, self.timing)
        self._adapter_lost = False
        self._last_advertisement = self.clock.monotonic()
        self.devices: dict[str, DeviceRuntime] = {
            d.address: DeviceRuntime(d, HANDLERS[d.type](), self.store.get(d.address)) for d in devices
        }

    @classmethod
    def for_config(cls, config: EdgeConfig, *, sink: ReadingSink, radio_factory: RadioFactory) -> DeviceManager:
        """The manager the agent runs: state in `devices.json` beside the outbox, watchdog from `[ble]`."""
        return cls(
            config.devices,
            gateway_id=config.gateway_id,
            patient_timezone=config.patient_timezone,
            sink=sink,
            radio_factory=radio_factory,
            state=DeviceStateStore(state_path(config)),
            timing=Timing(quiet_restart_s=config.ble.quiet_restart_s),
        )

    # ---- lifecycle -----------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Scan and serve devices until cancelled; adapter trouble is retried with back-off, never fatal."""
        failures = 0
        try:
            while True:
                try:
                    if self.radio is None:
                        await self.start()
                    else:
                        await self.check_scanner()
                    failures = 0
                    wait = self.timing.watchdog_period_s
                except LinkError as exc:
                    self._adapter_lost = True
                    wait = delay_for(exc, failures, self._rng)
                    failures += 1
                    log.warning("ble_scanner_unavailable error=%s retry_in_s=%.0f", exc, wait)
                await self.clock.sleep(wait)
        finally:
            await self.stop()

    async def start(self) -> None:
        radio = self._radio_factory()
        await radio.start_scan(self._on_advertisement)
        self.radio = radio
        self._adapter_lost = False
        self._last_advertisement = self.clock.monotonic()
        log.info("ble_scanning devices=%d", len(self.devices))

    async def check_scanner(self) -> bool:
        """The watchdog step: restart scanning (on a new radio if the adapter went away) when it has gone quiet."""
        quiet_s = self.clock.monotonic() - self._last_advertisement
        if not self._adapter_lost and self.radio is not None and quiet_s < self.timing.quiet_restart_s:
            return False
        log.warning("ble_scanner_restart quiet_s=%.0f adapter_lost=%s", quiet_s, self._adapter_lost)
        old, self.radio = self.radio, None
        if old is not None:
            with contextlib.suppress(LinkError):
                await old.stop_scan()
        if old is not None and not self._adapter_lost:
            await old.start_scan(self._on_advertisement)
            self.radio = old
            self._last_advertisement = self.clock.monotonic()
        else:
            await self.start()
        self.scanner_restarts += 1
        return True

    async def settle(self, timeout_s: float = 5.0) -> None:
        """Wait for the sessions now running (tests, and a graceful stop)."""
        tasks = [r.task for r in self.devices.values() if r.task is not None and not r.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)

    async def stop(self) -> None:
        tasks = [r.task for r in self.devices.values() if r.task is not None and not r.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        radio, self.radio = self.radio, None
        if radio is not None:
            with contextlib.suppress(LinkError):
                await radio.stop_scan()
        self.store.save()

    # ---- sessions ------------------------------------------------------------------------------------------

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        self._last_advertisement = self.clock.monotonic()
        runtime = self.devices.get(advertisement.address.upper())
        if runtime is None:
            return
        runtime.state.last_seen = self.clock.wall()
        self.sink.note_device(runtime.config.address)
        if runtime.busy or self.radio is None:
            return
        if self.clock.monotonic() < runtime.not_before:
            log.debug("device_backing_off address=%s", runtime.config.address)
            return
        runtime.task = asyncio.get_running_loop().create_task(
            self._session(runtime, self.radio), name=f"device-{runtime.config.address}"
        )

    async def _session(self, runtime: DeviceRuntime, radio: Radio) -> None:
        device = runtime.config
        runtime.sessions += 1
        try:
            report = await runtime.handler.run(radio.link(device.address), device, self._context, runtime.state)
        except LinkError as exc:
            self._failed(runtime, exc)
        except Exception as exc:
            log.exception("device_session_crashed address=%s type=%s", device.address, device.type)
            self._failed(runtime, LinkError(f"unexpected {type(exc).__name__}: {exc}", address=device.address))
        else:
            runtime.failures = 0
            runtime.last_error = None
            runtime.last_report = report
            runtime.readings_added += report.readings_added
            runtime.readings_rejected += report.readings_rejected
            pause = 0.0 if runtime.handler.streaming else self.timing.after_success_s
            runtime.not_before = self.clock.monotonic() + pause
            log.info(
                "device_session_done address=%s type=%s added=%d duplicates=%d refused=%d rejected=%d battery=%s",
                device.address,
                device.type,
                report.readings_added,
                report.readings_duplicate,
                report.readings_refused,
                report.readings_rejected,
                report.battery_percent,
            )
        finally:
            if runtime.state.battery_percent is not None:
                self.sink.note_device(device.address, battery_percent=runtime.state.battery_percent)
            self.store.save()

    def _failed(self, runtime: DeviceRuntime, error: LinkError) -> None:
        delay = delay_for(error, runtime.failures, self._rng)
        runtime.failures += 1
        runtime.last_error = error
        runtime.not_before = self.clock.monotonic() + delay
        if isinstance(error, AdapterUnavailableError):
            self._adapter_lost = True
        log.warning(
            "device_session_failed address=%s type=%s error_class=%s retry_after_s=%.0f error=%s",
            runtime.config.address,
            runtime.config.type,
            type(error).__name__,
            delay,
            error,
        )


def state_path(config: EdgeConfig) -> Path:
    return config.outbox.path.with_name("devices.json")
