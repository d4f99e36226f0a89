"""A Heart Rate Service 1.0 chest strap (modelled on the Polar H10): advertises while worn, notifies each beat's
rate and RR intervals on 0x2A37 to a subscribed gateway, stores nothing and keeps the link until taken off."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from device_simulators.encoders import encode_heart_rate_measurement
from device_simulators.link import Air, Props, ServerConnection
from device_simulators.peripherals.base import Peripheral

HEART_RATE_MEASUREMENT = 0x2A37
BODY_SENSOR_LOCATION = 0x2A38
_CHEST = 1


class HeartRateStrap(Peripheral):
    device_type = "heart_rate_monitor"
    service_uuid = 0x180D
    default_model = "H10"
    manufacturer = "Polar Electro"

    def __init__(self, air: Air, address: str, **options: Any) -> None:
        options.setdefault("current_time", False)
        super().__init__(air, address, **options)
        self.add_characteristic(HEART_RATE_MEASUREMENT, Props.NOTIFY)
        self.add_characteristic(BODY_SENSOR_LOCATION, Props.READ, secure=False)

    def disconnects_after_transfer(self) -> bool:
        return False

    def wear(self) -> bool:
        """Skin contact wakes the strap: it advertises until taken off."""
        return self.advertise(math.inf)

    def take_off(self) -> None:
        self.stop_advertising()
        if self.connection is not None:
            self.connection.drop()

    def beat(self, rate: int, *, rr_intervals: Sequence[float] = (), sensor_contact: bool | None = True) -> bool:
        """One notification; False when no gateway is connected and subscribed (the value is lost, as on a strap)."""
        connection = self.connection
        if connection is None or not connection.open:
            return False
        payload = encode_heart_rate_measurement(rate, sensor_contact=sensor_contact, rr_intervals=rr_intervals)
        sent = connection.notify(HEART_RATE_MEASUREMENT, payload)
        self.values_sent += sent
        return sent

    def read_value(self, connection: ServerConnection, uuid: int) -> bytes:
        if uuid == BODY_SENSOR_LOCATION:
            return bytes((_CHEST,))
        return super().read_value(connection, uuid)
