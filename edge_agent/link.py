"""The link interface device handlers drive: scanning, connecting, GATT reads/writes/notifications, bonding.

Device handlers (`edge_agent/devices/`) see only `Radio` and `Link`; production uses `links.bleak_link`, the device
simulators provide their own implementation. Every failure is a `LinkError` subclass carrying a hint a person can
act on; `backoff.py` chooses the retry delay from the error's class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Advertisement:
    """One advertisement (or scan response) as seen by the radio."""

    address: str
    name: str | None
    service_uuids: tuple[str, ...]
    rssi: int
    manufacturer_data: Mapping[int, bytes] = field(default_factory=dict)
    service_data: Mapping[str, bytes] = field(default_factory=dict)


def sig_uuid(number: int) -> str:
    """The 128-bit string of a 16-bit Bluetooth SIG UUID, spelled as bleak reports and accepts it."""
    return f"0000{number:04x}-0000-1000-8000-00805f9b34fb"


AdvertisementCallback = Callable[[Advertisement], None]
NotifyCallback = Callable[[bytes], None]
"""Receives the raw value of a notification or indication."""
DisconnectCallback = Callable[[str], None]
"""Receives the address of the device whose link dropped."""


class LinkError(Exception):
    """A BLE operation failed. `hint` tells the person at the gateway (or the support desk) what to try."""

    hint = "Check that the device is switched on and near the gateway."

    def __init__(self, message: str, *, address: str | None = None) -> None:
        super().__init__(message)
        self.address = address

    def __str__(self) -> str:
        where = f" (device {self.address})" if self.address else ""
        return f"{self.args[0]}{where}. {self.hint}"


class DeviceNotFoundError(LinkError):
    hint = "The device is not advertising: most health devices only do so for a short while after a measurement."


class OutOfConnectionSlotsError(LinkError):
    hint = "The Bluetooth adapter has no free connection slot; other devices must disconnect first."


class ConnectionDroppedError(LinkError):
    hint = "The link dropped: move the device closer to the gateway or replace its battery."


class ConnectTimeoutError(LinkError):
    hint = "The device did not answer in time; it may have gone back to sleep."


class AdapterUnavailableError(LinkError):
    hint = "The gateway's Bluetooth adapter is off, missing or BlueZ is not running (systemctl status bluetooth)."


class BondingRequiredError(LinkError):
    hint = "The device needs to be paired with the gateway: set `bond = true` (and its passkey) in the configuration."


class GattOperationError(LinkError):
    hint = "The device refused a GATT operation; its firmware may not support this characteristic."


@runtime_checkable
class Link(Protocol):
    """A connection to one peripheral. Methods raise `LinkError` subclasses."""

    @property
    def address(self) -> str: ...

    @property
    def is_connected(self) -> bool: ...

    async def connect(self, *, timeout_s: float = 20.0) -> None: ...

    async def disconnect(self) -> None: ...

    async def pair(self, *, passkey: str | None = None) -> None:
        """Pair and bond; a no-op when the device is already bonded."""
        ...

    async def start_notify(self, uuid: str, callback: NotifyCallback) -> None:
        """Subscribe to notifications or indications (whichever the characteristic supports)."""
        ...

    async def stop_notify(self, uuid: str) -> None: ...

    async def read(self, uuid: str) -> bytes: ...

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None: ...

    def set_disconnect_callback(self, callback: DisconnectCallback | None) -> None: ...


@runtime_checkable
class Radio(Protocol):
    """The local adapter: scanning and opening links."""

    async def start_scan(self, callback: AdvertisementCallback) -> None: ...

    async def stop_scan(self) -> None: ...

    def link(self, address: str) -> Link:
        """A link object for `address` (not yet connected); needs a recent advertisement to connect."""
        ...
