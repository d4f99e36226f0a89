"""The common way a health device is driven (ble2mqtt's "devices" side; bytes are decoded in `edge_agent.gatt`):
connect, bond if configured, read the model (Device Information), read the battery, correct and set the clock,
subscribe, take what the device sends until it disconnects or goes quiet, disconnect. A device module names its
characteristics and overrides what differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from edge_agent.config import DeviceConfig, DeviceType
from edge_agent.devices.session import Incoming, Session, SessionContext, SessionReport
from edge_agent.devices.state import DeviceState
from edge_agent.gatt import Decoded, MeasurementRecord
from edge_agent.link import GattOperationError, Link


@dataclass(frozen=True, slots=True)
class Subscription:
    uuid: int
    optional: bool = False
    """Not every model has it (e.g. intermediate cuff pressure); a missing one is skipped, not an error."""


class DeviceHandler:
    device_type: ClassVar[DeviceType]
    service_uuid: ClassVar[int]
    subscriptions: ClassVar[tuple[Subscription, ...]]
    """Enabled in this order; devices start sending when the last one (their measurement) is enabled."""
    current_time: ClassVar[bool] = True
    """The device has a Current Time characteristic the gateway reads and sets."""
    streaming: ClassVar[bool] = False
    """Sends live values for as long as it stays connected, rather than a batch of stored records."""

    async def run(self, link: Link, device: DeviceConfig, context: SessionContext, state: DeviceState) -> SessionReport:
        """One complete session; raises `LinkError` subclasses for the manager's back-off."""
        session = Session(link, device, context, state)
        try:
            await session.open()
            await session.read_model()
            await session.read_battery()
            await session.sync_clock(supported=self.current_time)
            await self.transfer(session)
        finally:
            await session.close()
        state.last_transfer = context.clock.wall()
        return session.report

    async def transfer(self, session: Session) -> None:
        enabled = await self.subscribe(session)
        idle = session.timing.stream_idle_s if self.is_streaming(enabled) else session.timing.idle_s
        while (item := await session.receive(idle)) is not None:
            self.handle(session, item, session.decode(item))

    async def subscribe(self, session: Session) -> tuple[int, ...]:
        enabled: list[int] = []
        for subscription in self.subscriptions:
            if await session.subscribe(subscription.uuid, optional=subscription.optional):
                enabled.append(subscription.uuid)
        if not enabled:
            names = ", ".join(f"0x{s.uuid:04X}" for s in self.subscriptions)
            raise GattOperationError(f"the device offers none of {names}", address=session.device.address)
        return tuple(enabled)

    def is_streaming(self, enabled: tuple[int, ...]) -> bool:
        return self.streaming

    def handle(self, session: Session, item: Incoming, decoded: Decoded | None) -> None:
        """Commit the measurements of one decoded value; values that carry none (cuff pressure) are left."""
        if isinstance(decoded, MeasurementRecord) and decoded.measurements:
            session.commit(decoded.measurements, item.received_at, self.flags(decoded))

    def flags(self, decoded: MeasurementRecord) -> tuple[str, ...]:
        return ()
