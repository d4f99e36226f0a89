"""A link over Google's Bumble stack: the gateway is a Bumble host driving an HCI controller directly.

Two uses. In the tests the controller is a virtual one on a `bumble.link.LocalLink`, with the virtual devices of
`device_simulators.bumble_air` on the same link, so the device handlers run over real ATT, GATT and SMP (MTU
exchange, CCCD writes, indication confirmations, pairing, encryption with stored keys). On a gateway where BlueZ is
unwanted it drives a USB dongle (`[ble] backend = "bumble"`, `BumbleRadio.on_transport("usb:0")`), with the bonds in
a JSON key store. BlueZ through `links.bleak_link` stays the production default.

Failures are the same `LinkError` classes the bleak link raises. A device whose bond no longer matches ours (it was
reset, or paired with something else) has the stale keys removed and is paired afresh on this or the next connection.

The host uses Bumble's own AES, AES-CMAC and P-256 (`bumble.crypto.builtin`) rather than the `cryptography` wheel:
that wheel links a second OpenSSL into the process beside the one `ssl` already maps for MQTT over TLS, about 9 MB
of the gateway's memory, for a handful of operations per pairing (a P-256 key agreement takes ~20 ms in Python; the
link's encryption itself runs in the controller). A process that loaded Bumble before this module keeps its choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

if "bumble.crypto" not in sys.modules:
    # An entry of None makes the import fail, and Bumble then falls back to its built-in primitives.
    sys.modules.setdefault("bumble.crypto.cryptography", None)  # type: ignore[arg-type]

from bumble import core, hci
from bumble.att import ATT_Error, ErrorCode
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement as BumbleAdvertisement
from bumble.device import Connection, Device, Peer
from bumble.gatt import Characteristic
from bumble.gatt_client import CharacteristicProxy
from bumble.keys import JsonKeyStore
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.smp import ErrorCode as SmpErrorCode

from edge_agent.link import (
    AdapterUnavailableError,
    Advertisement,
    AdvertisementCallback,
    BondingRequiredError,
    ConnectionDroppedError,
    ConnectTimeoutError,
    DeviceNotFoundError,
    DisconnectCallback,
    GattOperationError,
    Link,
    LinkError,
    NotifyCallback,
    OutOfConnectionSlotsError,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T")
DeviceOpener = Callable[[], Awaitable[Device]]
"""Makes the powered-on host this radio scans with; raising means the adapter is not there."""

_BOND_ATT = {
    ErrorCode.INSUFFICIENT_AUTHENTICATION,
    ErrorCode.INSUFFICIENT_AUTHORIZATION,
    ErrorCode.INSUFFICIENT_ENCRYPTION,
    ErrorCode.INSUFFICIENT_ENCRYPTION_KEY_SIZE,
}
_WRONG_PASSKEY = {SmpErrorCode.CONFIRM_VALUE_FAILED, SmpErrorCode.PASSKEY_ENTRY_FAILED}
_STALE_BOND = {
    hci.HCI_ErrorCode.PIN_OR_KEY_MISSING_ERROR,
    hci.HCI_ErrorCode.CONNECTION_TERMINATED_DUE_TO_MIC_FAILURE_ERROR,
}
_REFUSED = {
    hci.HCI_ErrorCode.CONNECTION_FAILED_TO_BE_ESTABLISHED_ERROR,
    hci.HCI_ErrorCode.CONNECTION_REJECTED_DUE_TO_LIMITED_RESOURCES_ERROR,
}


def translate_error(exc: BaseException, address: str | None) -> LinkError:
    """Sort a Bumble failure into the `LinkError` class whose hint and back-off fit it."""
    if isinstance(exc, LinkError):
        return exc
    error: LinkError
    if isinstance(exc, ATT_Error):
        name = ErrorCode(exc.error_code).name if exc.error_code in ErrorCode.__members__.values() else "?"
        if exc.error_code in _BOND_ATT:
            error = BondingRequiredError(f"device requires an encrypted link ({name})", address=address)
        else:
            error = GattOperationError(f"GATT error {name} (0x{exc.error_code:02X})", address=address)
    elif isinstance(exc, core.ProtocolError) and exc.error_namespace == "smp":
        if exc.error_code in _WRONG_PASSKEY:
            error = BondingRequiredError(f"pairing failed: wrong passkey ({exc.error_name})", address=address)
        else:
            error = BondingRequiredError(f"pairing failed: {exc.error_name}", address=address)
    elif isinstance(exc, hci.HCI_Error) and exc.error_code in _STALE_BOND:
        error = BondingRequiredError(f"encryption failed: {exc.error_name}", address=address)
    elif isinstance(exc, core.ConnectionError | core.InvalidStateError):
        error = ConnectionDroppedError(f"connection failed: {exc}", address=address)
    elif isinstance(exc, TimeoutError | core.TimeoutError):
        error = ConnectTimeoutError("timed out", address=address)
    elif isinstance(exc, OSError | core.CommandTimeoutError):
        error = AdapterUnavailableError(f"the Bluetooth controller does not answer: {exc}", address=address)
    else:
        error = LinkError(f"{type(exc).__name__}: {exc}", address=address)
    error.__cause__ = exc
    return error


def _reason_name(reason: int) -> str:
    try:
        return hci.HCI_ErrorCode(reason).name
    except ValueError:
        return f"0x{reason:02X}"


def _sig_uuid(uuid: str) -> UUID:
    try:
        return UUID(uuid)
    except (ValueError, core.InvalidArgumentError) as exc:
        raise GattOperationError(f"characteristic {uuid!r} is not a UUID") from exc


class BumbleRadio:
    """The gateway's adapter as a Bumble host. Scans passively; remembers who advertised, which `connect` needs."""

    def __init__(self, opener: DeviceOpener, *, slots: int = 5) -> None:
        self.slots = slots
        self.scan_starts = 0
        self.device: Device | None = None
        self.links: set[BumbleLink] = set()
        self._opener = opener
        self._callback: AdvertisementCallback | None = None
        self._heard: set[str] = set()
        self._passkeys: dict[str, str | None] = {}
        self.connecting = asyncio.Lock()
        """A controller creates one LE connection at a time (BlueZ queues them the same way)."""

    @classmethod
    def on_transport(cls, transport: str, *, keys: Path | None = None, slots: int = 5) -> BumbleRadio:
        """A radio on a real controller: `usb:0`, `hci-socket:0`, `serial:/dev/ttyACM0,1000000`, … (Bumble names)."""
        from bumble.transport import open_transport

        async def opener() -> Device:
            try:
                hci_transport = await open_transport(transport)
            except Exception as exc:
                raise AdapterUnavailableError(f"cannot open Bluetooth transport {transport}: {exc}") from exc
            identity = _identity_address(keys)
            device = Device.with_hci("varde-gateway", identity, hci_transport.source, hci_transport.sink)
            await device.power_on()
            if keys is not None:
                device.keystore = JsonKeyStore(str(identity), str(keys))
            return device

        return cls(opener, slots=slots)

    @property
    def scanning(self) -> bool:
        return self._callback is not None

    @property
    def identity(self) -> str | None:
        return None if self.device is None else str(self.device.random_address)

    async def start_scan(self, callback: AdvertisementCallback) -> None:
        device = await self._device()
        self._callback = callback
        try:
            await device.start_scanning(active=False, filter_duplicates=False)
        except Exception as exc:
            self._callback = None
            raise translate_error(exc, None) from exc
        self.scan_starts += 1

    async def stop_scan(self) -> None:
        self._callback = None
        device = self.device
        if device is not None and device.is_scanning:
            with contextlib.suppress(Exception):
                await device.stop_scanning()

    def link(self, address: str) -> Link:
        return BumbleLink(self, address.upper())

    def heard(self, address: str) -> bool:
        return address.upper() in self._heard

    async def _device(self) -> Device:
        if self.device is None:
            try:
                device = await self._opener()
            except LinkError:
                raise
            except Exception as exc:
                raise AdapterUnavailableError(f"Bluetooth controller unavailable: {exc}") from exc
            device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
            device.pairing_config_factory = self._pairing_config
            self.device = device
        return self.device

    def _on_advertisement(self, advertisement: BumbleAdvertisement) -> None:
        address = str(advertisement.address).upper().removesuffix("/P")
        self._heard.add(address)
        if self._callback is None:
            return
        data = advertisement.data
        uuids: list[str] = []
        for kind in (
            AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        ):
            for listed in data.get_all(kind):
                uuids.extend(str(u.to_hex_str("-")).lower() for u in listed)
        name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(AdvertisingData.SHORTENED_LOCAL_NAME)
        self._callback(
            Advertisement(
                address=address,
                name=name if isinstance(name, str) else None,
                service_uuids=tuple(_full_uuid(u) for u in uuids),
                rssi=advertisement.rssi,
            )
        )

    def _pairing_config(self, connection: Connection) -> PairingConfig:
        passkey = self._passkeys.get(str(connection.peer_address).upper().removesuffix("/P"))
        delegate = _GatewayDelegate(passkey)
        return PairingConfig(
            sc=True,
            mitm=passkey is not None,
            bonding=True,
            identity_address_type=PairingConfig.AddressType.RANDOM,
            delegate=delegate,
        )


