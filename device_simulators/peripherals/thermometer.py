"""A Health Thermometer Service 1.0 thermometer (modelled on the A&D UT-201BLE ear thermometer): stores readings in
°C or °F, advertises after each, indicates them on 0x2A1C once the gateway enables indications, then disconnects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from device_simulators.encoders import encode_temperature_measurement
from device_simulators.encoders.temperature import TEMPERATURE_TYPES
from device_simulators.link import Air, Props, ServerConnection
from device_simulators.peripherals.base import Peripheral, StoredRecord

TEMPERATURE_MEASUREMENT = 0x2A1C
TEMPERATURE_TYPE = 0x2A1D

TemperatureUnit = Literal["Cel", "[degF]"]


@dataclass(frozen=True, slots=True)
class TemperatureRecord:
    temperature: float
    unit: TemperatureUnit
    at: datetime
    site: str | None

    def payload(self) -> bytes:
        return encode_temperature_measurement(
            self.temperature, unit=self.unit, time_stamp=self.at, temperature_type=self.site
        )


class Thermometer(Peripheral):
    device_type = "thermometer"
    service_uuid = 0x1809
    default_model = "UT-201BLE"
    manufacturer = "A&D Medical"

    def __init__(
        self,
        air: Air,
        address: str,
        *,
        unit: TemperatureUnit = "Cel",
        site: str | None = "ear",
        capacity: int = 25,
        **options: Any,
    ) -> None:
        super().__init__(air, address, **options)
        self.unit: TemperatureUnit = unit
        self.site = site
        self.capacity = capacity
        self.memory: list[StoredRecord] = []
        self.add_characteristic(TEMPERATURE_MEASUREMENT, Props.INDICATE)
        self.add_characteristic(TEMPERATURE_TYPE, Props.READ, secure=False)

    def measure(self, temperature: float, *, at: datetime | None = None) -> TemperatureRecord:
        """Temperature in the thermometer's unit, stamped by its clock."""
        record = TemperatureRecord(temperature, self.unit, (at or self.clock.now()).replace(microsecond=0), self.site)
        self.memory.append(record)
        del self.memory[: -self.capacity]
        self.advertise()
        return record

    def has_pending_data(self) -> bool:
        return bool(self.memory)

    def read_value(self, connection: ServerConnection, uuid: int) -> bytes:
        if uuid == TEMPERATURE_TYPE and self.site is not None:
            return bytes((TEMPERATURE_TYPES[self.site],))
        return super().read_value(connection, uuid)

    async def serve(self, connection: ServerConnection) -> None:
        await connection.wait_subscribed(TEMPERATURE_MEASUREMENT)
        await self.send_stored(connection, TEMPERATURE_MEASUREMENT, self.memory)
