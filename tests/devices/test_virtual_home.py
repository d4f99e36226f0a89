"""The GATT path of a simulated home: scenario acts measured on virtual devices and read by the edge's own device
manager give the readings the fast path (`home.readings_of`) predicts, with the model the devices report."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

import pytest
from device_fixtures import FAST, GW, START, TZ, OutboxSink, Rig, async_test, make_air, make_radio

from device_simulators.bumble_air import BumbleAir
from device_simulators.encoders import encode_temperature_measurement, encode_weight_measurement
from device_simulators.home import CLOCK_CORRECTED, DEVICE_MODELS, home_devices, readings_of
from device_simulators.link import SimClock, WallClock
from device_simulators.peripherals import BloodPressureCuff
from device_simulators.physiology import MeasurementAct, PatientModel, Protocol, devices_for, with_values
from device_simulators.scenarios import SCENARIOS
from device_simulators.virtual_home import VirtualHome
from edge_agent.config import DeviceConfig
from edge_agent.devices import DEVICE_CLOCK_RESET, Clock, DeviceManager, DeviceStateStore
from edge_agent.gatt import decode_temperature_measurement, decode_weight_measurement
from vitals import Kind

SEED = 4242
DAYS = 14


async def _read_through_devices(
    home: VirtualHome, acts: list[MeasurementAct], sink: OutboxSink, state: Path | None = None
) -> DeviceManager:
    clock = home.air.clock
    bumble = isinstance(home.air, BumbleAir)
    radio = make_radio(home.air, identity="00:1A:7D:DA:71:01") if bumble else None
    manager = DeviceManager(
        home.configs(),
        gateway_id=GW,
        patient_timezone=TZ,
        sink=sink,
        radio_factory=(lambda: radio) if bumble else home.radio,
        state=DeviceStateStore(state),
        clock=Clock(wall=clock.now, monotonic=clock.monotonic),
        timing=FAST,
    )
    await manager.start()
    for act in acts:
        home.measure(act)
    for _ in range(50 if not bumble else 600):
        await asyncio.sleep(0 if not bumble else 0.05)  # over Bumble the stack runs in real time
        await manager.settle()
        if home.held() == 0 and not any(r.busy for r in manager.devices.values()):
            break
    await manager.stop()
    return manager


def _home(protocol: Protocol, link: str) -> VirtualHome:
    clock = SimClock(START)
    return VirtualHome(SEED, devices_for(protocol), timezone=TZ, clock=clock, air=make_air(link, clock))


@pytest.mark.parametrize(
    "name", ["device_clock_wrong", "hypoglycaemia", "sensor_glitches", "heart_failure_decompensation"]
)
@async_test
async def test_scenario_read_through_virtual_devices_gives_the_readings_the_fast_path_predicts(
    name: str, tmp_path: Path, link: str
) -> None:
    spec = SCENARIOS[name]
    acts = spec.generate(SEED, START - timedelta(days=DAYS + 1), DAYS)
    home = _home(spec.protocol, link)
    sink = OutboxSink(tmp_path / "outbox.sqlite")
    manager = await _read_through_devices(home, acts, sink)
    sink.close()

    refs = home_devices(SEED, devices_for(spec.protocol))
    expected = [
        r
        for act in acts
        for r in readings_of(act, gateway_id=GW, device=refs[act.device_type], patient_timezone=TZ).readings
        if r.kind != Kind.RESP_RATE  # the Pulse Oximeter Service has no field for a respiration rate
    ]
    got = sink.accepted
    assert home.held() == 0
    assert sorted((r.kind, r.value, r.measured_at) for r in got) == sorted(
        (r.kind, r.value, r.measured_at) for r in expected
    )
    # Glucose meters number their own records, so only their ids differ from the fast path's.
    assert {r.id for r in got if r.kind != Kind.GLUCOSE} == {r.id for r in expected if r.kind != Kind.GLUCOSE}
    # The model comes from the Device Information Service: the gateway's configuration has none.
    assert all(c.model is None for c in home.configs())
    assert {r.device.type: r.device.model for r in got} == {t: DEVICE_MODELS[t] for t in {r.device.type for r in got}}
    corrected = {r.id for r in got if CLOCK_CORRECTED in r.flags}
    assert corrected == {r.id for r in expected if CLOCK_CORRECTED in r.flags}
    if name == "device_clock_wrong":
        reset = {r.id for r in got if DEVICE_CLOCK_RESET in r.flags}
        assert corrected and reset, "records from before and after the battery change"
        assert manager.devices[refs["blood_pressure_monitor"].address].state.clock_set_at is not None


@async_test
async def test_a_pound_scale_and_fahrenheit_thermometer_reach_the_outbox_converted_from_their_own_bytes(
    tmp_path: Path, link: str
) -> None:
    model = PatientModel.of(SEED, "general")
    at = START - timedelta(hours=2)
    weight = with_values(model.act(at, "weight_scale", "check", Random(1)), values=((Kind.BODY_WEIGHT, 80.4),))
    temperature = with_values(
        model.act(at + timedelta(minutes=5), "thermometer", "check", Random(2)),
        values=((Kind.BODY_TEMPERATURE, 37.2),),
    )
    clock = SimClock(START)
    home = VirtualHome(
        SEED, ("weight_scale", "thermometer"), timezone=TZ, clock=clock, imperial=True, air=make_air(link, clock)
    )
    sink = OutboxSink(tmp_path / "outbox.sqlite")
    await _read_through_devices(home, [weight, temperature], sink)
    sink.close()

    # 80.4 kg shows as 177.25 lb (0.01 lb steps); 37.2 °C as 99.0 °F (one decimal): the gateway converts back.
    from_scale = decode_weight_measurement(encode_weight_measurement(177.25, unit="[lb_av]")).measurements[0].value
    from_thermometer = decode_temperature_measurement(encode_temperature_measurement(99.0, unit="[degF]"))
    got = {r.kind: r.value for r in sink.accepted}
    assert got == {Kind.BODY_WEIGHT: from_scale, Kind.BODY_TEMPERATURE: from_thermometer.measurements[0].value}
    assert got[Kind.BODY_WEIGHT] == pytest.approx(80.3992, abs=1e-4)
    assert got[Kind.BODY_TEMPERATURE] == pytest.approx(37.2222, abs=1e-4)


@async_test
async def test_a_record_read_again_in_real_time_keeps_its_time_to_the_second(tmp_path: Path, link: str) -> None:
    # Real time: the device's Current Time is read a few milliseconds after the gateway took its own time. The
    # correction is whole seconds, so a record fetched again (another run, a lost outbox) has the same time and id.
    spec = SCENARIOS["stable_general"]
    acts = spec.generate(SEED, datetime.now(UTC) - timedelta(days=3), 2)
    runs = []
    for run in range(2):
        clock = WallClock()
        home = VirtualHome(SEED, devices_for(spec.protocol), timezone=TZ, clock=clock, air=make_air(link, clock))
        sink = OutboxSink(tmp_path / f"outbox-{run}.sqlite")
        await _read_through_devices(home, acts, sink)
        sink.close()
        runs.append(sorted((str(r.id), r.measured_at) for r in sink.accepted))
        await asyncio.sleep(0.0123)
    assert runs[0] == runs[1]
    assert all(at.microsecond == 0 for _, at in runs[0])
    assert len(runs[0]) == sum(len(a.values) for a in acts if a.device_type != "pulse_oximeter") + sum(
        2 for a in acts if a.device_type == "pulse_oximeter"
    )


@async_test
async def test_a_home_started_again_holds_nothing_the_gateway_already_has(tmp_path: Path, link: str) -> None:
    # The demo's second run: devices hold the same backlog again; the gateway remembers the meter's last record.
    spec = SCENARIOS["stable_diabetes"]
    acts = spec.generate(SEED, START - timedelta(days=DAYS + 1), DAYS)
    first = OutboxSink(tmp_path / "first.sqlite")
    await _read_through_devices(_home(spec.protocol, link), acts, first, tmp_path / "devices.json")
    first.close()
    again = OutboxSink(tmp_path / "again.sqlite")
    home = _home(spec.protocol, link)
    await _read_through_devices(home, acts, again, tmp_path / "devices.json")
    again.close()
    assert home.held() == 0
    glucose = [r for r in first.accepted if r.kind == Kind.GLUCOSE]
    assert glucose and not [r for r in again.accepted if r.kind == Kind.GLUCOSE]
    assert {r.id for r in again.accepted} <= {r.id for r in first.accepted}


@async_test
async def test_the_model_a_device_reports_wins_over_the_configured_name_and_is_remembered(
    tmp_path: Path, link: str
) -> None:
    rig = Rig(tmp_path, link=link)
    cuff = BloodPressureCuff(rig.air, "C4:7C:8D:6A:00:01", model="UA-651BLE")
    rig.configs.append(
        DeviceConfig(address=cuff.address, type="blood_pressure_monitor", model="A&D_UA-651_0A1B")  # advertised name
    )
    await rig.start()
    cuff.measure(128, 82, pulse=64)
    await rig.settle()
    await rig.stop()
    assert [r.device.model for r in rig.sink.accepted] == ["UA-651BLE"] * 4
    state = json.loads((tmp_path / "devices.json").read_text())
    assert state["devices"][cuff.address]["model"] == "UA-651BLE"
