"""Blood pressure monitors (Blood Pressure Service 0x1810): stored measurements arrive as 0x2A35 indications once
they are enabled; intermediate cuff pressure (0x2A36, notifications) is enabled where offered and carries no reading.
"""

from __future__ import annotations

from edge_agent.devices.base import DeviceHandler, Subscription
from edge_agent.gatt.blood_pressure import BLOOD_PRESSURE_MEASUREMENT, INTERMEDIATE_CUFF_PRESSURE

BLOOD_PRESSURE_SERVICE = 0x1810


class BloodPressureHandler(DeviceHandler):
    device_type = "blood_pressure_monitor"
    service_uuid = BLOOD_PRESSURE_SERVICE
    subscriptions = (
        Subscription(INTERMEDIATE_CUFF_PRESSURE, optional=True),
        Subscription(BLOOD_PRESSURE_MEASUREMENT),
    )
