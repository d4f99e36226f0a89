"""The virtual devices served over a real Bluetooth stack: each peripheral is a Bumble host with its own virtual
controller on one `bumble.link.LocalLink`, and the gateway side is `edge_agent.links.bumble_link` on the same link.

The device logic stays in `device_simulators.peripherals` (what is stored, when it advertises, which faults fire);
this module gives it the GATT table a real device of its kind declares — SIG services, characteristic properties,
encryption or MITM-protected permissions on what needs a bond, CCCDs — and carries its values as ATT PDUs: reads
and writes (long values in Read Blob pieces at the default MTU of 23), notifications, indications that wait for the
central's confirmation (for at most the device's own timeout), SMP pairing (Just Works, or passkey entry with the
device displaying its passkey) and bonds kept in the device's key store across reconnects.

`BumbleAir` is a drop-in for `device_simulators.link.Air`: the same peripherals, the same tests, real ATT below.
Time for the devices is still the air's clock; the stack itself runs on the event loop's real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from bumble import hci
from bumble.att import ATT_Error, ErrorCode
from bumble.controller import Controller
from bumble.core import AdvertisingData
from bumble.device import Connection as BumbleConnection
from bumble.device import Device
from bumble.gatt import (
    GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
    Characteristic,
    CharacteristicValue,
    Descriptor,
    Service,
)
from bumble.host import Host
from bumble.keys import MemoryKeyStore, PairingKeys
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink

from device_simulators.link import (
    CCCD_INDICATE,
    CCCD_NOTIFY,
    Air,
    AirClock,
    AttError,
    GattServer,
    PeripheralClosed,
    Props,
)
from device_simulators.peripherals.base import Peripheral
from edge_agent.link import LinkError

log = logging.getLogger(__name__)

BATTERY_SERVICE = 0x180F
CURRENT_TIME_SERVICE = 0x1805
DEVICE_INFORMATION_SERVICE = 0x180A
SHARED_SERVICES = {
    0x2A19: BATTERY_SERVICE,
    0x2A2B: CURRENT_TIME_SERVICE,
    0x2A24: DEVICE_INFORMATION_SERVICE,
    0x2A29: DEVICE_INFORMATION_SERVICE,
}
"""Characteristics outside the device's own health service, and the SIG service each belongs to."""
ADVERTISING_INTERVAL_MS = 50.0
SUPERVISION_TIMEOUT = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR
_PROPS = {
    Props.READ: Characteristic.Properties.READ,
    Props.WRITE: Characteristic.Properties.WRITE,
    Props.NOTIFY: Characteristic.Properties.NOTIFY,
    Props.INDICATE: Characteristic.Properties.INDICATE,
}


def random_address(address: str) -> hci.Address:
    """Virtual devices and gateways use random static addresses: the LocalLink routes LE traffic by them."""
    return hci.Address(address.upper(), hci.Address.RANDOM_DEVICE_ADDRESS)


class VirtualController(Controller):
    """A controller on the shared link that can go deaf: it still says it scans but hears no advertisement until
    scanning is switched off and on again — the failure the manager's scanner watchdog exists for."""

    deaf = False

    def on_ll_advertising_pdu(self, packet: Any) -> None:
        if self.deaf and type(packet).__name__ != "ConnectInd":
            return
        super().on_ll_advertising_pdu(packet)

    def on_hci_le_set_extended_scan_enable_command(self, command: Any) -> Any:
        if not command.enable:
            self.deaf = False
        return super().on_hci_le_set_extended_scan_enable_command(command)

    def on_hci_le_set_scan_enable_command(self, command: Any) -> Any:
        if not command.le_scan_enable:
            self.deaf = False
        return super().on_hci_le_set_scan_enable_command(command)


def host_device(link: LocalLink, address: str, name: str) -> tuple[Device, VirtualController]:
    """A Bumble host with its own virtual controller on `link` (not yet powered on)."""
    controller = VirtualController(name, link=link, public_address=address.upper())
    controller.random_address = random_address(address)
    device = Device(name=name, address=random_address(address), host=Host(controller, AsyncPipeSink(controller)))
    return device, controller


