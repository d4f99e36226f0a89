"""An in-process BLE medium: virtual peripherals on one side, a virtual central implementing the edge's
`Radio`/`Link` interface on the other.

It models what the gateway's device handlers depend on, at ATT level: advertisements, connection slots, the
Client Characteristic Configuration (notify vs indicate, chosen from the characteristic's properties as BlueZ does),
indications that wait for the central's confirmation, encrypted characteristics that need a bond, and links that
drop. Failures surface as the same `LinkError` classes the bleak link produces. Time is a `SimClock` the test moves,
or the `WallClock` when simulated homes run in real time (the demo).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Flag, auto
from typing import Protocol

from edge_agent.link import (
    AdapterUnavailableError,
    Advertisement,
    AdvertisementCallback,
    BondingRequiredError,
    ConnectionDroppedError,
    DeviceNotFoundError,
    DisconnectCallback,
    GattOperationError,
    Link,
    NotifyCallback,
    OutOfConnectionSlotsError,
)

CCCD_NOTIFY = 0x0001
CCCD_INDICATE = 0x0002

_SHORT = re.compile(r"^(?:0x)?([0-9a-fA-F]{4})$")
_SIG = re.compile(r"^0000([0-9a-fA-F]{4})-0000-1000-8000-00805f9b34fb$", re.IGNORECASE)


def uuid16(uuid: str | int) -> int:
    """The 16-bit number of a SIG UUID given as int, "2a35", "0x2A35" or the 128-bit string."""
    if isinstance(uuid, int):
        return uuid
    match = _SHORT.match(uuid.strip()) or _SIG.match(uuid.strip())
    if match is None:
        raise GattOperationError(f"characteristic {uuid!r} is not a Bluetooth SIG UUID")
    return int(match.group(1), 16)


class AirClock(Protocol):
    """The time a simulated medium and its devices live by."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class WallClock:
    """Real time, for simulated homes that run alongside real services."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class SimClock:
    """Wall and monotonic time for a simulation; moves only when `advance` is called."""

    def __init__(self, start: datetime | None = None, monotonic_start: float = 10_000.0) -> None:
        self._wall = start or datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
        if self._wall.tzinfo is None:
            raise ValueError("SimClock start must be timezone-aware")
        self._monotonic = monotonic_start

    def now(self) -> datetime:
        return self._wall

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._wall += timedelta(seconds=seconds)
        self._monotonic += seconds


class Props(Flag):
    READ = auto()
    WRITE = auto()
    NOTIFY = auto()
    INDICATE = auto()


@dataclass(frozen=True, slots=True)
class CharacteristicSpec:
    uuid: int
    props: Props
    encrypted: bool = False
    """Access needs an encrypted (bonded) link: the ATT "insufficient authentication" case."""


class PeripheralClosed(Exception):
    """Raised on the peripheral side when it uses a connection that is gone."""


ATT_READ_NOT_PERMITTED = 0x02
ATT_WRITE_NOT_PERMITTED = 0x03
ATT_OUT_OF_RANGE = 0xFF
ATT_PROCEDURE_ALREADY_IN_PROGRESS = 0xFE
ATT_CCCD_IMPROPERLY_CONFIGURED = 0xFD
ATT_DATA_FIELD_IGNORED = 0x80
"""Current Time Service's application error for a write it will not take."""


class AttError(GattOperationError):
    """A peripheral refusing an operation with an ATT error code: a Bumble-served device answers with exactly this
    code in its ATT Error Response; the in-process medium hands the error to the central as it is."""

    def __init__(self, message: str, *, code: int, address: str | None = None) -> None:
        super().__init__(message, address=address)
        self.code = code


