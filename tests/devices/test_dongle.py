"""The hardware path: `varde sim peripheral` serves a virtual device on a real HCI controller. Here the controller is
a Bumble virtual one behind an HCI transport over TCP (what a USB dongle is to the host: H4 packets); the gateway is
the Bumble link on the same radio medium. Where the kernel offers VHCI, bleak through BlueZ reads a virtual cuff."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
from contextlib import suppress
from pathlib import Path

import pytest
from bumble.controller import Controller
from bumble.transport import open_transport
from device_fixtures import FAST, GW, TZ, OutboxSink, Rig, async_test
from typer.testing import CliRunner

from device_simulators.bumble_air import BumbleAir
from device_simulators.dongle import DEFAULT_ADDRESSES, run_peripheral
from device_simulators.link import WallClock
from device_simulators.peripherals import BloodPressureCuff, GlucoseMeter
from edge_agent.config import DeviceConfig
from edge_agent.devices import Clock, DeviceManager, DeviceStateStore
from edge_agent.links.bumble_link import BumbleRadio
from varde.cli import app
from varde.net import free_port

VHCI = Path("/dev/vhci")


def test_sim_peripheral_without_a_controller_says_what_to_check() -> None:
    result = CliRunner().invoke(app, ["sim", "peripheral", "--kind", "blood_pressure", "--transport", "usb:0"])
    assert result.exit_code == 1
    assert "cannot open Bluetooth transport 'usb:0'" in result.output and "udev" in result.output


def test_sim_peripheral_refuses_an_unknown_kind() -> None:
    result = CliRunner().invoke(app, ["sim", "peripheral", "--kind", "toaster", "--transport", "usb:0"])
    assert result.exit_code == 1 and "unknown device kind 'toaster'" in result.output


@async_test
async def test_virtual_cuff_on_an_hci_transport_is_read_by_a_gateway(tmp_path: Path) -> None:
    air = BumbleAir(WallClock())
    port = free_port()
    server = await open_transport(f"tcp-server:127.0.0.1:{port}")
    Controller("dongle", host_source=server.source, host_sink=server.sink, link=air.link)
    said: list[str] = []
    device = asyncio.create_task(
        run_peripheral("blood_pressure", f"tcp-client:127.0.0.1:{port}", every_s=30, say=said.append)
    )
    sink = OutboxSink(tmp_path / "outbox.sqlite")
    cuff = DEFAULT_ADDRESSES["blood_pressure"]
    manager = DeviceManager(
        [DeviceConfig(address=cuff, type="blood_pressure_monitor")],
        gateway_id=GW,
        patient_timezone=TZ,
        sink=sink,
        radio_factory=lambda: BumbleRadio(air.dongle().open),
        state=DeviceStateStore(None),
        clock=Clock(),
        timing=FAST,
        rng=random.Random(1),
    )
    await manager.start()
    try:
        while len(sink.stored()) < 4:
            await asyncio.sleep(0.05)
        assert [r["kind"] for r in sink.stored()] == ["bp_systolic", "bp_diastolic", "bp_mean", "pulse_rate"]
        assert said[0].startswith(f"UA-651BLE (blood_pressure) at {cuff} on tcp-client")
        assert said[1].startswith("measured blood pressure ")
    finally:
        await manager.stop()
        device.cancel()
        with suppress(asyncio.CancelledError):
            await device
        await server.close()
        sink.close()


def _vhci_missing() -> str | None:
    if not VHCI.exists():
        return "the kernel offers no VHCI (/dev/vhci; modprobe hci_vhci): bleak through BlueZ needs a virtual adapter"
    if not os.access(VHCI, os.R_OK | os.W_OK):
        return "/dev/vhci is not readable and writable by this user"
    if shutil.which("bluetoothctl") is None:
        return "BlueZ (bluetoothd, bluetoothctl) is not installed"
    state = subprocess.run(["bluetoothctl", "--timeout", "2", "list"], capture_output=True, text=True, check=False)
    if state.returncode != 0:
        return f"bluetoothd does not answer on D-Bus: {state.stderr.strip() or state.returncode}"
    return None


@pytest.mark.skipif(_vhci_missing() is not None, reason=_vhci_missing() or "")
@async_test
async def test_bleak_link_through_bluez_reads_a_virtual_cuff_over_vhci(tmp_path: Path) -> None:
    from edge_agent.links.bleak_link import BleakRadio

    before = set(os.listdir("/sys/class/bluetooth"))
    rig = Rig(tmp_path, link="bumble")
    assert isinstance(rig.air, BumbleAir)
    vhci = await open_transport("vhci")
    Controller("bluez", host_source=vhci.source, host_sink=vhci.sink, link=rig.air.link)
    for _ in range(100):
        if added := sorted(set(os.listdir("/sys/class/bluetooth")) - before):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("BlueZ did not create an adapter for the VHCI controller")
    subprocess.run(["btmgmt", "--index", added[0].removeprefix("hci"), "power", "on"], check=False, timeout=10)
    cuff = BloodPressureCuff(rig.air, "C0:DE:00:00:00:01")
    rig.pair(cuff)
    rig.radio = BleakRadio(adapter=added[0])
    try:
        await rig.start()
        cuff.measure(133, 84, pulse=66)
        await rig.until(lambda: len(rig.sink.stored()) == 4, timeout_s=15)
        assert [r["value"] for r in rig.sink.stored()][:2] == [133.0, 84.0]
    finally:
        await rig.stop()
        await vhci.close()


@async_test
async def test_gateway_on_the_bumble_backend_pairs_a_passkey_meter_and_keeps_the_bond_on_disk(tmp_path: Path) -> None:
    air = BumbleAir(WallClock())
    port = free_port()
    server = await open_transport(f"tcp-server:127.0.0.1:{port}")
    Controller("dongle", host_source=server.source, host_sink=server.sink, link=air.link)
    meter = GlucoseMeter(air, "A4:C1:38:00:00:05", passkey="246810")
    meter.measure(5.0)
    meter.measure(6.0)
    sink = OutboxSink(tmp_path / "outbox.sqlite")
    keys = tmp_path / "bumble-keys.json"
    radio = BumbleRadio.on_transport(f"tcp-client:127.0.0.1:{port}", keys=keys)
    manager = DeviceManager(
        [DeviceConfig(address=meter.address, type="glucose_meter", bond=True, passkey="246810")],
        gateway_id=GW,
        patient_timezone=TZ,
        sink=sink,
        radio_factory=lambda: radio,
        state=DeviceStateStore(None),
        clock=Clock(),
        timing=FAST,
        rng=random.Random(1),
    )
    await manager.start()
    try:
        while len(sink.stored()) < 2:
            await asyncio.sleep(0.05)
        assert [r["value"] for r in sink.stored()] == [5.0, 6.0]
        identity = (tmp_path / "bumble-keys.json.address").read_text().strip()
        assert meter.bonds == {identity}
        assert meter.address in keys.read_text(), "the bond is in the gateway's key file"
    finally:
        await manager.stop()
        await server.close()
        sink.close()