class VirtualDongle:
    """The gateway's adapter on the shared link, for `BumbleRadio`: can be unplugged (the adapter vanishes) and
    made deaf (BlueZ-style silent scanner)."""

    def __init__(self, air: BumbleAir, identity: str) -> None:
        self.air = air
        self.identity = identity.upper()
        self.plugged = True
        self.controllers: list[VirtualController] = []
        self.keystore = MemoryKeyStore()
        """The gateway's bonds, kept across re-opens of the adapter as a real gateway keeps them on disk."""

    async def open(self) -> Device:
        if not self.plugged:
            raise OSError(f"no Bluetooth controller at {self.identity} (unplugged)")
        self.air.detach(self.identity)
        device, controller = host_device(self.air.link, self.identity, f"gateway-{self.identity}")
        await device.power_on()
        device.keystore = self.keystore
        self.controllers.append(controller)
        return device

    def unplug(self) -> None:
        """The adapter disappears: its links time out on the devices' side, nothing works until `plug_in`."""
        self.plugged = False
        self.air.detach(self.identity)

    def plug_in(self) -> None:
        self.plugged = True

    def deafen(self) -> None:
        for controller in self.controllers:
            controller.deaf = True


class BumbleAir(Air):
    """`Air` whose peripherals are Bumble GATT servers on a `LocalLink`."""

    def __init__(self, clock: AirClock | None = None, *, seed: int = 0) -> None:
        super().__init__(clock, seed=seed)
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self.hosts: dict[str, PeripheralHost] = {}

    def add(self, server: GattServer) -> None:
        super().add(server)
        if not isinstance(server, Peripheral):
            raise TypeError("a BumbleAir serves device_simulators peripherals")
        device, controller = host_device(self.link, server.address, server.model or server.device_type)
        self.hosts[server.address] = PeripheralHost(server, device, air=self, controller=controller)

    def broadcast(self, advertisement: Any) -> None:
        host = self.hosts.get(advertisement.address.upper())
        if host is not None:
            host.wake()

    def bonds_forgotten(self, server: GattServer) -> None:
        host = self.hosts.get(server.address)
        keystore = host.device.keystore if host is not None else None
        if isinstance(keystore, MemoryKeyStore):
            keystore.all_keys.clear()

    def on_the_air(self) -> bool:
        """Whether some device is advertising, about to start or stop, or still connected: until none is, a gateway
        may yet hear one and start a session."""
        return any(host.on_the_air() for host in self.hosts.values())

    def dongle(self, identity: str = "00:1A:7D:DA:71:01") -> VirtualDongle:
        return VirtualDongle(self, identity)

    def detach(self, address: str) -> None:
        """Take every controller with this address off the link, its connections lost by supervision timeout."""
        wanted = random_address(address)
        for controller in list(self.link.controllers):
            if controller.random_address == wanted:
                for connection in list(controller.le_connections.values()):
                    self.supervision_timeout(controller, connection.peer_address)
                self.link.remove_controller(controller)

    def supervision_timeout(self, controller: Controller, peer: hci.Address) -> None:
        """Both ends lose a link without an LL_TERMINATE_IND, as when a device walks out of range."""
        ours = controller.le_connections.get(peer)
        if ours is None:
            return
        other = self.link.find_le_controller(peer)
        if other is not None:
            theirs = other.le_connections.get(ours.self_address)
            if theirs is not None:
                other.on_le_disconnected(theirs, SUPERVISION_TIMEOUT)
        controller.on_le_disconnected(ours, SUPERVISION_TIMEOUT)

    async def stop(self) -> None:
        for host in self.hosts.values():
            await host.stop()


class _Passkey(PairingDelegate):
    """A device with a display: it shows its passkey, the gateway types it."""

    def __init__(self, passkey: str | None) -> None:
        io = self.IoCapability.DISPLAY_OUTPUT_ONLY if passkey is not None else self.IoCapability.NO_OUTPUT_NO_INPUT
        super().__init__(io)
        self._passkey = passkey

    async def generate_passkey(self) -> int:
        return int(self._passkey or "0")


