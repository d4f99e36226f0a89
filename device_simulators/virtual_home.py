"""A simulated home on the GATT path: the patient's virtual BLE devices, measured by the scenario, read by a real
edge `Agent` the way a gateway reads real devices.

The scenario decides what is measured (`MeasurementAct`); `VirtualHome.measure` puts it into the memory of the
device of that type (cuff, oximeter, scale, thermometer, glucose meter), stamped by the device's own clock and
encoded the way that device sends it. The Agent's device manager hears the advertisement on the home's own `Air`
(through `VirtualHome.radio`, its radio factory), connects, reads the model (Device Information), the battery and
the clock, subscribes, decodes, and commits readings to its outbox for the publisher. Nothing here builds a
`Reading`: only the edge's handlers do.

The scenario also owns each device's clock: before a measurement the device's clock is put where the scenario says
it is (a correct clock stays untouched; a clock reset by a battery change reads January 2000 again even if the
gateway set it since). Values a device cannot carry are not sent (an oximeter's pleth respiration rate has no
characteristic in the Pulse Oximeter Service; a weight beyond the scale's range is "measurement unsuccessful").
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from device_simulators.encoders import encode_weight_measurement
from device_simulators.home import DEVICE_MODELS, FeedStats, device_address
from device_simulators.link import Air, AirClock, VirtualRadio, WallClock
from device_simulators.peripherals import (
    BloodPressureCuff,
    GlucoseMeter,
    Peripheral,
    PulseOximeter,
    Thermometer,
    WeightScale,
)
from device_simulators.physiology import DeviceType, MeasurementAct, rng
from edge_agent.agent import Agent, Source
from edge_agent.config import BleConfig, DeviceConfig
from vitals import Kind

log = logging.getLogger(__name__)

PERIPHERALS: dict[DeviceType, type[Peripheral]] = {
    "blood_pressure_monitor": BloodPressureCuff,
    "pulse_oximeter": PulseOximeter,
    "weight_scale": WeightScale,
    "thermometer": Thermometer,
    "glucose_meter": GlucoseMeter,
}
BONDED: frozenset[DeviceType] = frozenset({"glucose_meter"})
"""Device types whose virtual devices require an encrypted link, as real glucose meters do."""
MEMORY = 2000
"""Records a cuff, scale, thermometer or oximeter keeps: enough for a backlog of weeks read in one session (a real
UA-651BLE keeps 30), so a simulated home can start with its past already measured."""
GATEWAY_RADIO = "00:1A:7D:DA:71:01"
_KG_PER_LB = 0.45359237


class VirtualHome:
    """One patient's devices on their own air (the home), in real time unless given another clock."""

    def __init__(
        self,
        seed: int,
        device_types: Iterable[DeviceType],
        *,
        timezone: str = "Europe/Oslo",
        clock: AirClock | None = None,
        imperial: bool = False,
        memory: int = MEMORY,
        air: Air | None = None,
    ) -> None:
        """`air` puts the devices on another medium (e.g. `bumble_air.BumbleAir`); its clock is then the home's."""
        self.zone = ZoneInfo(timezone)
        self.air = air or Air(clock or WallClock(), seed=seed)
        self.imperial = imperial
        self.devices: dict[DeviceType, Peripheral] = {}
        self.measured = 0
        self.not_carried = 0
        """Values measured that the device has no field for (never sent)."""
        self._radio: VirtualRadio | None = None
        for device_type in device_types:
            options: dict[str, Any] = {
                "model": DEVICE_MODELS[device_type],
                "seed": seed,
                "timezone": timezone,
                "battery": rng(seed, "battery", device_type).randint(35, 100),
            }
            if device_type != "glucose_meter":
                options["capacity"] = memory
            if imperial and device_type == "weight_scale":
                options["unit"] = "[lb_av]"
            if imperial and device_type == "thermometer":
                options["unit"] = "[degF]"
            kind = PERIPHERALS[device_type]
            self.devices[device_type] = kind(self.air, device_address(seed, device_type), **options)

    # ---- what the gateway is configured with -----------------------------------------------------------------

    def configs(self) -> list[DeviceConfig]:
        """The `[[devices]]` of the gateway, as `varde edge pair` writes them (the model comes from the device)."""
        return [DeviceConfig(address=d.address, type=t, bond=t in BONDED) for t, d in self.devices.items()]

    def radio(self, _ble: BleConfig | None = None) -> VirtualRadio:
        """The gateway's adapter in this home: the Agent's `radio_factory`."""
        if self._radio is None:
            self._radio = self.air.radio(identity=GATEWAY_RADIO)
        return self._radio

    # ---- the patient measures ---------------------------------------------------------------------------------

    def measure(self, act: MeasurementAct) -> None:
        """The act on its device: the device stores the record (stamped `act.device_time`) and advertises."""
        device = self.devices[act.device_type]
        self._set_clock(device, act)
        values: dict[Kind, float] = dict(act.values)
        self.measured += 1
        if isinstance(device, BloodPressureCuff):
            device.measure(
                values[Kind.BP_SYSTOLIC],
                values[Kind.BP_DIASTOLIC],
                mean=values.get(Kind.BP_MEAN),
                pulse=values.get(Kind.PULSE_RATE),
                at=act.device_time,
            )
        elif isinstance(device, PulseOximeter):
            device.measure(values[Kind.SPO2], values[Kind.PULSE_RATE], at=act.device_time)
            self.not_carried += int(Kind.RESP_RATE in values)
        elif isinstance(device, WeightScale):
            device.measure(_scale_reading(values[Kind.BODY_WEIGHT], device.unit), at=act.device_time)
        elif isinstance(device, Thermometer):
            celsius = values[Kind.BODY_TEMPERATURE]
            shown = celsius if device.unit == "Cel" else round(celsius * 9 / 5 + 32, 1)
            device.measure(shown, at=act.device_time)
        elif isinstance(device, GlucoseMeter):
            device.measure(values[Kind.GLUCOSE], at=act.device_time)
        else:  # pragma: no cover - PERIPHERALS has no other types
            raise TypeError(f"no way to measure on {type(device).__name__}")

    def held(self) -> int:
        """Records the devices hold that no gateway has taken yet."""
        return sum(_unsent(d) for d in self.devices.values())

    async def keep_advertising(self, period_s: float = 2.0) -> None:
        """Devices advertise again and again while they hold unsent records, as real ones do for a while after a
        measurement; a gateway that was busy or backing off picks them up at a later advertisement."""
        while True:
            for device in self.devices.values():
                if device.connection is None and _unsent(device):
                    device.advertise()
            await asyncio.sleep(period_s)

    def _set_clock(self, device: Peripheral, act: MeasurementAct) -> None:
        error = act.device_time - act.at.astimezone(self.zone).replace(tzinfo=None)
        local_now = self.air.clock.now().astimezone(self.zone).replace(tzinfo=None)
        if abs((device.clock.now() - (local_now + error)).total_seconds()) > 1:
            device.clock.set(local_now + error)


