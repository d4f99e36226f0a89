"""What every virtual health device shares: a GATT table, advertising, a drifting real-time clock with the Current
Time characteristic, battery level, bonding, and the ways real devices fail.

A subclass adds its measurement characteristics and `serve`s a connection: typically wait for the central to enable
indications, send what is stored, then disconnect. Randomness (RSSI, probabilistic faults) comes from `seed`.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar, Protocol
from zoneinfo import ZoneInfo

from device_simulators.encoders import encode_battery_level, encode_current_time, parse_current_time_write
from device_simulators.link import (
    ATT_DATA_FIELD_IGNORED,
    ATT_READ_NOT_PERMITTED,
    ATT_WRITE_NOT_PERMITTED,
    Air,
    AirClock,
    AttError,
    CharacteristicSpec,
    PeripheralClosed,
    Props,
    ServerConnection,
)
from edge_agent.link import (
    Advertisement,
    BondingRequiredError,
    ConnectTimeoutError,
    DeviceNotFoundError,
    LinkError,
    sig_uuid,
)

BATTERY_LEVEL = 0x2A19
CURRENT_TIME = 0x2A2B
MODEL_NUMBER = 0x2A24
MANUFACTURER_NAME = 0x2A29

CLOCK_RESET_TO = datetime(2000, 1, 1)
"""Where a device's real-time clock restarts after losing power (a common firmware default)."""


class DeviceClock:
    """A device's real-time clock: naive local wall time that drifts, is set by the gateway and resets on power loss."""

    def __init__(self, sim: AirClock, start: datetime, drift_ppm: float = 0.0) -> None:
        if start.tzinfo is not None:
            raise ValueError("a device clock keeps naive local wall time")
        self._sim = sim
        self.drift_ppm = drift_ppm
        self._base = start
        self._ref = sim.monotonic()

    def now(self) -> datetime:
        elapsed = (self._sim.monotonic() - self._ref) * (1 + self.drift_ppm / 1e6)
        return self._base + timedelta(seconds=elapsed)

    def set(self, when: datetime) -> None:
        self._base = when.replace(tzinfo=None)
        self._ref = self._sim.monotonic()


@dataclass(slots=True)
class Faults:
    """Failure modes seen on real devices; counters are consumed as they fire."""

    refuse: int = 0
    """Refuse this many of the next connection attempts."""
    refuse_with: type[LinkError] = ConnectTimeoutError
    drop_after: int | None = None
    """In the next connection, lose the link right after delivering this many values (before any confirmation)."""
    drop_probability: float = 0.0
    """Chance per value sent that the link is lost just after it (drawn from the device's seeded RNG)."""
    hung: bool = False
    """Firmware stuck: never advertises again until `power_cycle`."""


class StoredRecord(Protocol):
    def payload(self) -> bytes: ...


