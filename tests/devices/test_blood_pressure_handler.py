"""The blood pressure handler against the virtual cuff: readings, flags, clock correction, lost links, bonding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from device_fixtures import FAST, Rig, async_test

from device_simulators.peripherals import BloodPressureCuff
from edge_agent.devices import DEVICE_CLOCK_CORRECTED
from edge_agent.link import BondingRequiredError, ConnectTimeoutError

CUFF = "A4:C1:38:00:00:01"


@async_test
async def test_cuff_inflation_arrives_as_four_grouped_readings_in_mmhg_with_status_flags(
    tmp_path: Path, link: str
) -> None:
    rig = Rig(tmp_path, link=link)
    cuff = BloodPressureCuff(rig.air, CUFF, battery=77)
    rig.pair(cuff)
    await rig.start()
    record = cuff.measure(142, 91, pulse=88, status=("irregular_pulse",))
    await rig.settle()
    stored = rig.sink.stored()
    assert [(r["kind"], r["value"], r["unit"]) for r in stored] == [
        ("bp_systolic", 142.0, "mm[Hg]"),
        ("bp_diastolic", 91.0, "mm[Hg]"),
        ("bp_mean", 108.0, "mm[Hg]"),
        ("pulse_rate", 88.0, "/min"),
    ]
    assert {r["group"] for r in stored} == {stored[0]["group"]}
    assert all(r["flags"] == ["irregular_pulse"] for r in stored)
    assert all(r["device"] == {"address": CUFF, "type": "blood_pressure_monitor", "model": "UA-651BLE"} for r in stored)
    # the cuff's clock is right (Oslo local), so measured_at is its time in UTC
    expected = record.at.replace(tzinfo=UTC) - timedelta(hours=1)
    assert {datetime.fromisoformat(r["measured_at"]) for r in stored} == {expected}
    assert rig.sink.battery == {CUFF: 77}
    assert cuff.clock_writes == 0, "a clock within tolerance is left alone"
    await rig.stop()


@async_test
async def test_kpa_cuff_readings_are_converted_to_mmhg(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    cuff = BloodPressureCuff(rig.air, CUFF, unit="kPa")
    rig.pair(cuff)
    await rig.start()
    cuff.measure(16.0, 10.7, mean=12.5)
    await rig.settle()
    values = {r["kind"]: r["value"] for r in rig.sink.stored()}
    assert values["bp_systolic"] == pytest.approx(120.01, abs=0.01)
    assert values["bp_diastolic"] == pytest.approx(80.26, abs=0.01)
    assert values["bp_mean"] == pytest.approx(93.76, abs=0.01)
    await rig.stop()


@async_test
async def test_cuff_clock_wrong_by_years_is_set_and_its_readings_are_corrected(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    cuff = BloodPressureCuff(rig.air, CUFF, clock_start=datetime(2019, 3, 1, 8, 0))
    rig.pair(cuff)
    await rig.start()
    # the patient measured five minutes ago, at 09:55 Oslo time; the cuff stamped it 2019-03-01 07:55
    cuff.measure(141, 91, pulse=70, at=cuff.clock.now() - timedelta(minutes=5))
    await rig.settle()
    stored = rig.sink.stored()
    assert {datetime.fromisoformat(r["measured_at"]) for r in stored} == {datetime(2026, 11, 21, 8, 55, tzinfo=UTC)}
    assert all(DEVICE_CLOCK_CORRECTED in r["flags"] for r in stored)
    assert cuff.clock_writes == 1
    assert cuff.clock.now() == datetime(2026, 11, 21, 10, 0), "the cuff now keeps Oslo wall time"

    rig.clock.advance(3600)
    cuff.measure(135, 85, pulse=68)
    await rig.settle()
    later = rig.sink.stored()[len(stored) :]
    assert {datetime.fromisoformat(r["measured_at"]) for r in later} == {datetime(2026, 11, 21, 10, 0, tzinfo=UTC)}
    assert all(DEVICE_CLOCK_CORRECTED not in r["flags"] for r in later)
    assert cuff.clock_writes == 1
    await rig.stop()


@async_test
async def test_intermediate_cuff_pressure_is_subscribed_as_notifications_and_stores_nothing(
    tmp_path: Path, link: str
) -> None:
    rig = Rig(tmp_path, link=link)
    cuff = BloodPressureCuff(rig.air, CUFF, intermediate_cuff=True)
    rig.pair(cuff)
    await rig.start()
    cuff.measure(128, 84, pulse=66, live=True)
    await rig.settle()
    assert cuff.values_sent == 5, "four cuff-pressure notifications, then the measurement"
    assert [r["kind"] for r in rig.sink.stored()] == ["bp_systolic", "bp_diastolic", "bp_mean", "pulse_rate"]
    await rig.stop()


@async_test
async def test_link_lost_mid_transfer_is_retried_and_gives_the_rest_without_duplicates(
    tmp_path: Path, link: str
) -> None:
    rig = Rig(tmp_path, link=link)
    cuff = BloodPressureCuff(rig.air, CUFF)
    rig.pair(cuff)
    manager = await rig.start()
    cuff.drop_after(2)
    for i in range(4):
        cuff.measure(120 + i, 80, pulse=60 + i, at=datetime(2026, 11, 21, 7, i))
    await rig.settle()
    assert len(rig.sink.stored()) == 8, "two records arrived before the link was lost"
    assert len(cuff.memory) == 3, "the second was never confirmed, so the cuff still holds it"

    rig.clock.advance(FAST.after_success_s + 1)
    cuff.advertise()
    await rig.settle()
    stored = rig.sink.stored()
    assert sorted({r["value"] for r in stored if r["kind"] == "bp_systolic"}) == [120.0, 121.0, 122.0, 123.0]
    assert len(stored) == 16 and len({r["id"] for r in stored}) == 16
    runtime = manager.devices[CUFF]
    assert runtime.last_report is not None and runtime.last_report.readings_duplicate == 4
    await rig.stop()


@async_test
async def test_refused_connection_backs_off_and_the_next_advertisement_after_it_succeeds(
    tmp_path: Path, link: str
) -> None:
    rig = Rig(tmp_path, link=link)
    cuff = BloodPressureCuff(rig.air, CUFF)
    rig.pair(cuff)
    manager = await rig.start()
    cuff.refuse_next(1, ConnectTimeoutError)
    cuff.measure(120, 80)
    await rig.settle()
    runtime = manager.devices[CUFF]
    assert isinstance(runtime.last_error, ConnectTimeoutError)
    assert 1.6 <= runtime.not_before - rig.clock.monotonic() <= 2.4, "ConnectTimeoutError starts at 2 s ± 20 %"
    cuff.advertise()
    await rig.settle()
    assert runtime.sessions == 1, "advertisements during the back-off start nothing"
    rig.clock.advance(3)
    cuff.advertise()
    await rig.settle()
    assert runtime.sessions == 2 and runtime.last_error is None
    assert len(rig.sink.stored()) == 3
    await rig.stop()


@async_test
async def test_cuff_that_requires_bonding_refuses_until_the_gateway_bonds(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path / "unbonded", link=link)
    cuff = BloodPressureCuff(rig.air, CUFF, bonding=True, model="BP7000")
    rig.pair(cuff, bond=False)
    manager = await rig.start()
    cuff.measure(150, 95)
    await rig.settle()
    runtime = manager.devices[CUFF]
    assert isinstance(runtime.last_error, BondingRequiredError)
    assert "bond = true" in str(runtime.last_error)
    assert runtime.not_before - rig.clock.monotonic() >= 240, "a missing bond needs a person: long back-off"
    assert rig.sink.stored() == [] and len(cuff.memory) == 1
    await rig.stop()

    fixed = rig.another_gateway(tmp_path / "bonded", identity="00:1A:7D:DA:71:02")
    fixed.pair(cuff, bond=True)
    await fixed.start()
    cuff.advertise()
    await fixed.settle()
    assert [r["value"] for r in fixed.sink.stored()][:2] == [150.0, 95.0]
    assert "00:1A:7D:DA:71:02" in cuff.bonds
    await fixed.stop()
