"""Pure decoders for the Bluetooth SIG health characteristics: bytes in, records in canonical `vitals` units out.

No I/O here: device handlers (`edge_agent/devices/`) hand notification bytes to `decode`, which finds the decoder
by characteristic UUID (16-bit int, "2a35", "0x2A35", the full 128-bit SIG UUID, or the characteristic's name).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from edge_agent.gatt.battery import BATTERY_LEVEL, BatteryLevel, decode_battery_level
from edge_agent.gatt.blood_pressure import (
    BLOOD_PRESSURE_MEASUREMENT,
    INTERMEDIATE_CUFF_PRESSURE,
    BloodPressureMeasurement,
    IntermediateCuffPressure,
    decode_blood_pressure_measurement,
    decode_intermediate_cuff_pressure,
)
from edge_agent.gatt.current_time import CURRENT_TIME, CurrentTime, decode_current_time, encode_current_time
from edge_agent.gatt.errors import GattDecodeError, MalformedError, TruncatedError, UnsupportedCharacteristicError
from edge_agent.gatt.glucose import (
    GLUCOSE_MEASUREMENT,
    GLUCOSE_MEASUREMENT_CONTEXT,
    GlucoseContext,
    GlucoseMeasurement,
    decode_glucose_measurement,
    decode_glucose_measurement_context,
)
from edge_agent.gatt.heart_rate import HEART_RATE_MEASUREMENT, HeartRateMeasurement, decode_heart_rate_measurement
from edge_agent.gatt.models import Measurement, MeasurementRecord, Payload, Skip
from edge_agent.gatt.plx import (
    PLX_CONTINUOUS_MEASUREMENT,
    PLX_SPOT_CHECK_MEASUREMENT,
    PlxContinuous,
    PlxSpotCheck,
    decode_plx_continuous,
    decode_plx_spot_check,
)
from edge_agent.gatt.racp import (
    RECORD_ACCESS_CONTROL_POINT,
    NumberOfStoredRecords,
    RacpResult,
    ResponseCode,
    abort_operation,
    decode_racp_response,
    delete_all_records,
    report_all_records,
    report_number_of_records,
    report_records_from,
)
from edge_agent.gatt.readings import ReadingsBatch, RejectedMeasurement, to_readings
from edge_agent.gatt.sfloat import Coded, Special, decode_float, decode_sfloat
from edge_agent.gatt.temperature import TEMPERATURE_MEASUREMENT, TemperatureMeasurement, decode_temperature_measurement
from edge_agent.gatt.weight import WEIGHT_MEASUREMENT, WeightMeasurement, decode_weight_measurement

Decoded = (
    BloodPressureMeasurement
    | IntermediateCuffPressure
    | HeartRateMeasurement
    | TemperatureMeasurement
    | GlucoseMeasurement
    | GlucoseContext
    | PlxSpotCheck
    | PlxContinuous
    | WeightMeasurement
    | BatteryLevel
    | CurrentTime
    | NumberOfStoredRecords
    | RacpResult
)


@dataclass(frozen=True, slots=True)
class Characteristic:
    uuid: int
    name: str
    decode: Callable[[Payload], Decoded]


CHARACTERISTICS: Mapping[int, Characteristic] = MappingProxyType(
    {
        c.uuid: c
        for c in (
            Characteristic(BLOOD_PRESSURE_MEASUREMENT, "blood_pressure_measurement", decode_blood_pressure_measurement),
            Characteristic(INTERMEDIATE_CUFF_PRESSURE, "intermediate_cuff_pressure", decode_intermediate_cuff_pressure),
            Characteristic(HEART_RATE_MEASUREMENT, "heart_rate_measurement", decode_heart_rate_measurement),
            Characteristic(TEMPERATURE_MEASUREMENT, "temperature_measurement", decode_temperature_measurement),
            Characteristic(GLUCOSE_MEASUREMENT, "glucose_measurement", decode_glucose_measurement),
            Characteristic(
                GLUCOSE_MEASUREMENT_CONTEXT, "glucose_measurement_context", decode_glucose_measurement_context
            ),
            Characteristic(PLX_SPOT_CHECK_MEASUREMENT, "plx_spot_check_measurement", decode_plx_spot_check),
            Characteristic(PLX_CONTINUOUS_MEASUREMENT, "plx_continuous_measurement", decode_plx_continuous),
            Characteristic(WEIGHT_MEASUREMENT, "weight_measurement", decode_weight_measurement),
            Characteristic(BATTERY_LEVEL, "battery_level", decode_battery_level),
            Characteristic(CURRENT_TIME, "current_time", decode_current_time),
            Characteristic(RECORD_ACCESS_CONTROL_POINT, "record_access_control_point", decode_racp_response),
        )
    }
)
_BY_NAME = {c.name: c for c in CHARACTERISTICS.values()}
_SHORT = re.compile(r"^(?:0x)?([0-9a-f]{4})$")
_SIG_BASE = re.compile(r"^0000([0-9a-f]{4})-0000-1000-8000-00805f9b34fb$")


def characteristic_for(uuid: int | str) -> Characteristic:
    """The registered characteristic for a UUID or name; UnsupportedCharacteristicError otherwise."""
    if isinstance(uuid, int):
        number = uuid
    else:
        text = uuid.strip().lower()
        if text in _BY_NAME:
            return _BY_NAME[text]
        match = _SHORT.match(text) or _SIG_BASE.match(text)
        if match is None:
            raise UnsupportedCharacteristicError(str(uuid), "not a 16-bit or Bluetooth-base 128-bit UUID")
        number = int(match.group(1), 16)
    found = CHARACTERISTICS.get(number)
    if found is None:
        raise UnsupportedCharacteristicError(str(uuid), "no decoder for this characteristic")
    return found


def decode(uuid: int | str, data: Payload) -> Decoded:
    """Decode one characteristic value; raises a GattDecodeError subclass instead of guessing."""
    return characteristic_for(uuid).decode(data)


__all__ = [
    "CHARACTERISTICS",
    "BatteryLevel",
    "BloodPressureMeasurement",
    "Characteristic",
    "Coded",
    "CurrentTime",
    "Decoded",
    "GattDecodeError",
    "GlucoseContext",
    "GlucoseMeasurement",
    "HeartRateMeasurement",
    "IntermediateCuffPressure",
    "MalformedError",
    "Measurement",
    "MeasurementRecord",
    "NumberOfStoredRecords",
    "Payload",
    "PlxContinuous",
    "PlxSpotCheck",
    "RacpResult",
    "ReadingsBatch",
    "RejectedMeasurement",
    "ResponseCode",
    "Skip",
    "Special",
    "TemperatureMeasurement",
    "TruncatedError",
    "UnsupportedCharacteristicError",
    "WeightMeasurement",
    "abort_operation",
    "characteristic_for",
    "decode",
    "decode_battery_level",
    "decode_blood_pressure_measurement",
    "decode_current_time",
    "decode_float",
    "decode_glucose_measurement",
    "decode_glucose_measurement_context",
    "decode_heart_rate_measurement",
    "decode_intermediate_cuff_pressure",
    "decode_plx_continuous",
    "decode_plx_spot_check",
    "decode_racp_response",
    "decode_sfloat",
    "decode_temperature_measurement",
    "decode_weight_measurement",
    "delete_all_records",
    "encode_current_time",
    "report_all_records",
    "report_number_of_records",
    "report_records_from",
    "to_readings",
]
