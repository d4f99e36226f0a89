"""A Blood Pressure Service 1.0 cuff (modelled on the A&D UA-651BLE): stores measurements, advertises after each one,
indicates them on 0x2A35 once the gateway enables indications, deletes each after its confirmation, disconnects.

With `intermediate_cuff=True` a measurement taken while connected (`live=True`) first streams the inflating cuff
pressure as 0x2A36 notifications.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from device_simulators.encoders import encode_blood_pressure_measurement, encode_intermediate_cuff_pressure
from device_simulators.encoders.blood_pressure import PressureUnit
from device_simulators.link import Air, Props, ServerConnection
from device_simulators.peripherals.base import Peripheral

BLOOD_PRESSURE_MEASUREMENT = 0x2A35
INTERMEDIATE_CUFF_PRESSURE = 0x2A36
BLOOD_PRESSURE_FEATURE = 0x2A49


@dataclass(frozen=True, slots=True)
class CuffRecord:
    systolic: float
    diastolic: float
    mean: float
    pulse: float | None
    at: datetime
    """The cuff's own clock when measured (naive local wall time, however wrong)."""
    unit: PressureUnit
    user_id: int | None
    status: tuple[str, ...]
    live: bool

    def payload(self) -> bytes:
        return encode_blood_pressure_measurement(
            self.systolic,
            self.diastolic,
            self.mean,
            unit=self.unit,
            time_stamp=self.at,
            pulse_rate=self.pulse,
            user_id=self.user_id,
            status=self.status,
        )


class BloodPressureCuff(Peripheral):
    device_type = "blood_pressure_monitor"
    service_uuid = 0x1810
    default_model = "UA-651BLE"
    manufacturer = "A&D Medical"

    def __init__(
        self,
        air: Air,
        address: str,
        *,
        unit: PressureUnit = "mmHg",
        intermediate_cuff: bool = False,
        capacity: int = 30,
        **options: Any,
    ) -> None:
        super().__init__(air, address, **options)
        self.unit: PressureUnit = unit
        self.intermediate_cuff = intermediate_cuff
        self.capacity = capacity
        self.memory: list[CuffRecord] = []
        self.add_characteristic(BLOOD_PRESSURE_MEASUREMENT, Props.INDICATE)
        if intermediate_cuff:
            self.add_characteristic(INTERMEDIATE_CUFF_PRESSURE, Props.NOTIFY)
        self.add_characteristic(BLOOD_PRESSURE_FEATURE, Props.READ, secure=False)

    def measure(
        self,
        systolic: float,
        diastolic: float,
        *,
        mean: float | None = None,
        pulse: float | None = None,
        at: datetime | None = None,
        status: Iterable[str] = (),
        user_id: int | None = None,
        live: bool = False,
    ) -> CuffRecord:
        """Store one inflation (pressures in the cuff's unit) stamped by the cuff's clock, and advertise."""
        record = CuffRecord(
            systolic,
            diastolic,
            mean if mean is not None else round(diastolic + (systolic - diastolic) / 3),
            pulse,
            (at or self.clock.now()).replace(microsecond=0),
            self.unit,
            user_id,
            tuple(status),
            live,
        )
        self.memory.append(record)
        del self.memory[: -self.capacity]
        self.advertise()
        return record

    def has_pending_data(self) -> bool:
        return bool(self.memory)

    def read_value(self, connection: ServerConnection, uuid: int) -> bytes:
        if uuid == BLOOD_PRESSURE_FEATURE:
            return (0x0000).to_bytes(2, "little")
        return super().read_value(connection, uuid)

    async def serve(self, connection: ServerConnection) -> None:
        await connection.wait_subscribed(BLOOD_PRESSURE_MEASUREMENT)
        while self.memory:
            record = self.memory[0]
            if record.live and connection.cccd.get(INTERMEDIATE_CUFF_PRESSURE):
                for pressure in _inflation(record.systolic):
                    payload = encode_intermediate_cuff_pressure(pressure, unit=record.unit, status=record.status)
                    await self.send(connection, INTERMEDIATE_CUFF_PRESSURE, payload)
            await self.send(connection, BLOOD_PRESSURE_MEASUREMENT, record.payload())
            self.memory.remove(record)


def _inflation(systolic: float) -> tuple[float, ...]:
    top = systolic + 30
    return (round(top / 3), round(2 * top / 3), round(top), round(systolic))
