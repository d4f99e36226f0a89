"""The production link: bleak on BlueZ, connections through bleak-retry-connector.

`BleakRadio` scans continuously, remembers the last `BLEDevice` per address (needed to connect) and restarts the
scanner when it has gone quiet — BlueZ sometimes stops delivering advertisements without reporting an error.
`BleakLink` connects with retries and a service cache, and translates bleak's failures into `LinkError` classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakCharacteristicNotFoundError,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)
from bleak_retry_connector import (
    BleakAbortedError,
    BleakClientWithServiceCache,
    BleakConnectionError,
    BleakNotFoundError,
    BleakOutOfConnectionSlotsError,
    establish_connection,
)

from edge_agent.backoff import delay_for
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

_MAX_REMEMBERED_DEVICES = 256
_BOND_CODES = {
    BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION,
    BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHORIZATION,
    BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION,
    BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION_KEY_SIZE,
}
_BOND_DBUS = ("AuthenticationFailed", "AuthenticationRejected", "AuthenticationCanceled", "AuthenticationTimeout")
_ADAPTER_DBUS = ("org.bluez.Error.NotReady", "org.freedesktop.DBus.Error.ServiceUnknown", "NoSuchAdapter")


def translate_error(exc: BaseException, address: str | None) -> LinkError:
    """Sort a bleak (or OS) failure into the `LinkError` class whose hint and back-off fit it."""
    if isinstance(exc, LinkError):
        return exc
    text = str(exc)
    error: LinkError
    if isinstance(exc, BleakNotFoundError | BleakDeviceNotFoundError):
        error = DeviceNotFoundError(f"device not found: {text}", address=address)
    elif isinstance(exc, BleakOutOfConnectionSlotsError):
        error = OutOfConnectionSlotsError(f"no free connection slot: {text}", address=address)
    elif isinstance(exc, BleakBluetoothNotAvailableError):
        error = AdapterUnavailableError(f"Bluetooth not available: {text}", address=address)
    elif isinstance(exc, BleakGATTProtocolError):
        if exc.code in _BOND_CODES:
            error = BondingRequiredError(f"device requires an encrypted link ({exc.code.name})", address=address)
        else:
            error = GattOperationError(f"GATT error {exc.code.name}", address=address)
    elif isinstance(exc, BleakCharacteristicNotFoundError):
        error = GattOperationError(f"characteristic missing: {text}", address=address)
    elif isinstance(exc, BleakDBusError):
        if any(name in exc.dbus_error for name in _BOND_DBUS):
            error = BondingRequiredError(f"pairing failed: {exc.dbus_error}", address=address)
        elif any(name in exc.dbus_error for name in _ADAPTER_DBUS):
            error = AdapterUnavailableError(f"adapter not ready: {exc.dbus_error}", address=address)
        else:
            error = ConnectionDroppedError(f"BlueZ error {exc.dbus_error}", address=address)
    elif isinstance(exc, TimeoutError):
        error = ConnectTimeoutError("timed out", address=address)
    elif isinstance(exc, BleakConnectionError | BleakAbortedError):
        error = ConnectionDroppedError(f"connection failed: {text}", address=address)
    elif isinstance(exc, FileNotFoundError | ConnectionRefusedError | PermissionError):
        error = AdapterUnavailableError(f"cannot reach BlueZ over D-Bus: {text}", address=address)
    elif isinstance(exc, BleakError) and "not connected" in text.lower():
        error = ConnectionDroppedError("not connected", address=address)
    else:
        error = LinkError(f"{type(exc).__name__}: {text}", address=address)
    error.__cause__ = exc
    return error


class BleakRadio:
    """Scanning on one BlueZ adapter, with a watchdog that restarts a scanner gone quiet."""

    def __init__(self, adapter: str = "hci0", *, quiet_restart_s: float = 120.0) -> None:
        self.adapter = adapter
        self.quiet_restart_s = quiet_restart_s
        self.restarts = 0
        self._callback: AdvertisementCallback | None = None
        self._scanner: BleakScanner | None = None
        self._devices: OrderedDict[str, BLEDevice] = OrderedDict()
        self._last_advert = time.monotonic()
        self._watchdog: asyncio.Task[None] | None = None

    async def start_scan(self, callback: AdvertisementCallback) -> None:
        self._callback = callback
        await self._start_scanner()
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch(), name="ble-scanner-watchdog")

    async def stop_scan(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        await self._stop_scanner()

    def link(self, address: str) -> Link:
        return BleakLink(self, address.upper())

    def ble_device(self, address: str) -> BLEDevice | None:
        return self._devices.get(address.upper())

    async def _start_scanner(self) -> None:
        scanner = BleakScanner(detection_callback=self._on_detection, bluez={"adapter": self.adapter})
        try:
            await scanner.start()
        except Exception as exc:
            raise translate_error(exc, None) from exc
        self._scanner = scanner
        self._last_advert = time.monotonic()

    async def _stop_scanner(self) -> None:
        scanner, self._scanner = self._scanner, None
        if scanner is not None:
            with contextlib.suppress(BleakError, OSError, TimeoutError):
                await scanner.stop()

    def _on_detection(self, device: BLEDevice, data: AdvertisementData) -> None:
        self._last_advert = time.monotonic()
        address = device.address.upper()
        self._devices[address] = device
        self._devices.move_to_end(address)
        if len(self._devices) > _MAX_REMEMBERED_DEVICES:
            self._devices.popitem(last=False)
        if self._callback is not None:
            self._callback(
                Advertisement(
                    address=address,
                    name=data.local_name or device.name,
                    service_uuids=tuple(data.service_uuids),
                    rssi=data.rssi,
                    manufacturer_data=dict(data.manufacturer_data),
                    service_data=dict(data.service_data),
                )
            )

    async def _watch(self) -> None:
        attempt = 0
        while True:
            await asyncio.sleep(max(self.quiet_restart_s / 4, 1.0))
            quiet_for = time.monotonic() - self._last_advert
            if self._scanner is not None and quiet_for < self.quiet_restart_s:
                attempt = 0
                continue
            log.warning("ble_scanner_quiet adapter=%s quiet_s=%.0f restarting=true", self.adapter, quiet_for)
            await self._stop_scanner()
            try:
                await self._start_scanner()
                self.restarts += 1
                attempt = 0
            except LinkError as exc:
                delay = delay_for(exc, attempt)
                attempt += 1
                log.error("ble_scanner_restart_failed error=%s retry_in_s=%.0f", exc, delay)
                await asyncio.sleep(delay)


class BleakLink:
    """One peripheral over BlueZ. Create through `BleakRadio.link(address)`."""

    def __init__(self, radio: BleakRadio, address: str) -> None:
        self._radio = radio
        self._address = address
        self._client: BleakClient | None = None
        self._on_disconnect: DisconnectCallback | None = None

    @property
    def address(self) -> str:
        return self._address

    @property
    def is_connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    def set_disconnect_callback(self, callback: DisconnectCallback | None) -> None:
        self._on_disconnect = callback

    async def connect(self, *, timeout_s: float = 20.0) -> None:
        device = self._radio.ble_device(self._address)
        if device is None:
            raise DeviceNotFoundError("no recent advertisement", address=self._address)
        try:
            self._client = await establish_connection(
                BleakClientWithServiceCache,
                device,
                self._address,
                disconnected_callback=self._disconnected,
                ble_device_callback=lambda: self._radio.ble_device(self._address) or device,
                timeout=timeout_s,
            )
        except Exception as exc:
            raise translate_error(exc, self._address) from exc

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(BleakError, OSError, TimeoutError):
                await client.disconnect()

    async def pair(self, *, passkey: str | None = None) -> None:
        """Pair through BlueZ. A passkey device must be paired once with `bluetoothctl` (see INSTALL.md):
        BlueZ asks its registered agent for the passkey, which this process does not provide."""
        client = self._require_client()
        try:
            await client.pair()
        except Exception as exc:
            error = translate_error(exc, self._address)
            if passkey is not None and isinstance(error, BondingRequiredError):
                raise BondingRequiredError(
                    "pairing with a passkey needs a one-time `bluetoothctl pair` on the gateway", address=self._address
                ) from exc
            raise error from exc

    async def start_notify(self, uuid: str, callback: NotifyCallback) -> None:
        def _deliver(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            callback(bytes(data))

        await self._call(self._require_client().start_notify(uuid, _deliver))

    async def stop_notify(self, uuid: str) -> None:
        await self._call(self._require_client().stop_notify(uuid))

    async def read(self, uuid: str) -> bytes:
        data: bytearray = await self._call(self._require_client().read_gatt_char(uuid))
        return bytes(data)

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None:
        await self._call(self._require_client().write_gatt_char(uuid, data, response=response))

    def _require_client(self) -> BleakClient:
        if self._client is None or not self._client.is_connected:
            raise ConnectionDroppedError("not connected", address=self._address)
        return self._client

    async def _call(self, operation: Any) -> Any:
        try:
            return await operation
        except Exception as exc:
            raise translate_error(exc, self._address) from exc

    def _disconnected(self, _client: BleakClient) -> None:
        log.info("ble_disconnected address=%s", self._address)
        if self._on_disconnect is not None:
            self._on_disconnect(self._address)
