"""`varde edge pair`: discover health devices by advertised service and add one to the TOML configuration."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from device_fixtures import START, async_test, make_air, make_radio

from device_simulators.link import SimClock
from device_simulators.peripherals import BloodPressureCuff, GlucoseMeter, HeartRateStrap
from edge_agent.config import ConfigError, load_config
from edge_agent.devices import Candidate, add_device, bond, discover
from edge_agent.link import Advertisement, BondingRequiredError

BASE = """# the installer's comments stay
gateway_id = "gw-0001"
patient_timezone = "Europe/Oslo"

[broker]
host = "broker.example.org"

[[devices]]
address = "A4:C1:38:00:00:01"
type = "blood_pressure_monitor"
"""


@async_test
async def test_discovery_lists_health_devices_by_service_strongest_first(link: str) -> None:
    air = make_air(link, SimClock(START))
    radio = make_radio(air)
    cuff = BloodPressureCuff(air, "A4:C1:38:00:00:01", seed=1)
    meter = GlucoseMeter(air, "A4:C1:38:00:00:05", seed=2)
    strap = HeartRateStrap(air, "A4:C1:38:00:00:06", seed=3)

    async def while_scanning(_: float) -> None:
        cuff.advertise()
        meter.advertise()
        strap.wear()
        air.broadcast(Advertisement("11:22:33:44:55:66", "TV", ("0000fe9f-0000-1000-8000-00805f9b34fb",), -40))
        if link == "bumble":
            await asyncio.sleep(0.3)  # the scan window: several advertising intervals of real time

    found = await discover(radio, duration_s=5, sleep=while_scanning)
    assert found == sorted(found, key=lambda c: (-c.rssi, c.address))
    assert {c.address: c.type for c in found} == {
        cuff.address: "blood_pressure_monitor",
        meter.address: "glucose_meter",
        strap.address: "heart_rate_monitor",
    }
    assert {c.address: c.name for c in found}[meter.address] == "Accu-Chek Guide"
    assert not radio.scanning


def test_adding_a_device_appends_a_table_and_keeps_the_file_valid(tmp_path: Path) -> None:
    path = tmp_path / "varde-edge.toml"
    path.write_text(BASE)
    meter = Candidate("A4:C1:38:00:00:05", "glucose_meter", 'Accu-Chek "Guide"', -60)
    config = add_device(path, meter, passkey="012345")
    assert path.read_text().startswith("# the installer's comments stay\n")
    added = load_config(path).devices[-1]
    assert config.devices[-1] == added
    assert (added.address, added.type, added.model, added.bond, added.passkey) == (
        "A4:C1:38:00:00:05",
        "glucose_meter",
        'Accu-Chek "Guide"',
        True,
        "012345",
    )
    scale = Candidate("A4:C1:38:00:00:03", "weight_scale", None, -70)
    assert add_device(path, scale).devices[-1].bond is False


def test_adding_twice_or_with_a_bad_passkey_is_refused_and_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "varde-edge.toml"
    path.write_text(BASE)
    with pytest.raises(ConfigError, match="already configured"):
        add_device(path, Candidate("A4:C1:38:00:00:01", "blood_pressure_monitor", None, -50))
    with pytest.raises(ConfigError, match="six digits"):
        add_device(path, Candidate("A4:C1:38:00:00:05", "glucose_meter", None, -50), passkey="12")
    assert path.read_text() == BASE


@async_test
async def test_bond_pairs_once_with_the_passkey(link: str) -> None:
    air = make_air(link, SimClock(START))
    radio = make_radio(air)
    meter = GlucoseMeter(air, "A4:C1:38:00:00:05", passkey="424242")
    meter.measure(5.0)
    with pytest.raises(BondingRequiredError):
        await bond(radio.link(meter.address), passkey="999999")
    assert meter.connection is None
    meter.advertise()
    await bond(radio.link(meter.address), passkey="424242")
    assert meter.bonds == {radio.identity} and meter.connection is None
    if link == "bumble":
        keys = await radio.device.keystore.get(meter.address)
        assert keys is not None and keys.ltk is not None and keys.ltk.authenticated, "passkey entry: MITM-protected"