def _identity_address(keys: Path | None) -> hci.Address:
    """The gateway's random static address: its identity in every bond, so it is kept beside the keys (pairing
    distributes it, and a device would not recognise a gateway whose address changed)."""
    stored = keys.with_name(keys.name + ".address") if keys is not None else None
    if stored is not None and stored.exists():
        return hci.Address(stored.read_text().strip(), hci.Address.RANDOM_DEVICE_ADDRESS)
    address = hci.Address.generate_static_address()
    if stored is not None:
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_text(str(address) + "\n")
    return address


def _full_uuid(text: str) -> str:
    """Bumble's spelling of a 16-bit UUID ("1810") to bleak's 128-bit string."""
    digits = text.replace("-", "")
    if len(digits) == 4:
        return f"0000{digits.lower()}-0000-1000-8000-00805f9b34fb"
    return text.lower()


class _GatewayDelegate(PairingDelegate):
    """The gateway types the device's passkey (from the configuration); without one it pairs Just Works."""

    def __init__(self, passkey: str | None) -> None:
        io = self.IoCapability.KEYBOARD_INPUT_ONLY if passkey is not None else self.IoCapability.NO_OUTPUT_NO_INPUT
        super().__init__(io)
        self._passkey = passkey

    async def get_number(self) -> int | None:
        return int(self._passkey) if self._passkey is not None else None


