"""One virtual health device on a real Bluetooth controller (a USB dongle, an HCI socket, a serial HCI board), so a
real gateway with bleak/BlueZ can be tested end to end without medical devices: `varde sim peripheral`.

The device is the same `device_simulators.peripherals` class the tests use, served by `bumble_air.PeripheralHost`
with the GATT table of its kind; it measures plausible values every `every_s` seconds and advertises them as the
real device would. Transport names are Bumble's (`usb:0`, `usb:2fe3:000b`, `hci-socket:0`, `serial:/dev/ttyACM0`,
`tcp-client:127.0.0.1:9000`, …).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from bumble.device import Device
from bumble.transport import open_transport

from device_simulators.bumble_air import PeripheralHost, random_address
from device_simulators.link import Air, AirClock, GattServer, WallClock
from device_simulators.peripherals import (
    BloodPressureCuff,
    GlucoseMeter,
    HeartRateStrap,
    Peripheral,
    PulseOximeter,
    Thermometer,
    WeightScale,
)

log = logging.getLogger(__name__)

KINDS: dict[str, type[Peripheral]] = {
    "blood_pressure": BloodPressureCuff,
    "pulse_oximeter": PulseOximeter,
    "weight_scale": WeightScale,
    "thermometer": Thermometer,
    "glucose_meter": GlucoseMeter,
    "heart_rate": HeartRateStrap,
}
ALIASES = {"blood_pressure_monitor": "blood_pressure", "heart_rate_monitor": "heart_rate", "oximeter": "pulse_oximeter"}
DEFAULT_ADDRESSES = {kind: f"C0:DE:00:00:00:{i:02X}" for i, kind in enumerate(KINDS, start=1)}
"""Random static addresses (the two top bits set), one per kind, so a gateway's configuration can name them."""


class DongleError(Exception):
    """The virtual device cannot run: a bad kind, or no controller at the transport."""


def kind_of(name: str) -> str:
    kind = ALIASES.get(name, name)
    if kind not in KINDS:
        raise DongleError(f"unknown device kind {name!r}; one of: {', '.join(KINDS)}")
    return kind


class DongleAir(Air):
    """An `Air` of one peripheral, served by a Bumble host on a real controller."""

    def __init__(self, transport: Any, clock: AirClock | None = None) -> None:
        super().__init__(clock or WallClock())
        self._transport = transport
        self.host: PeripheralHost | None = None

    def add(self, server: GattServer) -> None:
        super().add(server)
        if not isinstance(server, Peripheral) or self.host is not None:
            raise TypeError("a DongleAir serves one device_simulators peripheral")
        device = Device.with_hci(
            server.model, random_address(server.address), self._transport.source, self._transport.sink
        )
        self.host = PeripheralHost(server, device)

    def broadcast(self, advertisement: Any) -> None:
        if self.host is not None:
            self.host.wake()


def measure(device: Peripheral, rng: random.Random) -> str:
    """One plausible measurement on `device`; returns what it measured, for the operator's console."""
    if isinstance(device, BloodPressureCuff):
        sys, dia = rng.randint(115, 160), rng.randint(70, 95)
        device.measure(sys, dia, pulse=rng.randint(55, 90))
        return f"blood pressure {sys}/{dia} mmHg"
    if isinstance(device, PulseOximeter):
        spo2, pulse = rng.randint(90, 99), rng.randint(55, 95)
        device.measure(spo2, pulse)
        return f"SpO2 {spo2} % pulse {pulse}/min"
    if isinstance(device, WeightScale):
        kg = round(rng.uniform(60, 95), 1)
        device.measure(kg)
        return f"weight {kg} kg"
    if isinstance(device, Thermometer):
        celsius = round(rng.uniform(36.2, 38.4), 1)
        device.measure(celsius)
        return f"temperature {celsius} °C"
    if isinstance(device, GlucoseMeter):
        mmol = round(rng.uniform(4.5, 11.0), 1)
        device.measure(mmol)
        return f"glucose {mmol} mmol/L"
    if isinstance(device, HeartRateStrap):
        device.wear()
        rate = rng.randint(58, 96)
        device.beat(rate, rr_intervals=(round(60 / rate, 3),))
        return f"heart rate {rate}/min"
    raise DongleError(f"no measurement for {type(device).__name__}")


async def run_peripheral(
    kind: str,
    transport: str,
    *,
    address: str | None = None,
    passkey: str | None = None,
    every_s: float = 60.0,
    count: int | None = None,
    seed: int = 1,
    say: Callable[[str], None] = print,
) -> Peripheral:
    """Serve one virtual device on the controller at `transport` until cancelled (or `count` measurements)."""
    kind = kind_of(kind)
    try:
        hci_transport = await open_transport(transport)
    except Exception as exc:
        hint = (
            " — is a Bluetooth USB dongle plugged in, and may this user open it? (docs/devices.md: udev rule;"
            " BlueZ must not hold it: `hciconfig hciN down` or unbind btusb)"
            if transport.startswith(("usb", "pyusb"))
            else ""
        )
        raise DongleError(f"cannot open Bluetooth transport {transport!r}: {exc}{hint}") from exc
    rng = random.Random(seed)
    try:
        air = DongleAir(hci_transport)
        options: dict[str, Any] = {"seed": seed}
        if kind == "glucose_meter":
            options["passkey"] = passkey or "246810"
        elif passkey is not None:
            options.update(bonding=True, passkey=passkey)
        device = KINDS[kind](air, address or DEFAULT_ADDRESSES[kind], **options)
        host = air.host
        assert host is not None
        host.wake()
        say(
            f"{device.model} ({kind}) at {device.address} on {transport}"
            + (f", passkey {device.passkey}" if device.passkey else "")
        )
        done = 0
        while count is None or done < count:
            if device.connection is None or kind == "heart_rate":
                say(f"measured {measure(device, rng)}")
                done += 1
            await asyncio.sleep(1.0 if kind == "heart_rate" else every_s)
        return device
    finally:
        await hci_transport.close()
