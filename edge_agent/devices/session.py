"""One connection to one device: connect and bond, read the battery, read and set the device clock, subscribe,
queue what arrives, decode it and commit readings to the sink. Handlers decide the order; this module does the work.

Clock correction: the device's Current Time is read *before* it is set, so records it stamped earlier with a wrong
clock are moved by (gateway UTC now − device now), rounded to whole seconds as devices stamp records (the fraction is
the read's latency, and would give a record fetched twice two different times); devices without Current Time are
taken to run on the patient's local time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from edge_agent.config import DeviceConfig
from edge_agent.devices.models import Clock, ReadingSink, Timing
from edge_agent.devices.state import DeviceState
from edge_agent.gatt import (
    Decoded,
    GattDecodeError,
    Measurement,
    decode,
    decode_battery_level,
    decode_current_time,
    encode_current_time,
    to_readings,
)
from edge_agent.gatt.battery import BATTERY_LEVEL
from edge_agent.gatt.current_time import CURRENT_TIME
from edge_agent.gatt.device_information import MODEL_NUMBER_STRING, decode_model_number
from edge_agent.link import GattOperationError, Link, LinkError, sig_uuid
from edge_agent.outbox import PutResult
from vitals import DeviceRef

log = logging.getLogger(__name__)

DEVICE_CLOCK_CORRECTED = "device_clock_corrected"
"""Flag on readings whose device clock was off by more than the tolerance and whose time was corrected."""
DEVICE_CLOCK_UNKNOWN = "device_clock_unknown"
"""Flag on readings from a device whose clock reported "not known": their time assumes local wall time."""
DEVICE_CLOCK_RESET = "device_clock_reset"
"""Flag on a record stamped later than the device's clock now reads: the clock was reset (batteries) since, so
the record keeps its own stamp taken as local wall time instead of the correction for the reset clock."""


@dataclass(frozen=True, slots=True)
class SessionContext:
    """What every session of one gateway shares."""

    gateway_id: str
    timezone: ZoneInfo
    sink: ReadingSink
    clock: Clock
    timing: Timing


@dataclass(frozen=True, slots=True)
class Incoming:
    uuid: int
    data: bytes
    received_at: datetime


@dataclass(slots=True)
class SessionReport:
    address: str
    readings_added: int = 0
    readings_duplicate: int = 0
    readings_refused: int = 0
    readings_rejected: int = 0
    undecodable: int = 0
    battery_percent: int | None = None
    clock_offset_s: float | None = None
    clock_set: bool = False


class Session:
    def __init__(self, link: Link, device: DeviceConfig, context: SessionContext, state: DeviceState) -> None:
        self.link = link
        self.device = device
        self.context = context
        self.state = state
        self.report = SessionReport(device.address)
        self.link_lost = False
        self.correction: timedelta | None = None
        self.extra_flags: tuple[str, ...] = ()
        self._zone_correction: timedelta | None = None
        self._device_now: datetime | None = None
        self._inbox: asyncio.Queue[Incoming | None] = asyncio.Queue()
        self._ref = DeviceRef(address=device.address, type=device.type, model=device.model)

    @property
    def timing(self) -> Timing:
        return self.context.timing

    # ---- link steps ----------------------------------------------------------------------------------------

    async def open(self) -> None:
        self.link.set_disconnect_callback(self._lost)
        await self.link.connect(timeout_s=self.timing.connect_timeout_s)
        if self.device.bond:
            await self.link.pair(passkey=self.device.passkey)

    async def close(self) -> None:
        self.link.set_disconnect_callback(None)
        try:
            await self.link.disconnect()
        except LinkError as exc:
            log.debug("device_disconnect_failed address=%s error=%s", self.device.address, exc)

    async def read_model(self) -> str | None:
        """The Model Number String of the Device Information Service, read once and remembered in the device state.

        What the device says it is wins over the configured name (which `varde edge pair` takes from the
        advertised name); readings carry it as `device.model`. Devices without it keep the configured name.
        """
        if self.state.model is None:
            try:
                self.state.model = decode_model_number(await self.link.read(sig_uuid(MODEL_NUMBER_STRING)))
            except GattOperationError:
                pass
            except GattDecodeError as exc:
                log.warning("model_number_undecodable address=%s error=%s", self.device.address, exc)
        model = self.state.model or self.device.model
        self._ref = DeviceRef(address=self.device.address, type=self.device.type, model=model)
        return model

    async def read_battery(self) -> int | None:
        try:
            level = decode_battery_level(await self.link.read(sig_uuid(BATTERY_LEVEL))).percent
        except GattOperationError:
            return None
        except GattDecodeError as exc:
            log.warning("battery_level_undecodable address=%s error=%s", self.device.address, exc)
            return None
        self.report.battery_percent = self.state.battery_percent = level
        return level

    async def sync_clock(self, *, supported: bool) -> None:
        """Work out the correction for records already stamped by the device, then set its clock if it is off."""
        now = self.context.clock.wall()
        local_now = now.astimezone(self.context.timezone).replace(tzinfo=None)
        self.correction = self._zone_correction = now.replace(tzinfo=None) - local_now
        if not supported:
            return
        try:
            current = decode_current_time(await self.link.read(sig_uuid(CURRENT_TIME)))
        except GattOperationError:
            return
        except GattDecodeError as exc:
            log.warning("current_time_undecodable address=%s error=%s", self.device.address, exc)
            return
        if current.exact_time is None:
            self.extra_flags = (DEVICE_CLOCK_UNKNOWN,)
        else:
            self._device_now = current.exact_time
            offset = (current.exact_time - local_now).total_seconds()
            self.report.clock_offset_s = self.state.clock_offset_s = offset
            self.correction = _whole_seconds(now.replace(tzinfo=None) - current.exact_time)
            if abs(offset) <= self.timing.clock_tolerance_s:
                return
            self.extra_flags = (DEVICE_CLOCK_CORRECTED,)
            log.info("device_clock_off address=%s offset_s=%.0f setting=true", self.device.address, offset)
        await self._set_clock()

    async def _set_clock(self) -> None:
        now = self.context.clock.wall()
        local_now = now.astimezone(self.context.timezone).replace(tzinfo=None)
        try:
            await self.link.write(
                sig_uuid(CURRENT_TIME), encode_current_time(local_now, ("external_reference_time_update",))
            )
        except GattOperationError as exc:
            log.warning("device_clock_not_set address=%s error=%s", self.device.address, exc)
            return
        self.report.clock_set = True
        self.state.clock_set_at = now

    async def subscribe(self, uuid: int, *, optional: bool = False) -> bool:
        """Enable notifications or indications (the link picks what the characteristic offers)."""

        def deliver(data: bytes) -> None:
            self._inbox.put_nowait(Incoming(uuid, data, self.context.clock.wall()))

        try:
            await self.link.start_notify(sig_uuid(uuid), deliver)
        except GattOperationError:
            if optional:
                return False
            raise
        return True

    async def write(self, uuid: int, data: bytes) -> None:
        await self.link.write(sig_uuid(uuid), data)

    async def receive(self, timeout_s: float) -> Incoming | None:
        """The next value in arrival order; None when the link is gone (after what arrived before) or on timeout."""
        if self.link_lost and self._inbox.empty():
            return None
        try:
            return await asyncio.wait_for(self._inbox.get(), timeout_s)
        except TimeoutError:
            return None

    # ---- bytes to readings ---------------------------------------------------------------------------------

    def decode(self, item: Incoming) -> Decoded | None:
        try:
            return decode(item.uuid, item.data)
        except GattDecodeError as exc:
            self.report.undecodable += 1
            log.warning(
                "gatt_undecodable address=%s characteristic=0x%04X error=%s bytes=%s",
                self.device.address,
                item.uuid,
                exc,
                item.data.hex(),
            )
            return None

    def commit(
        self, measurements: Sequence[Measurement], received_at: datetime, extra_flags: tuple[str, ...] = ()
    ) -> PutResult | None:
        """Readings of one measurement act to the sink (durable on return); None when there was nothing to store."""
        correction, flags = self.correction, (*self.extra_flags, *extra_flags)
        stamped = measurements[0].device_time if measurements else None
        slack = timedelta(seconds=self.timing.clock_tolerance_s)
        if stamped is not None and self._device_now is not None and stamped > self._device_now + slack:
            correction, flags = self._zone_correction, (DEVICE_CLOCK_RESET, *extra_flags)
        batch = to_readings(
            measurements,
            gateway_id=self.context.gateway_id,
            device=self._ref,
            received_at=received_at,
            clock_correction=correction,
            extra_flags=flags,
        )
        for rejected in batch.rejected:
            self.report.readings_rejected += 1
            log.error(
                "reading_rejected kind=%s value=%s device=%s reason=%s",
                rejected.measurement.kind,
                rejected.measurement.value,
                self.device.address,
                rejected.reason,
            )
        if not batch.readings:
            return None
        result = self.context.sink.accept(batch.readings)
        self.report.readings_added += result.added
        self.report.readings_duplicate += result.duplicates
        self.report.readings_refused += result.refused
        return result

    def _lost(self, _address: str) -> None:
        self.link_lost = True
        self._inbox.put_nowait(None)


def _whole_seconds(delta: timedelta) -> timedelta:
    return timedelta(seconds=round(delta.total_seconds()))