class PeripheralHost:
    """One virtual device as a Bumble host: its GATT table, advertising and connections. On the shared LocalLink
    (`air`, `controller` given) it can lose a link by supervision timeout; on a real controller it can only end it."""

    def __init__(
        self,
        peripheral: Peripheral,
        device: Device,
        *,
        air: BumbleAir | None = None,
        controller: VirtualController | None = None,
    ) -> None:
        self.air = air
        self.peripheral = peripheral
        self.device, self.controller = device, controller
        self._uuid_of: dict[int, int] = {}
        self.connection: ServedConnection | None = None
        self.characteristics: dict[int, Characteristic[Any]] = {}
        self.confirmations_lost = 0
        self.late_confirmations = 0
        """Delay this many of the next ATT confirmations on their way into the device (a congested radio)."""
        self.confirmation_delay_s = 0.0
        self._booted: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._advertising = False
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Something changed (a measurement, a disconnect): re-decide at once whether to advertise."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"bumble-{self.peripheral.address}")
        self._changed.set()

    def on_the_air(self) -> bool:
        wanted = self.peripheral.advertisement() is not None
        return wanted or self._advertising or self._changed.is_set() or self.connection is not None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # ---- life of the device --------------------------------------------------------------------------------

    async def _run(self) -> None:
        await self._boot()
        while True:
            # A plain wait with a timeout: `asyncio.wait_for` on 3.11 can lose a cancellation racing its timeout.
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({changed}, timeout=0.05)
            finally:
                changed.cancel()
            self._changed.clear()
            wanted = self.peripheral.advertisement() is not None and self.connection is None
            if wanted and not self._advertising:
                await self._advertise()
            elif not wanted and self._advertising:
                self._advertising = False
                with contextlib.suppress(Exception):
                    await self.device.stop_advertising()

    async def _boot(self) -> None:
        device = self.device
        device.add_services(self._services())
        device.pairing_config_factory = self._pairing_config
        device.on(Device.EVENT_CONNECTION, self._connected)
        device.on("characteristic_subscription", self._subscription)
        on_time = device.gatt_server.on_att_handle_value_confirmation

        def confirmation(bearer: Any, pdu: Any) -> None:
            if self.late_confirmations > 0:
                self.late_confirmations -= 1
                asyncio.get_running_loop().call_later(self.confirmation_delay_s, on_time, bearer, pdu)
            else:
                on_time(bearer, pdu)

        device.gatt_server.on_att_handle_value_confirmation = confirmation  # type: ignore[method-assign, assignment]
        await device.power_on()

    async def _advertise(self) -> None:
        peripheral = self.peripheral
        data = AdvertisingData(
            [
                (AdvertisingData.FLAGS, bytes((0x06,))),
                (
                    AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                    peripheral.service_uuid.to_bytes(2, "little"),
                ),
                (AdvertisingData.COMPLETE_LOCAL_NAME, peripheral.model.encode()),
            ]
        )
        self._advertising = True
        await self.device.start_advertising(
            advertising_data=bytes(data),
            scan_response_data=b"",
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )

    def _services(self) -> list[Service]:
        peripheral = self.peripheral
        grouped: dict[int, list[Characteristic[Any]]] = {}
        for spec in peripheral.characteristics():
            properties = Characteristic.Properties(0)
            for flag, bumble_flag in _PROPS.items():
                if spec.props & flag:
                    properties |= bumble_flag
            permissions = self._permissions(spec.props, spec.encrypted)
            characteristic: Characteristic[Any] = Characteristic(
                f"{spec.uuid:04X}",
                properties,
                permissions,
                CharacteristicValue(read=self._reader(spec.uuid), write=self._writer(spec.uuid)),
            )
            if spec.encrypted and spec.props & (Props.NOTIFY | Props.INDICATE):
                # The CCCD of a bonded-only characteristic needs the bond too (the Glucose Service requires it).
                characteristic.descriptors = [
                    Descriptor(
                        GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
                        Descriptor.READABLE | Descriptor.WRITEABLE | self._secure_write(),
                        self.device.gatt_server.make_descriptor_value(characteristic),
                    )
                ]
            self.characteristics[spec.uuid] = characteristic
            self._uuid_of[id(characteristic)] = spec.uuid
            grouped.setdefault(SHARED_SERVICES.get(spec.uuid, peripheral.service_uuid), []).append(characteristic)
        order = [peripheral.service_uuid, DEVICE_INFORMATION_SERVICE, BATTERY_SERVICE, CURRENT_TIME_SERVICE]
        return [Service(f"{uuid:04X}", grouped[uuid]) for uuid in order if uuid in grouped]

    def _permissions(self, props: Props, encrypted: bool) -> Any:
        permissions = Characteristic.Permissions(0)
        if props & Props.READ:
            permissions |= Characteristic.READABLE
            if encrypted:
                permissions |= (
                    Characteristic.READ_REQUIRES_AUTHENTICATION
                    if self.peripheral.passkey
                    else Characteristic.READ_REQUIRES_ENCRYPTION
                )
        if props & Props.WRITE:
            permissions |= Characteristic.WRITEABLE
            if encrypted:
                permissions |= self._secure_write()
        return permissions

    def _secure_write(self) -> Any:
        if self.peripheral.passkey:
            return Characteristic.WRITE_REQUIRES_AUTHENTICATION
        return Characteristic.WRITE_REQUIRES_ENCRYPTION

    def _pairing_config(self, _connection: BumbleConnection) -> PairingConfig:
        passkey = self.peripheral.passkey
        return PairingConfig(
            sc=True,
            mitm=passkey is not None,
            bonding=True,
            identity_address_type=PairingConfig.AddressType.RANDOM,
            delegate=_Passkey(passkey),
        )

    # ---- connections ---------------------------------------------------------------------------------------

    def _connected(self, connection: BumbleConnection) -> None:
        served = ServedConnection(self, connection)
        self._advertising = False
        peripheral = self.peripheral
        try:
            peripheral.accept(served)
        except LinkError as exc:
            log.debug("virtual_device_refused address=%s error=%s", peripheral.address, exc)
            served.refuse()
            return
        self.connection = served
        connection.on(BumbleConnection.EVENT_DISCONNECTION, served.closed)
        connection.on(BumbleConnection.EVENT_PAIRING, served.paired)

    def _subscription(self, connection: BumbleConnection, characteristic: Any, notify: bool, indicate: bool) -> None:
        served = self.connection
        if served is None or served.bumble is not connection:
            return
        uuid = self._uuid_of.get(id(characteristic))
        if uuid is None:
            return
        value = (CCCD_NOTIFY if notify else 0) | (CCCD_INDICATE if indicate else 0)
        served.subscribed(uuid, value)

    def _reader(self, uuid: int) -> Callable[[BumbleConnection], bytes]:
        def read(connection: BumbleConnection) -> bytes:
            served = self._served(connection)
            try:
                return self.peripheral.read(served, uuid)
            except AttError as exc:
                raise ATT_Error(exc.code) from exc
            except LinkError as exc:
                raise ATT_Error(ErrorCode.UNLIKELY_ERROR) from exc

        return read

    def _writer(self, uuid: int) -> Callable[[BumbleConnection, bytes], None]:
        def write(connection: BumbleConnection, value: bytes) -> None:
            served = self._served(connection)
            try:
                self.peripheral.write(served, uuid, bytes(value))
            except AttError as exc:
                raise ATT_Error(exc.code) from exc
            except LinkError as exc:
                raise ATT_Error(ErrorCode.UNLIKELY_ERROR) from exc

        return write

    def _served(self, connection: BumbleConnection) -> ServedConnection:
        served = self.connection
        if served is None or served.bumble is not connection:
            raise ATT_Error(ErrorCode.UNLIKELY_ERROR)
        return served


