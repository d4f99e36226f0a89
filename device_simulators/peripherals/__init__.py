"""Virtual BLE health devices that behave like real ones at GATT level, on the in-process medium of
`device_simulators.link`: measure, advertise, wait for the gateway's subscription, send, disconnect — and fail the
way real devices do (refused connections, dropped links, busy adapters, firmware hangs)."""

from __future__ import annotations

from device_simulators.peripherals.base import CLOCK_RESET_TO, DeviceClock, Faults, Peripheral
from device_simulators.peripherals.blood_pressure import BloodPressureCuff, CuffRecord
from device_simulators.peripherals.glucose_meter import GlucoseMeter, GlucoseRecord
from device_simulators.peripherals.heart_rate import HeartRateStrap
from device_simulators.peripherals.pulse_oximeter import PulseOximeter, SpotCheckRecord
from device_simulators.peripherals.thermometer import TemperatureRecord, Thermometer
from device_simulators.peripherals.weight_scale import WeighingRecord, WeightScale

__all__ = [
    "CLOCK_RESET_TO",
    "BloodPressureCuff",
    "CuffRecord",
    "DeviceClock",
    "Faults",
    "GlucoseMeter",
    "GlucoseRecord",
    "HeartRateStrap",
    "Peripheral",
    "PulseOximeter",
    "SpotCheckRecord",
    "TemperatureRecord",
    "Thermometer",
    "WeighingRecord",
    "WeightScale",
]
