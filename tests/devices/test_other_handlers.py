"""Oximeter, scale, thermometer and heart-rate strap handlers against their virtual devices."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from device_fixtures import FAST, Rig, async_test

from device_simulators.link import CCCD_INDICATE, CCCD_NOTIFY
from device_simulators.peripherals import HeartRateStrap, PulseOximeter, Thermometer, WeightScale
from edge_agent.gatt.readings import TIME_FROM_GATEWAY


@async_test
async def test_spot_check_oximeter_readings_are_indicated_and_carry_status_flags(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    oximeter = PulseOximeter(rig.air, "A4:C1:38:00:00:02")
    rig.pair(oximeter)
    await rig.start()
    oximeter.measure(94, 81, measurement_status=("validated_data",), at=datetime(2026, 11, 21, 9, 58))
    oximeter.measure(97, 70, measurement_status=("invalid_measurement",))
    await rig.settle()
    assert rig.kinds() == [("spo2", 94.0, "%"), ("pulse_rate", 81.0, "/min")]
    assert {r["measured_at"] for r in rig.sink.stored()} == {"2026-11-21T08:58:00Z"}
    assert all(r["flags"] == ["validated_data"] for r in rig.sink.stored())
    assert oximeter.memory == [] and not oximeter.advertising
    await rig.stop()


@async_test
async def test_continuous_oximeter_streams_notifications_while_connected(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    oximeter = PulseOximeter(rig.air, "A4:C1:38:00:00:02", continuous=True)
    rig.pair(oximeter)
    manager = await rig.start()
    oximeter.measure(95, 75)
    await rig.until(lambda: len(rig.sink.stored()) == 2)
    connection = oximeter.connection
    assert connection is not None
    assert connection.cccd == {0x2A5F: CCCD_NOTIFY, 0x2A5E: CCCD_INDICATE}
    for spo2, pulse in ((96, 74), (95, 76), (93, 80)):
        rig.clock.advance(1)
        assert oximeter.stream(spo2, pulse)
        await rig.until(lambda n=len(rig.sink.stored()): len(rig.sink.stored()) == n + 2)
    assert manager.devices[oximeter.address].busy, "the session stays open while values flow"
    oximeter.hang()  # the finger comes out and the oximeter switches off mid-link
    await rig.settle()
    values = [r["value"] for r in rig.sink.stored()]
    assert values == [95.0, 75.0, 96.0, 74.0, 95.0, 76.0, 93.0, 80.0]
    assert [r["kind"] for r in rig.sink.stored()] == ["spo2", "pulse_rate"] * 4
    assert all(TIME_FROM_GATEWAY in r["flags"] for r in rig.sink.stored()[2:])
    assert len({r["id"] for r in rig.sink.stored()}) == 8
    await rig.stop()


@pytest.mark.parametrize(
    ("unit", "weight", "kg"),
    [("kg", 82.35, 82.35), ("[lb_av]", 180.2, 180.2 * 0.45359237)],
)
def test_scale_weight_arrives_in_kg_from_either_unit_system(
    tmp_path: Path, unit: str, weight: float, kg: float, link: str
) -> None:
    @async_test
    async def scenario() -> None:
        rig = Rig(tmp_path, link=link)
        scale = WeightScale(rig.air, "A4:C1:38:00:00:03", unit=unit)  # type: ignore[arg-type]
        rig.pair(scale)
        await rig.start()
        scale.measure(weight)
        await rig.settle()
        [reading] = rig.sink.stored()
        assert (reading["kind"], reading["unit"]) == ("body_weight", "kg")
        assert reading["value"] == pytest.approx(kg, abs=1e-9)
        assert scale.connection is None and scale.memory == []
        await rig.stop()

    scenario()


@async_test
async def test_unsuccessful_weighing_stores_nothing(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    scale = WeightScale(rig.air, "A4:C1:38:00:00:03")
    rig.pair(scale)
    await rig.start()
    scale.measure(None)
    scale.measure(79.5)
    await rig.settle()
    assert rig.kinds() == [("body_weight", 79.5, "kg")]
    await rig.stop()


@async_test
async def test_fahrenheit_thermometer_reading_arrives_in_celsius_with_its_site(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    thermometer = Thermometer(rig.air, "A4:C1:38:00:00:04", unit="[degF]", site="tympanum")
    rig.pair(thermometer)
    await rig.start()
    thermometer.measure(100.4)
    await rig.settle()
    [reading] = rig.sink.stored()
    assert (reading["kind"], reading["unit"], reading["flags"]) == ("body_temperature", "Cel", ["site_tympanum"])
    assert reading["value"] == pytest.approx(38.0)
    await rig.stop()


@async_test
async def test_heart_rate_strap_notifications_become_readings_until_it_is_taken_off(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    strap = HeartRateStrap(rig.air, "A4:C1:38:00:00:06", battery=55)
    rig.pair(strap)
    manager = await rig.start()
    strap.wear()
    await rig.until(lambda: strap.connection is not None and bool(strap.connection.cccd))
    assert strap.connection is not None and strap.connection.cccd == {0x2A37: CCCD_NOTIFY}
    for rate in (62, 64, 310):
        rig.clock.advance(1)
        strap.beat(rate, rr_intervals=(0.95,))
        await rig.flush()  # delivered (and timed by the gateway) before the next beat
    rig.clock.advance(1)
    strap.beat(70, sensor_contact=False)
    await rig.flush()
    strap.take_off()
    await rig.settle()
    assert [(r["kind"], r["value"]) for r in rig.sink.stored()] == [("heart_rate", 62.0), ("heart_rate", 64.0)]
    runtime = manager.devices[strap.address]
    assert runtime.last_report is not None
    assert runtime.last_report.readings_rejected == 1, "310 /min is outside the plausible 20–300"
    assert rig.sink.battery == {strap.address: 55}
    assert strap.clock_writes == 0
    await rig.stop()


@async_test
async def test_strap_that_stops_sending_is_disconnected_after_the_stream_idle_time(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    strap = HeartRateStrap(rig.air, "A4:C1:38:00:00:06")
    rig.pair(strap)
    manager = await rig.start()
    runtime = manager.devices[strap.address]
    strap.wear()
    await rig.until(lambda: strap.connection is not None and bool(strap.connection.cccd))
    await rig.until(lambda: runtime.last_report is not None, timeout_s=FAST.stream_idle_s * 10)
    assert runtime.last_error is None and runtime.last_report is not None
    assert runtime.last_report.readings_added == 0, "the gateway ended the silent session itself"
    # A worn strap keeps advertising: the in-process medium announces it once, the Bumble air keeps putting it on
    # the air, so there the gateway takes it back at once (as a real strap would be).
    strap.take_off()
    await rig.settle()
    assert strap.connection is None and not runtime.busy
    await rig.stop()
