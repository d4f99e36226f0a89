"""The device manager: back-off by error class, scanner watchdog and adapter recovery, status for the gateway."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from device_fixtures import FAST, GW, TZ, Rig, async_test, make_air, make_radio

from device_simulators.link import SimClock
from device_simulators.peripherals import BloodPressureCuff, GlucoseMeter, HeartRateStrap, Thermometer, WeightScale
from edge_agent.agent import Agent
from edge_agent.config import EdgeConfig
from edge_agent.devices import Clock, DeviceManager, state_path
from edge_agent.link import OutOfConnectionSlotsError

CUFF = "A4:C1:38:00:00:01"
STRAP = "A4:C1:38:00:00:06"


@async_test
async def test_out_of_connection_slots_backs_off_then_connects_once_a_slot_is_free(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, slots=1, link=link)
    strap = HeartRateStrap(rig.air, STRAP)
    cuff = BloodPressureCuff(rig.air, CUFF)
    rig.pair(strap)
    rig.pair(cuff)
    manager = await rig.start()
    strap.wear()
    await rig.until(lambda: strap.connection is not None and bool(strap.connection.cccd))
    cuff.measure(133, 86)
    runtime = manager.devices[CUFF]
    await rig.until(lambda: runtime.last_error is not None)
    assert isinstance(runtime.last_error, OutOfConnectionSlotsError)
    assert 4.0 <= runtime.not_before - rig.clock.monotonic() <= 6.0, "slots back-off starts at 5 s ± 20 %"
    cuff.advertise()
    await rig.flush()
    assert runtime.sessions == 1
    strap.take_off()
    rig.clock.advance(6)
    cuff.advertise()
    await rig.settle()
    assert runtime.sessions == 2 and runtime.last_error is None
    assert [r["kind"] for r in rig.sink.stored()] == ["bp_systolic", "bp_diastolic", "bp_mean"]
    await rig.stop()


@async_test
async def test_scanner_gone_quiet_is_restarted_and_hears_devices_again(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    cuff = BloodPressureCuff(rig.air, CUFF)
    rig.pair(cuff)
    manager = await rig.start()
    rig.deafen_adapter()  # BlueZ keeps "scanning" but delivers nothing
    cuff.measure(120, 80)
    await rig.settle()
    assert rig.sink.stored() == []
    assert not await manager.check_scanner(), "not quiet for long enough yet"
    rig.clock.advance(FAST.quiet_restart_s + 1)
    assert await manager.check_scanner()
    assert manager.scanner_restarts == 1 and rig.radio.scan_starts == 2
    cuff.advertise()
    await rig.settle()
    assert len(rig.sink.stored()) == 3
    await rig.stop()


@async_test
async def test_adapter_that_disappears_is_retried_with_back_off_until_it_returns(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    cuff = BloodPressureCuff(rig.air, CUFF)
    rig.pair(cuff)
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        rig.clock.advance(seconds)
        await asyncio.sleep(0.001)

    manager = DeviceManager(
        rig.configs,
        gateway_id=GW,
        patient_timezone=TZ,
        sink=rig.sink,
        radio_factory=rig._radio,
        clock=Clock(wall=rig.clock.now, monotonic=rig.clock.monotonic, sleep=fake_sleep),
        timing=FAST,
    )
    rig.unplug_adapter()
    task = asyncio.create_task(manager.run())
    while len(waits) < 3:
        await asyncio.sleep(0.001)
    assert manager.radio is None
    assert 8.0 <= waits[0] <= 12.0 and waits[1] > waits[0], "AdapterUnavailableError: 10 s, growing"
    rig.plug_in_adapter()
    while manager.radio is None:
        await asyncio.sleep(0.001)
    cuff.measure(119, 79)
    await rig.until(lambda: len(rig.sink.stored()) == 3)
    await manager.settle()
    assert len(rig.sink.stored()) == 3
    assert rig.radios_made >= 4, "each retry asks the factory for a fresh radio"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not rig.radio.scanning, "cancelling the manager stops the scan"
    rig.sink.close()


@async_test
async def test_hung_device_is_silent_until_power_cycled_and_its_reset_clock_is_corrected(
    tmp_path: Path, link: str
) -> None:
    rig = Rig(tmp_path, link=link)
    scale = WeightScale(rig.air, "A4:C1:38:00:00:03")
    rig.pair(scale)
    manager = await rig.start()
    scale.hang()
    scale.measure(80.0)  # 10:00 Oslo, stamped by a correct clock, then stuck in the hung scale
    await rig.settle()
    assert rig.sink.stored() == [] and manager.devices[scale.address].sessions == 0
    rig.clock.advance(600)
    scale.power_cycle()  # batteries out and in: the clock restarts at 2000-01-01 00:00
    scale.measure(80.5)
    await rig.settle()
    before, after = rig.sink.stored()
    assert (before["value"], before["measured_at"]) == (80.0, "2026-11-21T09:00:00Z")
    assert before["flags"] == ["device_clock_reset"], "stamped before the reset: its own stamp is kept"
    assert (after["value"], after["measured_at"]) == (80.5, "2026-11-21T09:10:00Z")
    assert after["flags"] == ["device_clock_corrected"], "stamped 2000-01-01 00:00, moved to when it happened"
    assert scale.clock.now() == datetime(2026, 11, 21, 10, 10)
    await rig.stop()


@async_test
async def test_battery_and_last_seen_reach_the_gateway_status(tmp_path: Path, link: str) -> None:
    config = EdgeConfig.model_validate(
        {
            "gateway_id": GW,
            "patient_timezone": TZ,
            "broker": {"host": "127.0.0.1", "port": 1},
            "outbox": {"path": str(tmp_path / "state" / "outbox.sqlite")},
            "devices": [
                {"address": CUFF, "type": "blood_pressure_monitor", "model": "UA-651BLE"},
                {"address": "A4:C1:38:00:00:09", "type": "thermometer"},
            ],
        }
    )
    agent = Agent(config, radio_factory=None)
    air = make_air(link, SimClock())
    radio = make_radio(air)
    cuff = BloodPressureCuff(air, CUFF, battery=42)
    manager = DeviceManager.for_config(config, sink=agent, radio_factory=lambda: radio)
    assert manager.store.path == state_path(config) == tmp_path / "state" / "devices.json"
    assert manager.timing.quiet_restart_s == config.ble.quiet_restart_s
    await manager.start()
    cuff.measure(124, 78)
    while agent.outbox.depth < 3 or any(r.busy for r in manager.devices.values()):
        await asyncio.sleep(0.01)
    status = {d.address: d for d in agent.status().devices}
    assert status[CUFF].battery_percent == 42 and status[CUFF].last_seen is not None
    assert status["A4:C1:38:00:00:09"].last_seen is None
    assert agent.outbox.depth == 3
    await manager.stop()
    saved = json.loads(state_path(config).read_text())["devices"][CUFF]
    assert saved["battery_percent"] == 42 and saved["last_seen"] is not None
    agent.outbox.close()
    agent.plans.close()


@async_test
async def test_glucose_cursor_survives_a_gateway_restart(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    meter = GlucoseMeter(rig.air, "A4:C1:38:00:00:05", bonding=False)
    rig.pair(meter)
    await rig.start()
    meter.measure(5.0)
    meter.measure(5.5)
    await rig.settle()
    await rig.manager.stop()  # type: ignore[union-attr]

    rig.clock.advance(600)
    await rig.start()  # a new manager reads devices.json
    assert rig.manager is not None and rig.manager.devices[meter.address].state.last_sequence == 2
    meter.measure(6.0)
    await rig.settle()
    assert meter.requests[-1].min_sequence == 3
    assert [r["value"] for r in rig.sink.stored()] == [5.0, 5.5, 6.0]
    await rig.stop()


@async_test
async def test_unpaired_devices_are_ignored(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    neighbour = BloodPressureCuff(rig.air, "A4:C1:38:00:00:77")
    await rig.start()
    neighbour.measure(150, 90)
    await rig.settle()
    assert neighbour.connections_accepted == 0 and rig.sink.sightings == []
    await rig.stop()


@async_test
async def test_unexpected_handler_failure_is_contained_and_backed_off(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    cuff = BloodPressureCuff(rig.air, CUFF)
    rig.pair(cuff)
    manager = await rig.start()
    runtime = manager.devices[CUFF]

    async def broken(*_: object) -> None:
        raise RuntimeError("handler bug")

    runtime.handler.transfer = broken  # type: ignore[method-assign, assignment]
    cuff.measure(120, 80)
    await rig.settle()
    assert runtime.last_error is not None and "RuntimeError" in str(runtime.last_error)
    assert runtime.not_before > rig.clock.monotonic()
    assert cuff.connection is None, "the link is closed even when the handler fails"
    await rig.stop()


@async_test
async def test_summer_time_device_clock_is_moved_by_two_hours(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, start=datetime(2026, 7, 1, 6, 30, tzinfo=UTC), link=link)
    thermometer = Thermometer(rig.air, "A4:C1:38:00:00:04")
    rig.pair(thermometer)
    await rig.start()
    record = thermometer.measure(37.2)
    await rig.settle()
    assert record.at == datetime(2026, 7, 1, 8, 30), "Oslo wall time in summer"
    assert [r["measured_at"] for r in rig.sink.stored()] == ["2026-07-01T06:30:00Z"]
    await rig.stop()


@async_test
async def test_the_agent_runs_the_paired_devices_through_its_radio(tmp_path: Path, link: str) -> None:
    config = EdgeConfig.model_validate(
        {
            "gateway_id": GW,
            "patient_timezone": TZ,
            "broker": {"host": "127.0.0.1", "port": 9, "keepalive_s": 5},
            "outbox": {"path": str(tmp_path / "outbox.sqlite")},
            "devices": [{"address": CUFF, "type": "blood_pressure_monitor"}],
        }
    )
    air = make_air(link, SimClock())
    radio = make_radio(air)
    cuff = BloodPressureCuff(air, CUFF, battery=63)
    agent = Agent(config, radio_factory=lambda ble: radio)
    run = asyncio.create_task(agent.run())
    while not radio.scanning:
        await asyncio.sleep(0.01)
    assert agent.devices is not None
    cuff.measure(118, 76, pulse=59)
    while agent.outbox.depth < 4 or any(r.busy for r in agent.devices.devices.values()):
        await asyncio.sleep(0.01)
    assert agent.outbox.depth == 4, "committed to the outbox while the broker is unreachable"
    assert {d.address: d.battery_percent for d in agent.status().devices} == {CUFF: 63}
    agent.request_stop()
    assert await run == 0
    assert not radio.scanning
