"""A Weight Scale Service 1.0 scale (modelled on the A&D UC-352BLE): weighs in kg or lb, stores the results,
advertises after each weighing, indicates them on 0x2A9D once the gateway enables indications, then disconnects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from device_simulators.encoders import encode_weight_measurement
from device_simulators.link import Air, Props, ServerConnection
from device_simulators.peripherals.base import Peripheral, StoredRecord

WEIGHT_MEASUREMENT = 0x2A9D
WEIGHT_SCALE_FEATURE = 0x2A9E

WeightUnit = Literal["kg", "[lb_av]"]


@dataclass(frozen=True, slots=True)
class WeighingRecord:
    weight: float | None
    """In the scale's unit; None is "measurement unsuccessful"."""
    unit: WeightUnit
    at: datetime
    user_id: int | None
    bmi: float | None
    height: float | None

    def payload(self) -> bytes:
        return encode_weight_measurement(
            self.weight, unit=self.unit, time_stamp=self.at, user_id=self.user_id, bmi=self.bmi, height=self.height
        )


class WeightScale(Peripheral):
    device_type = "weight_scale"
    service_uuid = 0x181D
    default_model = "UC-352BLE"
    manufacturer = "A&D Medical"

    def __init__(self, air: Air, address: str, *, unit: WeightUnit = "kg", capacity: int = 90, **options: Any) -> None:
        super().__init__(air, address, **options)
        self.unit: WeightUnit = unit
        self.capacity = capacity
        self.memory: list[StoredRecord] = []
        self.add_characteristic(WEIGHT_MEASUREMENT, Props.INDICATE)
        self.add_characteristic(WEIGHT_SCALE_FEATURE, Props.READ, secure=False)

    def measure(
        self,
        weight: float | None,
        *,
        at: datetime | None = None,
        user_id: int | None = None,
        bmi: float | None = None,
        height: float | None = None,
    ) -> WeighingRecord:
        """Weight in the scale's unit (height in metres on a kg scale, inches on a lb scale)."""
        record = WeighingRecord(
            weight, self.unit, (at or self.clock.now()).replace(microsecond=0), user_id, bmi, height
        )
        self.memory.append(record)
        del self.memory[: -self.capacity]
        self.advertise()
        return record

    def has_pending_data(self) -> bool:
        return bool(self.memory)

    def read_value(self, connection: ServerConnection, uuid: int) -> bytes:
        if uuid == WEIGHT_SCALE_FEATURE:
            return (0x00000001).to_bytes(4, "little")
        return super().read_value(connection, uuid)

    async def serve(self, connection: ServerConnection) -> None:
        await connection.wait_subscribed(WEIGHT_MEASUREMENT)
        await self.send_stored(connection, WEIGHT_MEASUREMENT, self.memory)
