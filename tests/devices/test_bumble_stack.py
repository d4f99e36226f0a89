"""What only a real Bluetooth stack shows: the GATT tables the virtual devices declare, the default ATT MTU with
long values read in pieces, an indication confirmed too late, and bond keys that no longer match (Bumble link)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from bumble.gatt import Characteristic
from bumble.keys import PairingKeys
from device_fixtures import FAST, Rig, async_test, make_air, make_radio

from device_simulators.bumble_air import BumbleAir
from device_simulators.peripherals import (
    BloodPressureCuff,
    GlucoseMeter,
    HeartRateStrap,
    Peripheral,
    PulseOximeter,
    Thermometer,
    WeightScale,
)
from edge_agent.link import ConnectionDroppedError, sig_uuid
from edge_agent.links.bumble_link import BumbleLink

R, W, N, IND = "read", "write", "notify", "ind"
COMMON = {
    0x180A: {0x2A24: {R}, 0x2A29: {R}},
    0x180F: {0x2A19: {R, N}},
}
CURRENT_TIME = {0x1805: {0x2A2B: {R, W, N}}}
DECLARED: list[tuple[type[Peripheral], dict[str, Any], dict[int, dict[int, set[str]]]]] = [
    (
        BloodPressureCuff,
        {"intermediate_cuff": True},
        {0x1810: {0x2A35: {IND}, 0x2A36: {N}, 0x2A49: {R}}, **CURRENT_TIME},
    ),
    (PulseOximeter, {"continuous": True}, {0x1822: {0x2A5E: {IND}, 0x2A5F: {N}, 0x2A60: {R}}, **CURRENT_TIME}),
    (WeightScale, {}, {0x181D: {0x2A9D: {IND}, 0x2A9E: {R}}, **CURRENT_TIME}),
    (Thermometer, {}, {0x1809: {0x2A1C: {IND}, 0x2A1D: {R}}, **CURRENT_TIME}),
    (
        GlucoseMeter,
        {"passkey": "246810"},
        {0x1808: {0x2A18: {N}, 0x2A34: {N}, 0x2A51: {R}, 0x2A52: {W, IND}}, **CURRENT_TIME},
    ),
    (HeartRateStrap, {}, {0x180D: {0x2A37: {N}, 0x2A38: {R}}}),
]
_NAMES = {
    Characteristic.Properties.READ: R,
    Characteristic.Properties.WRITE: W,
    Characteristic.Properties.NOTIFY: N,
    Characteristic.Properties.INDICATE: IND,
}


async def _connected(air: BumbleAir, device: Peripheral) -> BumbleLink:
    radio = make_radio(air)
    device.advertise()
    link = radio.link(device.address)
    assert isinstance(link, BumbleLink)
    await link.connect(timeout_s=5)
    return link


@pytest.mark.parametrize(("kind", "options", "expected"), DECLARED, ids=[d[0].__name__ for d in DECLARED])
def test_each_virtual_device_declares_the_sig_services_and_properties_of_its_kind(
    kind: type[Peripheral], options: dict[str, Any], expected: dict[int, dict[int, set[str]]]
) -> None:
    @async_test
    async def scenario() -> None:
        air = make_air("bumble")
        assert isinstance(air, BumbleAir)
        device = kind(air, "A4:C1:38:00:00:09", **options)  # type: ignore[call-arg]
        link = await _connected(air, device)
        assert link.connection is not None
        peer = link._peer
        assert peer is not None
        declared: dict[int, dict[int, set[str]]] = {}
        for service in peer.services:
            number = int(service.uuid.to_hex_str(), 16)
            if number in (0x1800, 0x1801):  # GAP and GATT, every stack's own
                continue
            declared[number] = {}
            for characteristic in service.characteristics:
                props = {name for flag, name in _NAMES.items() if characteristic.properties & flag}
                declared[number][int(characteristic.uuid.to_hex_str(), 16)] = props
        assert declared == {**expected, **COMMON}
        await link.disconnect()

    scenario()


@async_test
async def test_default_mtu_is_23_and_a_long_value_arrives_whole_in_read_blob_pieces() -> None:
    air = make_air("bumble")
    assert isinstance(air, BumbleAir)
    cuff = BloodPressureCuff(air, "A4:C1:38:00:00:01", model="UA-651BLE Plus with a long model number")
    link = await _connected(air, cuff)
    assert link.connection is not None and link.connection.att_mtu == 23
    assert await link.read(sig_uuid(0x2A24)) == b"UA-651BLE Plus with a long model number"
    await link.disconnect()


@async_test
async def test_indication_confirmed_too_late_is_sent_again_and_the_reading_is_stored_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path, link="bumble")
    assert isinstance(rig.air, BumbleAir)
    cuff = BloodPressureCuff(rig.air, "A4:C1:38:00:00:01")
    cuff.confirmation_timeout_s = 0.2
    host = rig.air.hosts[cuff.address]
    host.late_confirmations, host.confirmation_delay_s = 1, 1.0  # a busy radio: the confirmation is a second late
    rig.pair(cuff)
    manager = await rig.start()
    cuff.measure(141, 92)
    await rig.settle()
    assert host.confirmations_lost == 1, "the cuff gave up waiting and ended the link"
    assert len(cuff.memory) == 1, "so it still holds the measurement"
    first = rig.sink.stored()
    assert [r["kind"] for r in first] == ["bp_systolic", "bp_diastolic", "bp_mean"], "the gateway had it already"

    rig.clock.advance(FAST.after_success_s + 1)
    cuff.advertise()
    await rig.settle()
    assert cuff.memory == []
    assert rig.sink.stored() == first, "sent twice, stored once"
    report = manager.devices[cuff.address].last_report
    assert report is not None and report.readings_duplicate == 3
    await rig.stop()


@async_test
async def test_bond_keys_that_no_longer_match_drop_the_link_then_the_gateway_pairs_afresh(tmp_path: Path) -> None:
    rig = Rig(tmp_path, link="bumble")
    assert isinstance(rig.air, BumbleAir)
    cuff = BloodPressureCuff(rig.air, "A4:C1:38:00:00:01", bonding=True)
    rig.pair(cuff, bond=True)
    manager = await rig.start()
    cuff.measure(150, 95)
    await rig.settle()
    assert len(rig.sink.stored()) == 3
    # The cuff now holds a different key for this gateway (re-paired by a service tool that reused the address).
    keystore = rig.air.hosts[cuff.address].device.keystore
    assert keystore is not None
    keys = await keystore.get(rig.radio.identity)
    assert keys is not None
    keys.ltk = PairingKeys.Key(value=secrets.token_bytes(16), authenticated=False)
    rig.clock.advance(60)
    cuff.measure(148, 94)
    await rig.settle()
    runtime = manager.devices[cuff.address]
    assert isinstance(runtime.last_error, ConnectionDroppedError), "MIC failure: the link drops during encryption"
    assert "bond" in str(runtime.last_error)
    assert await rig.radio.device.keystore.get(cuff.address) is None, "the stale bond was removed"

    rig.clock.advance(runtime.not_before - rig.clock.monotonic() + 1)
    cuff.advertise()
    await rig.settle()
    assert runtime.last_error is None
    assert [r["value"] for r in rig.sink.stored() if r["kind"] == "bp_systolic"] == [150.0, 148.0]
    await rig.stop()


@async_test
async def test_a_device_is_on_the_air_while_it_holds_a_record_and_off_once_the_gateway_has_it(tmp_path: Path) -> None:
    # `Rig.settle` ends early on a quiet air: it must not call the air quiet while a device could still be heard.
    rig = Rig(tmp_path, link="bumble")
    assert isinstance(rig.air, BumbleAir)
    cuff = BloodPressureCuff(rig.air, "A4:C1:38:00:00:01")
    rig.pair(cuff)
    assert not rig.air.on_the_air(), "nothing measured, nothing to advertise"
    await rig.start()
    cuff.measure(121, 79, pulse=60)
    assert rig.air.on_the_air(), "a fresh measurement is advertised at once"
    await rig.until(lambda: cuff.connection is not None)
    assert rig.air.on_the_air(), "connected"
    await rig.settle()
    assert [r["value"] for r in rig.sink.stored()][:2] == [121.0, 79.0]
    assert cuff.connection is None and not rig.air.on_the_air()
    await rig.stop()