class ServerConnection(Protocol):
    """One connection as a virtual peripheral sees it, whichever medium carries it (`Connection` here, or
    `device_simulators.bumble_air` over real ATT)."""

    open: bool
    cccd: dict[int, int]
    """Client Characteristic Configuration per characteristic, as the central last wrote it."""

    @property
    def peer(self) -> str:
        """The central's identity address."""
        ...

    @property
    def att_mtu(self) -> int: ...

    def notify(self, uuid: int, data: bytes) -> bool: ...

    async def indicate(self, uuid: int, data: bytes, *, lose_confirmation: bool = False) -> None: ...

    async def wait_subscribed(self, uuid: int) -> None: ...

    def drop(self) -> None:
        """The link is lost without a goodbye (supervision timeout: out of range, battery out, firmware hang)."""
        ...

    def terminate(self) -> None:
        """The peripheral ends the link itself (after its last indication, as cuffs and scales do)."""
        ...


class GattServer(Protocol):
    """What a virtual peripheral offers the medium; `device_simulators.peripherals.base.Peripheral` implements it."""

    @property
    def address(self) -> str: ...

    def advertisement(self) -> Advertisement | None:
        """The advertisement it is sending now, None when it is not connectable."""
        ...

    def characteristic(self, uuid: int) -> CharacteristicSpec | None: ...

    def is_bonded(self, central: str) -> bool: ...

    def accept(self, connection: Connection) -> None:
        """Take an incoming connection, or raise a `LinkError` to refuse it."""
        ...

    def bond(self, connection: Connection, passkey: str | None) -> None: ...

    def read(self, connection: Connection, uuid: int) -> bytes: ...

    def write(self, connection: Connection, uuid: int, data: bytes) -> None: ...

    def subscribed(self, connection: Connection, uuid: int, value: int) -> None: ...

    def closed(self, connection: Connection) -> None: ...


class Connection:
    """One link between the virtual central and a peripheral; both sides hold it."""

    att_mtu = 23
    """The default ATT MTU: nothing here is split, but devices that size their values by the MTU see the real one."""

    def __init__(self, central: VirtualRadio, server: GattServer) -> None:
        self.central = central
        self.server = server
        self.encrypted = server.is_bonded(central.identity)
        self.open = True
        self.cccd: dict[int, int] = {}
        self.notifications = 0
        self.indications_confirmed = 0
        self._loop = asyncio.get_running_loop()
        self._callbacks: dict[int, NotifyCallback] = {}
        self._subscribed: dict[int, asyncio.Event] = {}
        self._pending: set[asyncio.Future[None]] = set()
        self._on_disconnect: Callable[[], None] | None = None

    # ---- peripheral side -----------------------------------------------------------------------------------

    def notify(self, uuid: int, data: bytes) -> bool:
        """Send a notification; False (nothing sent) when the central has not enabled notifications."""
        if not self.open:
            raise PeripheralClosed
        if not self.cccd.get(uuid, 0) & CCCD_NOTIFY:
            return False
        callback = self._callbacks[uuid]
        self.notifications += 1
        self._loop.call_soon(self._deliver, callback, bytes(data))
        return True

    async def indicate(self, uuid: int, data: bytes, *, lose_confirmation: bool = False) -> None:
        """Send an indication and wait for the central's confirmation (ATT allows one outstanding at a time).

        `lose_confirmation` delivers the value and then drops the link before the confirmation arrives: the
        peripheral must assume the value was not received and send it again next time.
        """
        if not self.open:
            raise PeripheralClosed
        if not self.cccd.get(uuid, 0) & CCCD_INDICATE:
            raise PeripheralClosed(f"indications not enabled on 0x{uuid:04X}")
        confirmed: asyncio.Future[None] = self._loop.create_future()
        self._pending.add(confirmed)
        callback = self._callbacks[uuid]

        def deliver() -> None:
            if not self.open:
                return
            callback(bytes(data))
            if lose_confirmation:
                self.drop()
            elif not confirmed.done():
                self.indications_confirmed += 1
                confirmed.set_result(None)

        self._loop.call_soon(deliver)
        try:
            await confirmed
        finally:
            self._pending.discard(confirmed)

    async def wait_subscribed(self, uuid: int) -> None:
        if not self.open:
            raise PeripheralClosed
        event = self._subscribed.setdefault(uuid, asyncio.Event())
        await event.wait()
        if not self.open:
            raise PeripheralClosed

    @property
    def peer(self) -> str:
        return self.central.identity

    def drop(self) -> None:
        """The link is lost (supervision timeout) or the peripheral disconnects."""
        self._close()

    def terminate(self) -> None:
        self._close()

    # ---- central side --------------------------------------------------------------------------------------

    def set_cccd(self, uuid: int, value: int, callback: NotifyCallback | None) -> None:
        if callback is None:
            self._callbacks.pop(uuid, None)
            self.cccd.pop(uuid, None)
        else:
            self._callbacks[uuid] = callback
            self.cccd[uuid] = value
            self._subscribed.setdefault(uuid, asyncio.Event()).set()
        self.server.subscribed(self, uuid, value if callback is not None else 0)

    def on_disconnect(self, callback: Callable[[], None] | None) -> None:
        self._on_disconnect = callback

    def close_by_central(self) -> None:
        self._close()

    def _deliver(self, callback: NotifyCallback, data: bytes) -> None:
        if self.open:
            callback(data)

    def _close(self) -> None:
        if not self.open:
            return
        self.open = False
        for future in self._pending:
            if not future.done():
                future.set_exception(PeripheralClosed())
        for event in self._subscribed.values():
            event.set()
        self.central.released(self)
        self.server.closed(self)
        if self._on_disconnect is not None:
            self._loop.call_soon(self._on_disconnect)


