"""Weight scales (Weight Scale Service 0x181D): stored weighings arrive as 0x2A9D indications, in kg or lb on the
wire and in kg as readings."""

from __future__ import annotations

from edge_agent.devices.base import DeviceHandler, Subscription
from edge_agent.gatt.weight import WEIGHT_MEASUREMENT

WEIGHT_SCALE_SERVICE = 0x181D


class WeightScaleHandler(DeviceHandler):
    device_type = "weight_scale"
    service_uuid = WEIGHT_SCALE_SERVICE
    subscriptions = (Subscription(WEIGHT_MEASUREMENT),)