class BumbleLink:
    """One peripheral through a `BumbleRadio`. Create through `BumbleRadio.link(address)`."""

    def __init__(self, radio: BumbleRadio, address: str) -> None:
        self._radio = radio
        self._address = address
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._lost: asyncio.Future[int] | None = None
        self._on_disconnect: DisconnectCallback | None = None
        self._characteristics: dict[UUID, CharacteristicProxy[bytes]] = {}
        self._subscribed: dict[UUID, Callable[[bytes], None]] = {}

    @property
    def address(self) -> str:
        return self._address

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and self._lost is not None and not self._lost.done()

    @property
    def connection(self) -> Connection | None:
        """The Bumble connection (tests read the negotiated MTU and the encryption state from it)."""
        return self._connection

    def set_disconnect_callback(self, callback: DisconnectCallback | None) -> None:
        self._on_disconnect = callback

    async def connect(self, *, timeout_s: float = 20.0) -> None:
        if self.is_connected:
            return
        radio = self._radio
        device = await radio._device()
        if len(radio.links) >= radio.slots:
            raise OutOfConnectionSlotsError(f"all {radio.slots} connection slots are in use", address=self._address)
        try:
            async with radio.connecting:
                connection = await device.connect(self._address, timeout=timeout_s)
        except (TimeoutError, core.TimeoutError) as exc:
            raise DeviceNotFoundError(
                "the device did not answer: it is not advertising", address=self._address
            ) from exc
        except Exception as exc:
            raise translate_error(exc, self._address) from exc
        lost: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if connection.handle not in device.connections:
            raise ConnectTimeoutError("the device dropped the link while it was set up", address=self._address)
        self._connection, self._lost = connection, lost
        radio.links.add(self)
        connection.on(Connection.EVENT_DISCONNECTION, self._disconnected)
        self._peer = Peer(connection)
        try:
            await self._guarded(self._discover(self._peer), timeout_s)
        except ConnectionDroppedError as exc:
            reason = lost.result() if lost.done() else None
            if reason in _REFUSED:
                raise ConnectTimeoutError("the device did not accept the connection", address=self._address) from exc
            raise
        except LinkError:
            await self.disconnect()
            raise

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is not None and self.is_connected:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.disconnect(), 5.0)
        self._forget()

    async def pair(self, *, passkey: str | None = None) -> None:
        connection = self._require()
        if connection.is_encrypted:
            return
        radio = self._radio
        keystore = radio.device.keystore if radio.device is not None else None
        identity = str(connection.peer_address)
        if keystore is not None and await keystore.get(identity) is not None:
            try:
                await self._guarded(connection.encrypt(), 10.0)
                return
            except (BondingRequiredError, ConnectionDroppedError) as exc:
                await keystore.delete(identity)
                log.warning("ble_bond_stale address=%s action=pair_again error=%s", self._address, exc)
                if not self.is_connected:
                    raise ConnectionDroppedError(
                        "the device's bond no longer matches the gateway's; it pairs afresh on the next connection",
                        address=self._address,
                    ) from exc
        radio._passkeys[self._address] = passkey
        try:
            await self._guarded(connection.pair(), 30.0)
        finally:
            radio._passkeys.pop(self._address, None)

    async def start_notify(self, uuid: str, callback: NotifyCallback) -> None:
        characteristic = self._characteristic(uuid)
        if not characteristic.properties & (Characteristic.Properties.NOTIFY | Characteristic.Properties.INDICATE):
            raise GattOperationError(f"{uuid} supports neither notify nor indicate", address=self._address)

        def deliver(value: bytes) -> None:
            callback(bytes(value))

        self._subscribed[characteristic.uuid] = deliver
        await self._guarded(characteristic.subscribe(deliver, prefer_notify=True))

    async def stop_notify(self, uuid: str) -> None:
        characteristic = self._characteristic(uuid)
        deliver = self._subscribed.pop(characteristic.uuid, None)
        await self._guarded(characteristic.unsubscribe(deliver))

    async def read(self, uuid: str) -> bytes:
        characteristic = self._characteristic(uuid)
        if not characteristic.properties & Characteristic.Properties.READ:
            raise GattOperationError(f"{uuid} is not readable (read not permitted)", address=self._address)
        value = await self._guarded(characteristic.read_value())
        return bytes(value)

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None:
        characteristic = self._characteristic(uuid)
        writable = Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE
        if not characteristic.properties & writable:
            raise GattOperationError(f"{uuid} is not writable (write not permitted)", address=self._address)
        await self._guarded(characteristic.write_value(bytes(data), with_response=response))

    # ---- internals -----------------------------------------------------------------------------------------

    async def _discover(self, peer: Peer) -> None:
        await peer.discover_services()
        for service in peer.services:
            for characteristic in await service.discover_characteristics():
                self._characteristics.setdefault(characteristic.uuid, characteristic)

    def _characteristic(self, uuid: str) -> CharacteristicProxy[bytes]:
        self._require()
        wanted = _sig_uuid(uuid)
        characteristic = self._characteristics.get(wanted)
        if characteristic is None:
            raise GattOperationError(f"characteristic missing: {uuid}", address=self._address)
        return characteristic

    def _require(self) -> Connection:
        if self._connection is None or not self.is_connected:
            raise ConnectionDroppedError("not connected", address=self._address)
        return self._connection

    async def _guarded(self, operation: Coroutine[Any, Any, _T], timeout_s: float = 30.0) -> _T:
        """Run one GATT/SMP step; the link dropping meanwhile ends it at once as `ConnectionDroppedError`."""
        lost = self._lost
        task = asyncio.ensure_future(operation)
        if lost is None or lost.done():
            task.cancel()
            raise ConnectionDroppedError("not connected", address=self._address)
        waiting: set[asyncio.Future[Any]] = {task, lost}
        try:
            done, _ = await asyncio.wait(waiting, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task in done:
            if task.cancelled():
                # Bumble cancels the requests of a connection that has gone.
                raise (
                    self._dropped(lost.result())
                    if lost.done()
                    else ConnectionDroppedError("the stack abandoned the operation", address=self._address)
                )
            failure = task.exception()
            if failure is None:
                return task.result()
            if lost.done():
                raise self._dropped(lost.result()) from failure
            raise translate_error(failure, self._address) from failure
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        if lost.done():
            raise self._dropped(lost.result())
        raise ConnectTimeoutError("the device did not answer in time", address=self._address)

    def _dropped(self, reason: int) -> LinkError:
        name = _reason_name(reason)
        if reason in _STALE_BOND:
            return ConnectionDroppedError(f"link dropped: {name} (the bond keys do not match)", address=self._address)
        return ConnectionDroppedError(f"link dropped: {name}", address=self._address)

    def _disconnected(self, reason: int) -> None:
        lost = self._lost
        if lost is not None and not lost.done():
            lost.set_result(reason)
        self._radio.links.discard(self)
        log.info("ble_disconnected address=%s reason=%s", self._address, _reason_name(reason))
        if self._on_disconnect is not None:
            self._on_disconnect(self._address)

    def _forget(self) -> None:
        self._radio.links.discard(self)
        lost = self._lost
        if lost is not None and not lost.done():
            lost.set_result(hci.HCI_ErrorCode.CONNECTION_TERMINATED_BY_LOCAL_HOST_ERROR)
        self._connection = None
        self._peer = None
        self._characteristics.clear()
        self._subscribed.clear()