class ServedConnection:
    """A `device_simulators.link.ServerConnection` over a Bumble connection: what a virtual peripheral drives."""

    def __init__(self, host: PeripheralHost, connection: BumbleConnection) -> None:
        self.host = host
        self.bumble = connection
        self.open = True
        self.cccd: dict[int, int] = {}
        self.notifications = 0
        self.indications_confirmed = 0
        self._loop = asyncio.get_running_loop()
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._subscribed: dict[int, asyncio.Event] = {}

    @property
    def peer(self) -> str:
        return str(self.bumble.peer_address).upper().removesuffix("/P")

    @property
    def att_mtu(self) -> int:
        return int(self.bumble.att_mtu)

    def notify(self, uuid: int, data: bytes) -> bool:
        if not self.open:
            raise PeripheralClosed
        if not self.cccd.get(uuid, 0) & CCCD_NOTIFY:
            return False
        characteristic = self.host.characteristics[uuid]
        self.notifications += 1
        self._loop.create_task(self.host.device.notify_subscriber(self.bumble, characteristic, bytes(data)))
        return True

    async def indicate(self, uuid: int, data: bytes, *, lose_confirmation: bool = False) -> None:
        """Send an indication and wait for the ATT confirmation, for at most the device's own timeout: a device that
        times out takes the value as not received, ends the link (ATT allows nothing more on it) and keeps it."""
        if not self.open:
            raise PeripheralClosed
        if not self.cccd.get(uuid, 0) & CCCD_INDICATE:
            raise PeripheralClosed(f"indications not enabled on 0x{uuid:04X}")
        characteristic = self.host.characteristics[uuid]
        sent = self._loop.create_task(self.host.device.indicate_subscriber(self.bumble, characteristic, bytes(data)))
        timeout = self.host.peripheral.confirmation_timeout_s
        done, _ = await asyncio.wait({sent, self._closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if sent not in done or sent.exception() is not None:
            sent.cancel()
            if self.open:
                self.host.confirmations_lost += 1
                log.info("virtual_device_confirmation_timeout address=%s", self.host.peripheral.address)
                self.terminate()
            raise PeripheralClosed
        if lose_confirmation:
            self.drop()
            raise PeripheralClosed
        self.indications_confirmed += 1

    async def wait_subscribed(self, uuid: int) -> None:
        if not self.open:
            raise PeripheralClosed
        event = self._subscribed.setdefault(uuid, asyncio.Event())
        await event.wait()
        if not self.open:
            raise PeripheralClosed

    def drop(self) -> None:
        """Supervision timeout: the link is gone on both sides, no goodbye."""
        if not self.open:
            return
        air, controller = self.host.air, self.host.controller
        if air is not None and controller is not None:
            air.supervision_timeout(controller, self.bumble.peer_address)
        else:
            self._loop.create_task(self._disconnect(hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR))
        self._closing()

    def terminate(self) -> None:
        if not self.open:
            return
        self._loop.create_task(self._disconnect(hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR))

    def refuse(self) -> None:
        """The device drops the link while it is being set up: the central sees it fail to be established."""
        self._loop.create_task(self._disconnect(hci.HCI_ErrorCode.CONNECTION_FAILED_TO_BE_ESTABLISHED_ERROR))

    # ---- events from Bumble --------------------------------------------------------------------------------

    def subscribed(self, uuid: int, value: int) -> None:
        if value:
            self.cccd[uuid] = value
            self._subscribed.setdefault(uuid, asyncio.Event()).set()
        else:
            self.cccd.pop(uuid, None)
        self.host.peripheral.subscribed(self, uuid, value)

    def paired(self, _keys: PairingKeys) -> None:
        self.host.peripheral.bonds.add(self.peer)

    def closed(self, _reason: int) -> None:
        self._closing()

    def _closing(self) -> None:
        if not self.open:
            return
        self.open = False
        if not self._closed.done():
            self._closed.set_result(None)
        for event in self._subscribed.values():
            event.set()
        host = self.host
        if host.connection is self:
            host.connection = None
        host.peripheral.closed(self)
        host.wake()

    async def _disconnect(self, reason: int) -> None:
        with contextlib.suppress(Exception):
            await self.bumble.disconnect(reason)
