"""PLX Spot-check Measurement (0x2A5E) and PLX Continuous Measurement (0x2A5F), Pulse Oximeter Service 1.0.

SpO2 (%) and pulse rate (/min) arrive as SFLOAT. Status bits become flags; when the oximeter itself says the value
is invalid, unavailable, demonstration or test data, or that the sensor is off the patient, the values are skipped
with that reason rather than stored. A spot-check timestamp taken while "device clock is not set" is dropped. For
continuous measurements only the Normal SpO2PR pair becomes measurements; Fast and Slow stay on the record.
Reserved flag and status bits are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from edge_agent.gatt._cursor import Cursor, names_of_bits, usable
from edge_agent.gatt.models import Measurement, Payload, Skip, measurement, skip
from edge_agent.gatt.sfloat import Coded
from vitals import Kind

PLX_SPOT_CHECK_MEASUREMENT = 0x2A5E
PLX_CONTINUOUS_MEASUREMENT = 0x2A5F

MEASUREMENT_STATUS = {
    5: "measurement_ongoing",
    6: "early_estimated_data",
    7: "validated_data",
    8: "fully_qualified_data",
    9: "data_from_storage",
    10: "data_for_demonstration",
    11: "data_for_testing",
    12: "calibration_ongoing",
    13: "measurement_unavailable",
    14: "questionable_measurement",
    15: "invalid_measurement",
}
DEVICE_SENSOR_STATUS = {
    0: "extended_display_update_ongoing",
    1: "equipment_malfunction",
    2: "signal_processing_irregularity",
    3: "inadequate_signal",
    4: "poor_signal",
    5: "low_perfusion",
    6: "erratic_signal",
    7: "nonpulsatile_signal",
    8: "questionable_pulse",
    9: "signal_analysis_ongoing",
    10: "sensor_interference",
    11: "sensor_unconnected_to_user",
    12: "unknown_sensor_connected",
    13: "sensor_displaced",
    14: "sensor_malfunctioning",
    15: "sensor_disconnected",
}
NO_MEASUREMENT_STATUS = frozenset(
    {
        "invalid_measurement",
        "measurement_unavailable",
        "data_for_demonstration",
        "data_for_testing",
        "sensor_unconnected_to_user",
        "sensor_disconnected",
    }
)
"""Statuses under which the oximeter's numbers are not a measurement of the patient."""


@dataclass(frozen=True, slots=True)
class PlxSpotCheck:
    measurements: tuple[Measurement, ...]
    device_time: datetime | None
    device_clock_not_set: bool
    measurement_status: tuple[str, ...] | None
    device_sensor_status: tuple[str, ...] | None
    pulse_amplitude_index: float | None
    """Percent; None when absent or sent as a special value."""
    skipped: tuple[Skip, ...]


@dataclass(frozen=True, slots=True)
class PlxContinuous:
    measurements: tuple[Measurement, ...]
    fast: tuple[float | None, float | None] | None
    """(SpO2 %, pulse rate /min) of the fast-responding average; None when absent."""
    slow: tuple[float | None, float | None] | None
    measurement_status: tuple[str, ...] | None
    device_sensor_status: tuple[str, ...] | None
    pulse_amplitude_index: float | None
    skipped: tuple[Skip, ...]


def _optional_float(value: Coded | None) -> float | None:
    return float(value) if value is not None else None


def _pair(cursor: Cursor, prefix: str, skipped: list[Skip], characteristic: str) -> tuple[Coded | None, Coded | None]:
    spo2 = usable(cursor.sfloat(f"{prefix}spo2"), f"{prefix}spo2", skipped, characteristic)
    rate = usable(cursor.sfloat(f"{prefix}pulse_rate"), f"{prefix}pulse_rate", skipped, characteristic)
    return spo2, rate


def _statuses(
    cursor: Cursor, flags: int, status_bit: int, sensor_bit: int
) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    status = names_of_bits(cursor.u16("measurement_status"), MEASUREMENT_STATUS) if flags & status_bit else None
    sensor = (
        names_of_bits(cursor.uint(3, "device_and_sensor_status"), DEVICE_SENSOR_STATUS) if flags & sensor_bit else None
    )
    return status, sensor


def _pulse_amplitude_index(
    cursor: Cursor, flags: int, bit: int, skipped: list[Skip], characteristic: str
) -> float | None:
    if not flags & bit:
        return None
    return _optional_float(
        usable(cursor.sfloat("pulse_amplitude_index"), "pulse_amplitude_index", skipped, characteristic)
    )


def _measurements(
    spo2: Coded | None,
    rate: Coded | None,
    device_time: datetime | None,
    flags: tuple[str, ...],
    skipped: list[Skip],
    characteristic: str,
) -> tuple[Measurement, ...]:
    refusal = next((flag for flag in flags if flag in NO_MEASUREMENT_STATUS), None)
    if refusal is not None:
        for field, value in (("spo2", spo2), ("pulse_rate", rate)):
            if value is not None:
                skipped.append(skip(characteristic, field, refusal))
        return ()
    values = ((Kind.SPO2, spo2), (Kind.PULSE_RATE, rate))
    return tuple(measurement(kind, float(value), device_time, flags) for kind, value in values if value is not None)


def decode_plx_spot_check(data: Payload) -> PlxSpotCheck:
    characteristic = "plx_spot_check_measurement"
    cursor = Cursor(data, characteristic)
    skipped: list[Skip] = []
    flags = cursor.u8("flags")
    spo2, rate = _pair(cursor, "", skipped, characteristic)
    device_time = cursor.date_time("time_stamp") if flags & 0x01 else None
    clock_not_set = bool(flags & 0x10)
    if clock_not_set:
        device_time = None
    status, sensor = _statuses(cursor, flags, 0x02, 0x04)
    pai = _pulse_amplitude_index(cursor, flags, 0x08, skipped, characteristic)
    cursor.finish(flags & 0xE0)
    reading_flags = (*(status or ()), *(sensor or ()))
    measurements = _measurements(spo2, rate, device_time, reading_flags, skipped, characteristic)
    return PlxSpotCheck(measurements, device_time, clock_not_set, status, sensor, pai, tuple(skipped))


def decode_plx_continuous(data: Payload) -> PlxContinuous:
    characteristic = "plx_continuous_measurement"
    cursor = Cursor(data, characteristic)
    skipped: list[Skip] = []
    flags = cursor.u8("flags")
    spo2, rate = _pair(cursor, "", skipped, characteristic)
    fast = _pair(cursor, "fast_", skipped, characteristic) if flags & 0x01 else None
    slow = _pair(cursor, "slow_", skipped, characteristic) if flags & 0x02 else None
    status, sensor = _statuses(cursor, flags, 0x04, 0x08)
    pai = _pulse_amplitude_index(cursor, flags, 0x10, skipped, characteristic)
    cursor.finish(flags & 0xE0)
    reading_flags = (*(status or ()), *(sensor or ()))
    measurements = _measurements(spo2, rate, None, reading_flags, skipped, characteristic)
    return PlxContinuous(
        measurements,
        (_optional_float(fast[0]), _optional_float(fast[1])) if fast else None,
        (_optional_float(slow[0]), _optional_float(slow[1])) if slow else None,
        status,
        sensor,
        pai,
        tuple(skipped),
    )
