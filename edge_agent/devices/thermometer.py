"""Thermometers (Health Thermometer Service 0x1809): stored temperatures arrive as 0x2A1C indications, in °C or °F
on the wire and in Cel as readings, with the measurement site as a flag."""

from __future__ import annotations

from edge_agent.devices.base import DeviceHandler, Subscription
from edge_agent.gatt.temperature import TEMPERATURE_MEASUREMENT

HEALTH_THERMOMETER_SERVICE = 0x1809


class ThermometerHandler(DeviceHandler):
    device_type = "thermometer"
    service_uuid = HEALTH_THERMOMETER_SERVICE
    subscriptions = (Subscription(TEMPERATURE_MEASUREMENT),)