class Air:
    """The medium: which peripherals exist and which radios are listening."""

    def __init__(self, clock: AirClock | None = None, *, seed: int = 0) -> None:
        self.clock: AirClock = clock or SimClock()
        self.rng = random.Random(seed)
        self._servers: dict[str, GattServer] = {}
        self._radios: list[VirtualRadio] = []

    def add(self, server: GattServer) -> None:
        self._servers[server.address.upper()] = server

    def server(self, address: str) -> GattServer | None:
        return self._servers.get(address.upper())

    def radio(self, *, identity: str = "00:1A:7D:DA:71:01", slots: int = 5) -> VirtualRadio:
        radio = VirtualRadio(self, identity=identity, slots=slots)
        self._radios.append(radio)
        return radio

    def broadcast(self, advertisement: Advertisement) -> None:
        for radio in list(self._radios):
            radio.hear(advertisement)

    def bonds_forgotten(self, server: GattServer) -> None:
        """A device dropped its bonds; here the bond lives only in the device (`is_bonded`), so nothing to do."""
        return None


class VirtualRadio:
    """The gateway's adapter in the simulation: scans the `Air` and opens `VirtualLink`s."""

    def __init__(self, air: Air, *, identity: str, slots: int) -> None:
        self.air = air
        self.identity = identity
        self.slots = slots
        self.powered = True
        self.quiet = False
        """Scanning but deaf: the BlueZ failure where advertisements stop arriving without an error."""
        self.scan_starts = 0
        self.connections: set[Connection] = set()
        self._callback: AdvertisementCallback | None = None

    @property
    def scanning(self) -> bool:
        return self._callback is not None

    async def start_scan(self, callback: AdvertisementCallback) -> None:
        if not self.powered:
            raise AdapterUnavailableError("adapter is powered off")
        self._callback = callback
        self.quiet = False
        self.scan_starts += 1

    async def stop_scan(self) -> None:
        self._callback = None

    def link(self, address: str) -> Link:
        return VirtualLink(self, address.upper())

    def power_off(self) -> None:
        """The adapter disappears: scanning stops, links drop, nothing works until `power_on`."""
        self.powered = False
        self._callback = None
        for connection in list(self.connections):
            connection.drop()

    def power_on(self) -> None:
        self.powered = True

    def hear(self, advertisement: Advertisement) -> None:
        if self._callback is not None and self.powered and not self.quiet:
            self._callback(advertisement)

    def released(self, connection: Connection) -> None:
        self.connections.discard(connection)