class Peripheral:
    """Base of the virtual devices; implements `device_simulators.link.GattServer`."""

    device_type: ClassVar[str] = ""
    service_uuid: ClassVar[int] = 0
    default_model: ClassVar[str] = ""
    manufacturer: ClassVar[str] = ""
    """Device Information's Manufacturer Name String, beside the Model Number String."""
    confirmation_timeout_s: float = 30.0
    """How long the firmware waits for the ATT confirmation of an indication before it gives up on the link (the
    ATT transaction timeout; some devices wait less). Only a medium with real ATT timing (`bumble_air`) applies it."""

    def __init__(
        self,
        air: Air,
        address: str,
        *,
        model: str | None = None,
        seed: int = 0,
        timezone: str = "Europe/Oslo",
        clock_start: datetime | None = None,
        drift_ppm: float = 0.0,
        battery: int = 90,
        bonding: bool = False,
        passkey: str | None = None,
        current_time: bool = True,
        advertise_for_s: float = 30.0,
    ) -> None:
        self.air = air
        self._address = address.upper()
        self.model = model or self.default_model
        self.rng = random.Random(seed)
        self.rssi = -50 - self.rng.randint(0, 35)
        local_now = air.clock.now().astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
        self.clock = DeviceClock(air.clock, clock_start or local_now, drift_ppm)
        self.battery = battery
        self.bonding = bonding
        self.passkey = passkey
        self.bonds: set[str] = set()
        self.faults = Faults()
        self.advertise_for_s = advertise_for_s
        self.connection: ServerConnection | None = None
        self.connections_accepted = 0
        self.clock_writes = 0
        self.values_sent = 0
        self._advertising_until: float | None = None
        self._sent_this_connection = 0
        self._drop_after: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._chars: dict[int, CharacteristicSpec] = {}
        self.add_characteristic(BATTERY_LEVEL, Props.READ | Props.NOTIFY, secure=False)
        self.add_characteristic(MODEL_NUMBER, Props.READ, secure=False)
        if self.manufacturer:
            self.add_characteristic(MANUFACTURER_NAME, Props.READ, secure=False)
        if current_time:
            self.add_characteristic(CURRENT_TIME, Props.READ | Props.WRITE | Props.NOTIFY)
        air.add(self)

    # ---- what tests and scenarios call ---------------------------------------------------------------------

    @property
    def address(self) -> str:
        return self._address

    @property
    def advertising(self) -> bool:
        return self.advertisement() is not None

    def advertise(self, duration_s: float | None = None) -> bool:
        """Start (or extend) advertising and put one advertisement on the air now; False if the device is hung."""
        if self.faults.hung:
            return False
        window = self.advertise_for_s if duration_s is None else duration_s
        self._advertising_until = self.air.clock.monotonic() + window
        advertisement = self.advertisement()
        if advertisement is None:
            return False
        self.air.broadcast(advertisement)
        return True

    def stop_advertising(self) -> None:
        self._advertising_until = None

    def refuse_next(self, times: int = 1, error: type[LinkError] = ConnectTimeoutError) -> None:
        self.faults.refuse, self.faults.refuse_with = times, error

    def drop_after(self, values: int) -> None:
        self.faults.drop_after = values

    def hang(self) -> None:
        """The firmware locks up: the link (if any) is lost and the device never advertises until power-cycled."""
        self.faults.hung = True
        self._advertising_until = None
        if self.connection is not None:
            self.connection.drop()

    def forget_bonds(self) -> None:
        """A factory reset (or a pairing with the patient's phone, on devices that keep one bond): the keys it shared
        with every gateway are gone. A gateway with the old keys must notice and pair again."""
        self.bonds.clear()
        self.air.bonds_forgotten(self)

    def power_cycle(self, *, reset_clock: bool = True) -> None:
        """Batteries out and in: clears a hang; the clock restarts from `CLOCK_RESET_TO` unless kept."""
        if self.connection is not None:
            self.connection.drop()
        self.faults = Faults()
        self._advertising_until = None
        if reset_clock:
            self.clock.set(CLOCK_RESET_TO)

    def disconnects_after_transfer(self) -> bool:
        """Most cuffs, scales and thermometers end the link themselves once everything is confirmed."""
        return True

    def has_pending_data(self) -> bool:
        """Whether the device still holds something to send (it keeps advertising after a lost link if so)."""
        return False

    # ---- subclass hooks ------------------------------------------------------------------------------------

    def characteristics(self) -> tuple[CharacteristicSpec, ...]:
        """The GATT table, in the order the characteristics were added."""
        return tuple(self._chars.values())

    def add_characteristic(self, uuid: int, props: Props, *, secure: bool = True) -> None:
        """`secure` characteristics need an encrypted link when the device requires bonding."""
        self._chars[uuid] = CharacteristicSpec(uuid, props, encrypted=secure and self.bonding)

    async def serve(self, connection: ServerConnection) -> None:
        """Drive one connection; return when done (the base then disconnects if the device does that)."""
        await asyncio.Event().wait()

    def read_value(self, connection: ServerConnection, uuid: int) -> bytes:
        raise AttError(f"0x{uuid:04X} has no readable value", code=ATT_READ_NOT_PERMITTED, address=self.address)

    def write_value(self, connection: ServerConnection, uuid: int, data: bytes) -> None:
        raise AttError(f"0x{uuid:04X} refuses writes", code=ATT_WRITE_NOT_PERMITTED, address=self.address)

    async def send(self, connection: ServerConnection, uuid: int, data: bytes) -> None:
        """Notify or indicate `data` (whichever the characteristic has), applying the drop faults."""
        self._sent_this_connection += 1
        lose = (self._drop_after is not None and self._sent_this_connection >= self._drop_after) or (
            self.faults.drop_probability > 0 and self.rng.random() < self.faults.drop_probability
        )
        spec = self._chars[uuid]
        if spec.props & Props.INDICATE:
            await connection.indicate(uuid, data, lose_confirmation=lose)
            self.values_sent += 1
            return
        if connection.notify(uuid, data):
            self.values_sent += 1
        if lose:
            asyncio.get_running_loop().call_soon(connection.drop)
            raise PeripheralClosed

    async def send_stored(self, connection: ServerConnection, uuid: int, memory: list[StoredRecord]) -> None:
        """Send stored records oldest first, deleting each only once the gateway has confirmed it."""
        while memory:
            record = memory[0]
            await self.send(connection, uuid, record.payload())
            memory.remove(record)

    # ---- GattServer ----------------------------------------------------------------------------------------

    def advertisement(self) -> Advertisement | None:
        if self.faults.hung or self.connection is not None or self._advertising_until is None:
            return None
        if self.air.clock.monotonic() > self._advertising_until:
            return None
        return Advertisement(
            address=self.address,
            name=self.model,
            service_uuids=(sig_uuid(self.service_uuid),),
            rssi=self.rssi,
        )

    def characteristic(self, uuid: int) -> CharacteristicSpec | None:
        return self._chars.get(uuid)

    def is_bonded(self, central: str) -> bool:
        return central in self.bonds

    def accept(self, connection: ServerConnection) -> None:
        if self.advertisement() is None:
            raise DeviceNotFoundError("device is not advertising", address=self.address)
        if self.faults.refuse > 0:
            self.faults.refuse -= 1
            raise self.faults.refuse_with("the device did not accept the connection", address=self.address)
        self.connection = connection
        self.connections_accepted += 1
        self._sent_this_connection = 0
        self._drop_after, self.faults.drop_after = self.faults.drop_after, None
        self._task = asyncio.get_running_loop().create_task(self._serve(connection))

    def bond(self, connection: ServerConnection, passkey: str | None) -> None:
        if self.passkey is not None and passkey != self.passkey:
            raise BondingRequiredError("pairing failed: AuthenticationFailed (wrong passkey)", address=self.address)
        self.bonds.add(connection.peer)

    def read(self, connection: ServerConnection, uuid: int) -> bytes:
        if uuid == BATTERY_LEVEL:
            return encode_battery_level(self.battery)
        if uuid == CURRENT_TIME:
            return encode_current_time(self.clock.now())
        if uuid == MODEL_NUMBER:
            return self.model.encode()
        if uuid == MANUFACTURER_NAME:
            return self.manufacturer.encode()
        return self.read_value(connection, uuid)

    def write(self, connection: ServerConnection, uuid: int, data: bytes) -> None:
        if uuid == CURRENT_TIME:
            try:
                when = parse_current_time_write(data)
            except ValueError as exc:
                raise AttError(
                    f"Current Time write refused: {exc}", code=ATT_DATA_FIELD_IGNORED, address=self.address
                ) from None
            self.clock.set(when)
            self.clock_writes += 1
            return
        self.write_value(connection, uuid, data)

    def subscribed(self, connection: ServerConnection, uuid: int, value: int) -> None:
        return None

    def closed(self, connection: ServerConnection) -> None:
        if connection is not self.connection:
            return
        self.connection = None
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        if not self.has_pending_data() and self._advertising_until != math.inf:
            self._advertising_until = None

    async def _serve(self, connection: ServerConnection) -> None:
        try:
            await self.serve(connection)
            if self.disconnects_after_transfer() and connection.open:
                await asyncio.sleep(0)
                connection.terminate()
        except PeripheralClosed:
            return
