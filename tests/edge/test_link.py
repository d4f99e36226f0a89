"""BLE failures are sorted into typed link errors that carry a hint for the user."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakCharacteristicNotFoundError,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
)
from bleak_retry_connector import BleakConnectionError, BleakNotFoundError, BleakOutOfConnectionSlotsError

from edge_agent.link import (
    AdapterUnavailableError,
    BondingRequiredError,
    ConnectionDroppedError,
    ConnectTimeoutError,
    DeviceNotFoundError,
    GattOperationError,
    Link,
    LinkError,
    OutOfConnectionSlotsError,
    Radio,
)
from edge_agent.links.bleak_link import BleakLink, BleakRadio, translate_error

ADDRESS = "A4:C1:38:00:00:01"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (BleakNotFoundError("gone"), DeviceNotFoundError),
        (BleakDeviceNotFoundError(ADDRESS), DeviceNotFoundError),
        (BleakOutOfConnectionSlotsError("slots"), OutOfConnectionSlotsError),
        (
            BleakBluetoothNotAvailableError("off", BleakBluetoothNotAvailableReason.POWERED_OFF),
            AdapterUnavailableError,
        ),
        (BleakGATTProtocolError(0x05), BondingRequiredError),
        (BleakGATTProtocolError(0x0F), BondingRequiredError),
        (BleakGATTProtocolError(0x0A), GattOperationError),
        (BleakCharacteristicNotFoundError("2a35"), GattOperationError),
        (BleakDBusError("org.bluez.Error.AuthenticationFailed", []), BondingRequiredError),
        (BleakDBusError("org.bluez.Error.NotReady", []), AdapterUnavailableError),
        (BleakDBusError("org.bluez.Error.Failed", ["le-connection-abort-by-local"]), ConnectionDroppedError),
        (TimeoutError(), ConnectTimeoutError),
        (BleakConnectionError("failed"), ConnectionDroppedError),
        (FileNotFoundError("/run/dbus/system_bus_socket"), AdapterUnavailableError),
        (BleakError("Not connected"), ConnectionDroppedError),
        (BleakError("something odd"), LinkError),
    ],
)
def test_bleak_failures_map_to_link_error_classes(exc: BaseException, expected: type[LinkError]) -> None:
    error = translate_error(exc, ADDRESS)
    assert type(error) is expected
    assert error.address == ADDRESS
    assert error.__cause__ is exc


def test_link_error_message_names_device_and_hint() -> None:
    text = str(BondingRequiredError("device requires an encrypted link", address=ADDRESS))
    assert ADDRESS in text and "bond = true" in text
    assert str(AdapterUnavailableError("no adapter")).endswith(AdapterUnavailableError.hint)


def test_bleak_implementation_satisfies_the_link_protocols() -> None:
    radio = BleakRadio("hci0")
    assert isinstance(radio, Radio)
    link = radio.link(ADDRESS.lower())
    assert isinstance(link, Link) and isinstance(link, BleakLink)
    assert link.address == ADDRESS and not link.is_connected


def test_connect_without_advertisement_is_device_not_found() -> None:
    link = BleakRadio("hci0").link(ADDRESS)
    with pytest.raises(DeviceNotFoundError):
        asyncio.run(link.connect(timeout_s=1))
    with pytest.raises(ConnectionDroppedError):
        asyncio.run(link.read("00002a19-0000-1000-8000-00805f9b34fb"))


def test_bumble_backend_is_chosen_by_configuration_and_a_missing_dongle_is_adapter_unavailable(tmp_path: Path) -> None:
    from edge_agent.agent import configured_radio
    from edge_agent.config import EdgeConfig
    from edge_agent.links.bumble_link import BumbleRadio

    config = EdgeConfig.model_validate(
        {
            "gateway_id": "gw-0001",
            "patient_timezone": "Europe/Oslo",
            "broker": {"host": "h"},
            "outbox": {"path": str(tmp_path / "outbox.sqlite")},
            "ble": {"backend": "bumble", "bumble_transport": "usb:0"},
        }
    )
    assert config.bumble_keys_path == tmp_path / "bumble-keys.json"
    radio = configured_radio(config)
    assert isinstance(radio, BumbleRadio) and isinstance(radio, Radio)
    with pytest.raises(AdapterUnavailableError, match="usb:0"):
        asyncio.run(radio.start_scan(lambda _a: None))
    assert isinstance(
        configured_radio(config.model_copy(update={"ble": config.ble.model_copy(update={"backend": "bluez"})})),
        BleakRadio,
    )
