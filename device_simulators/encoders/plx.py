"""PLX Spot-check (0x2A5E) and PLX Continuous (0x2A5F) Measurement bytes, as a PLXS 1.0 oximeter sends them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from device_simulators.encoders._fields import bits, date_time, u8, u16
from device_simulators.encoders.sfloat import Number, encode_sfloat

MEASUREMENT_STATUS = {
    "measurement_ongoing": 5,
    "early_estimated_data": 6,
    "validated_data": 7,
    "fully_qualified_data": 8,
    "data_from_storage": 9,
    "data_for_demonstration": 10,
    "data_for_testing": 11,
    "calibration_ongoing": 12,
    "measurement_unavailable": 13,
    "questionable_measurement": 14,
    "invalid_measurement": 15,
}
DEVICE_SENSOR_STATUS = {
    "extended_display_update_ongoing": 0,
    "equipment_malfunction": 1,
    "signal_processing_irregularity": 2,
    "inadequate_signal": 3,
    "poor_signal": 4,
    "low_perfusion": 5,
    "erratic_signal": 6,
    "nonpulsatile_signal": 7,
    "questionable_pulse": 8,
    "signal_analysis_ongoing": 9,
    "sensor_interference": 10,
    "sensor_unconnected_to_user": 11,
    "unknown_sensor_connected": 12,
    "sensor_displaced": 13,
    "sensor_malfunctioning": 14,
    "sensor_disconnected": 15,
}


def _tail(
    measurement_status: Iterable[str] | None,
    device_sensor_status: Iterable[str] | None,
    pulse_amplitude_index: Number | None,
) -> bytes:
    out = b""
    if measurement_status is not None:
        out += u16(bits(measurement_status, MEASUREMENT_STATUS, "measurement status"))
    if device_sensor_status is not None:
        out += bits(device_sensor_status, DEVICE_SENSOR_STATUS, "device and sensor status").to_bytes(3, "little")
    if pulse_amplitude_index is not None:
        out += encode_sfloat(pulse_amplitude_index)
    return out


def encode_plx_spot_check(
    spo2: Number,
    pulse_rate: Number,
    *,
    time_stamp: datetime | None = None,
    device_clock_not_set: bool = False,
    measurement_status: Iterable[str] | None = None,
    device_sensor_status: Iterable[str] | None = None,
    pulse_amplitude_index: Number | None = None,
) -> bytes:
    flags = (
        (time_stamp is not None) * 0x01
        | (measurement_status is not None) * 0x02
        | (device_sensor_status is not None) * 0x04
        | (pulse_amplitude_index is not None) * 0x08
        | device_clock_not_set * 0x10
    )
    out = u8(flags) + encode_sfloat(spo2) + encode_sfloat(pulse_rate)
    if time_stamp is not None:
        out += date_time(time_stamp)
    return out + _tail(measurement_status, device_sensor_status, pulse_amplitude_index)


def encode_plx_continuous(
    spo2: Number,
    pulse_rate: Number,
    *,
    fast: tuple[Number, Number] | None = None,
    slow: tuple[Number, Number] | None = None,
    measurement_status: Iterable[str] | None = None,
    device_sensor_status: Iterable[str] | None = None,
    pulse_amplitude_index: Number | None = None,
) -> bytes:
    """`fast` and `slow` are (SpO2 %, pulse rate /min) pairs."""
    flags = (
        (fast is not None) * 0x01
        | (slow is not None) * 0x02
        | (measurement_status is not None) * 0x04
        | (device_sensor_status is not None) * 0x08
        | (pulse_amplitude_index is not None) * 0x10
    )
    out = u8(flags) + encode_sfloat(spo2) + encode_sfloat(pulse_rate)
    for pair in (fast, slow):
        if pair is not None:
            out += encode_sfloat(pair[0]) + encode_sfloat(pair[1])
    return out + _tail(measurement_status, device_sensor_status, pulse_amplitude_index)
