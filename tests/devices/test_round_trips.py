"""Hypothesis round-trips: what a patient measures on a virtual device comes out of the handler as the same value in
the canonical unit, at the true time, whatever the device's unit and however wrong its clock was."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from fractions import Fraction

from device_fixtures import FAST, GW, START, TZ
from hypothesis import given, settings
from hypothesis import strategies as st

from device_simulators.link import Air, SimClock
from device_simulators.peripherals import BloodPressureCuff, GlucoseMeter, Peripheral, Thermometer, WeightScale
from edge_agent.config import DeviceConfig
from edge_agent.devices import Clock, DeviceManager
from edge_agent.outbox import PutResult
from vitals import Reading

TRUE_LOCAL_NOW = datetime(2026, 11, 21, 10, 0)
"""START in Oslo wall time."""


class ListSink:
    def __init__(self) -> None:
        self.readings: list[Reading] = []

    def accept(self, readings: Sequence[Reading]) -> PutResult:
        self.readings.extend(readings)
        return PutResult(added=len(readings), duplicates=0, refused=0)

    def note_device(self, address: str, *, battery_percent: int | None = None) -> None:
        return None


def _transfer(make: Callable[[Air], Peripheral], act: Callable[[Peripheral], None], **config: object) -> list[Reading]:
    async def scenario() -> list[Reading]:
        clock = SimClock(START)
        air = Air(clock)
        device = make(air)
        sink = ListSink()
        settings = {"address": device.address, "type": device.device_type} | config
        manager = DeviceManager(
            [DeviceConfig.model_validate(settings)],
            gateway_id=GW,
            patient_timezone=TZ,
            sink=sink,
            radio_factory=air.radio,
            clock=Clock(wall=clock.now, monotonic=clock.monotonic),
            timing=FAST,
        )
        await manager.start()
        act(device)
        await asyncio.sleep(0)
        await manager.settle()
        await manager.stop()
        return sink.readings

    return asyncio.run(asyncio.wait_for(scenario(), 10))


clock_errors = st.integers(min_value=-10 * 365 * 86400, max_value=5 * 365 * 86400).map(lambda s: timedelta(seconds=s))
minutes_ago = st.integers(min_value=0, max_value=7 * 24 * 60).map(lambda m: timedelta(minutes=m))


@settings(max_examples=40, deadline=None)
@given(
    systolic=st.integers(70, 250),
    gap=st.integers(10, 100),
    pulse=st.integers(30, 200),
    clock_error=clock_errors,
    ago=minutes_ago,
)
def test_blood_pressure_round_trip(systolic: int, gap: int, pulse: int, clock_error: timedelta, ago: timedelta) -> None:
    diastolic = min(200, max(30, systolic - gap))

    def measure(device: Peripheral) -> None:
        assert isinstance(device, BloodPressureCuff)
        device.measure(systolic, diastolic, pulse=pulse, at=device.clock.now() - ago)

    readings = _transfer(
        lambda air: BloodPressureCuff(air, "A4:C1:38:00:00:01", clock_start=TRUE_LOCAL_NOW + clock_error), measure
    )
    assert {r.kind: r.value for r in readings} == {
        "bp_systolic": systolic,
        "bp_diastolic": diastolic,
        "bp_mean": round(diastolic + (systolic - diastolic) / 3),
        "pulse_rate": pulse,
    }
    assert {r.measured_at for r in readings} == {START - ago}
    assert len({r.group for r in readings}) == 1


@settings(max_examples=40, deadline=None)
@given(steps=st.integers(450, 60_000), imperial=st.booleans(), clock_error=clock_errors)
def test_weight_round_trip(steps: int, imperial: bool, clock_error: timedelta) -> None:
    weight = float(Fraction(steps, 100)) if imperial else float(Fraction(steps * 5, 1000))
    expected = steps * Fraction(1, 100) * Fraction("0.45359237") if imperial else Fraction(steps * 5, 1000)

    def measure(device: Peripheral) -> None:
        assert isinstance(device, WeightScale)
        device.measure(weight)

    unit = "[lb_av]" if imperial else "kg"
    readings = _transfer(
        lambda air: WeightScale(air, "A4:C1:38:00:00:03", unit=unit, clock_start=TRUE_LOCAL_NOW + clock_error),
        measure,
    )
    [reading] = readings
    assert (reading.kind, reading.unit) == ("body_weight", "kg")
    assert abs(Fraction(reading.value) - expected) < Fraction(1, 10**9)
    assert reading.measured_at == START


@settings(max_examples=40, deadline=None)
@given(tenths=st.integers(340, 420), fahrenheit=st.booleans())
def test_temperature_round_trip(tenths: int, fahrenheit: bool) -> None:
    celsius = Fraction(tenths, 10)
    shown = float(celsius * 9 / 5 + 32) if fahrenheit else float(celsius)

    def measure(device: Peripheral) -> None:
        assert isinstance(device, Thermometer)
        device.measure(round(shown, 2))

    unit = "[degF]" if fahrenheit else "Cel"
    [reading] = _transfer(lambda air: Thermometer(air, "A4:C1:38:00:00:04", unit=unit), measure)
    assert reading.unit == "Cel"
    assert abs(reading.value - float(celsius)) < 0.01


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.integers(20, 900), min_size=1, max_size=8),
    mg_per_dl=st.booleans(),
    clock_error=clock_errors,
)
def test_glucose_records_round_trip(values: list[int], mg_per_dl: bool, clock_error: timedelta) -> None:
    def measure(device: Peripheral) -> None:
        assert isinstance(device, GlucoseMeter)
        for i, value in enumerate(values):
            shown = value if mg_per_dl else round(value / 18, 1)  # meters show mmol/L to one decimal
            device.measure(shown, at=device.clock.now() - timedelta(hours=len(values) - i))

    unit = "mg/dL" if mg_per_dl else "mmol/L"
    readings = _transfer(
        lambda air: GlucoseMeter(
            air, "A4:C1:38:00:00:05", unit=unit, bonding=False, clock_start=TRUE_LOCAL_NOW + clock_error
        ),
        measure,
    )
    expected = [v / 18 if mg_per_dl else round(v / 18, 1) for v in values]
    assert len(readings) == len(values)
    assert all(abs(r.value - e) < 1e-9 for r, e in zip(readings, expected, strict=True))
    assert [r.measured_at for r in readings] == [START - timedelta(hours=len(values) - i) for i in range(len(values))]
    assert len({r.id for r in readings}) == len(values)
    assert all(r.measured_at.utcoffset() == timedelta(0) for r in readings)
