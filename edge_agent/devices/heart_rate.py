"""Heart-rate straps (Heart Rate Service 0x180D): live 0x2A37 notifications for as long as the strap is worn and
connected; no stored records and no device clock, so each reading is timed by the gateway."""

from __future__ import annotations

from edge_agent.devices.base import DeviceHandler, Subscription
from edge_agent.gatt.heart_rate import HEART_RATE_MEASUREMENT

HEART_RATE_SERVICE = 0x180D


class HeartRateHandler(DeviceHandler):
    device_type = "heart_rate_monitor"
    service_uuid = HEART_RATE_SERVICE
    subscriptions = (Subscription(HEART_RATE_MEASUREMENT),)
    current_time = False
    streaming = True
