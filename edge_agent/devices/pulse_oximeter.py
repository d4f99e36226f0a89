"""Pulse oximeters (Pulse Oximeter Service 0x1822): spot-check results as 0x2A5E indications, live values as 0x2A5F
notifications. A model may offer either or both; with continuous values enabled the session stays open while they
flow.
"""

from __future__ import annotations

from edge_agent.devices.base import DeviceHandler, Subscription
from edge_agent.gatt.plx import PLX_CONTINUOUS_MEASUREMENT, PLX_SPOT_CHECK_MEASUREMENT

PULSE_OXIMETER_SERVICE = 0x1822


class PulseOximeterHandler(DeviceHandler):
    device_type = "pulse_oximeter"
    service_uuid = PULSE_OXIMETER_SERVICE
    subscriptions = (
        Subscription(PLX_CONTINUOUS_MEASUREMENT, optional=True),
        Subscription(PLX_SPOT_CHECK_MEASUREMENT, optional=True),
    )

    def is_streaming(self, enabled: tuple[int, ...]) -> bool:
        return PLX_CONTINUOUS_MEASUREMENT in enabled
