"""Byte-exact encoders for the Bluetooth SIG health characteristics: the inverse of `edge_agent.gatt`.

Simulated devices build their notifications here, special values and both unit systems included, so every path
through the gateway's decoders can be exercised without hardware.
"""

from __future__ import annotations

from device_simulators.encoders.battery import encode_battery_level
from device_simulators.encoders.blood_pressure import (
    encode_blood_pressure_measurement,
    encode_intermediate_cuff_pressure,
)
from device_simulators.encoders.current_time import encode_current_time, parse_current_time_write
from device_simulators.encoders.glucose import encode_glucose_measurement, encode_glucose_measurement_context
from device_simulators.encoders.heart_rate import encode_heart_rate_measurement
from device_simulators.encoders.plx import encode_plx_continuous, encode_plx_spot_check
from device_simulators.encoders.racp import (
    RacpRequest,
    encode_number_of_stored_records,
    encode_response_code,
    parse_racp_request,
)
from device_simulators.encoders.sfloat import (
    Coded,
    Number,
    Special,
    coded_float,
    coded_sfloat,
    encode_float,
    encode_sfloat,
)
from device_simulators.encoders.temperature import encode_temperature_measurement
from device_simulators.encoders.weight import encode_weight_measurement

__all__ = [
    "Coded",
    "Number",
    "RacpRequest",
    "Special",
    "coded_float",
    "coded_sfloat",
    "encode_battery_level",
    "encode_blood_pressure_measurement",
    "encode_current_time",
    "encode_float",
    "encode_glucose_measurement",
    "encode_glucose_measurement_context",
    "encode_heart_rate_measurement",
    "encode_intermediate_cuff_pressure",
    "encode_number_of_stored_records",
    "encode_plx_continuous",
    "encode_plx_spot_check",
    "encode_response_code",
    "encode_sfloat",
    "encode_temperature_measurement",
    "encode_weight_measurement",
    "parse_current_time_write",
    "parse_racp_request",
]