def _scale_reading(kg: float, unit: str) -> float | None:
    """What the scale shows in its unit; None ("measurement unsuccessful") beyond what its weight field holds."""
    shown = kg if unit == "kg" else round(kg / _KG_PER_LB, 2)
    if not math.isfinite(shown):
        return None
    try:
        encode_weight_measurement(shown, unit="kg" if unit == "kg" else "[lb_av]")
    except ValueError:
        return None
    return shown


def _unsent(device: Peripheral) -> int:
    if isinstance(device, GlucoseMeter):
        return device.unsent()
    memory = getattr(device, "memory", ())
    return len(memory)


def readings_read(agent: Agent) -> int:
    """Readings the agent's device handlers have committed to its outbox so far."""
    manager = agent.devices
    if manager is None:
        return 0
    return sum(r.readings_added for r in manager.devices.values())


Clock = Callable[[], datetime]


def home_source(
    home: VirtualHome,
    acts: Sequence[MeasurementAct],
    *,
    stats: FeedStats | None = None,
    clock: Clock | None = None,
    max_sleep_s: float = 5.0,
) -> Source:
    """An Agent source that measures each act on its device once the gateway can reach it (`upload_after`: a few
    seconds after the measurement, later when the gateway was away); past acts go into the devices at once.

    The source only plays the patient; the Agent's own device manager does the reading.
    """
    queue = sorted(acts, key=lambda a: a.upload_after)
    counters = stats if stats is not None else FeedStats()
    counters.pending = len(queue)
    now_of: Clock = clock or home.air.clock.now

    async def feed(_agent: Agent) -> None:
        advertiser = asyncio.create_task(home.keep_advertising(), name="home-advertising")
        try:
            index = 0
            while index < len(queue):
                now = now_of()
                measured = 0
                while index < len(queue) and queue[index].upload_after <= now:
                    home.measure(queue[index])
                    index += 1
                    measured += 1
                if measured:
                    counters.acts += measured
                    counters.pending = len(queue) - index
                    await asyncio.sleep(0)
                    continue
                wait = (queue[index].upload_after - now).total_seconds()
                await asyncio.sleep(max(0.01, min(wait, max_sleep_s)))
            counters.done = True
            await advertiser
        finally:
            advertiser.cancel()

    return feed