class VirtualLink:
    """A `Link` over the simulated medium; raises the same `LinkError` classes as the bleak link."""

    def __init__(self, radio: VirtualRadio, address: str) -> None:
        self._radio = radio
        self._address = address
        self._connection: Connection | None = None
        self._on_disconnect: DisconnectCallback | None = None

    @property
    def address(self) -> str:
        return self._address

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and self._connection.open

    @property
    def connection(self) -> Connection | None:
        return self._connection

    def set_disconnect_callback(self, callback: DisconnectCallback | None) -> None:
        self._on_disconnect = callback

    async def connect(self, *, timeout_s: float = 20.0) -> None:
        if self.is_connected:
            return
        await asyncio.sleep(0)
        radio = self._radio
        if not radio.powered:
            raise AdapterUnavailableError("adapter is powered off", address=self._address)
        if len(radio.connections) >= radio.slots:
            raise OutOfConnectionSlotsError(f"all {radio.slots} connection slots are in use", address=self._address)
        server = radio.air.server(self._address)
        if server is None or server.advertisement() is None:
            raise DeviceNotFoundError("device is not advertising", address=self._address)
        connection = Connection(radio, server)
        server.accept(connection)
        radio.connections.add(connection)
        connection.on_disconnect(self._disconnected)
        self._connection = connection

    async def disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close_by_central()
            await asyncio.sleep(0)

    async def pair(self, *, passkey: str | None = None) -> None:
        connection = self._require()
        if connection.encrypted:
            return
        connection.server.bond(connection, passkey)
        connection.encrypted = True

    async def start_notify(self, uuid: str, callback: NotifyCallback) -> None:
        connection, spec = self._characteristic(uuid)
        if not spec.props & (Props.NOTIFY | Props.INDICATE):
            raise GattOperationError(f"0x{spec.uuid:04X} supports neither notify nor indicate", address=self._address)
        self._check_security(connection, spec)
        value = CCCD_NOTIFY if spec.props & Props.NOTIFY else CCCD_INDICATE
        connection.set_cccd(spec.uuid, value, callback)
        await asyncio.sleep(0)

    async def stop_notify(self, uuid: str) -> None:
        connection, spec = self._characteristic(uuid)
        connection.set_cccd(spec.uuid, 0, None)
        await asyncio.sleep(0)

    async def read(self, uuid: str) -> bytes:
        connection, spec = self._characteristic(uuid)
        if not spec.props & Props.READ:
            raise GattOperationError(f"0x{spec.uuid:04X} is not readable (read not permitted)", address=self._address)
        self._check_security(connection, spec)
        await asyncio.sleep(0)
        self._require()
        return connection.server.read(connection, spec.uuid)

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None:
        connection, spec = self._characteristic(uuid)
        if not spec.props & Props.WRITE:
            raise GattOperationError(f"0x{spec.uuid:04X} is not writable (write not permitted)", address=self._address)
        self._check_security(connection, spec)
        await asyncio.sleep(0)
        self._require()
        connection.server.write(connection, spec.uuid, bytes(data))

    def _require(self) -> Connection:
        if self._connection is None or not self._connection.open:
            raise ConnectionDroppedError("not connected", address=self._address)
        return self._connection

    def _characteristic(self, uuid: str) -> tuple[Connection, CharacteristicSpec]:
        connection = self._require()
        number = uuid16(uuid)
        spec = connection.server.characteristic(number)
        if spec is None:
            raise GattOperationError(f"characteristic missing: 0x{number:04X}", address=self._address)
        return connection, spec

    def _check_security(self, connection: Connection, spec: CharacteristicSpec) -> None:
        if spec.encrypted and not connection.encrypted:
            raise BondingRequiredError(
                f"device requires an encrypted link for 0x{spec.uuid:04X} (INSUFFICIENT_AUTHENTICATION)",
                address=self._address,
            )

    def _disconnected(self) -> None:
        if self._on_disconnect is not None:
            self._on_disconnect(self._address)
