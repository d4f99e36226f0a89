"""A Pulse Oximeter Service 1.0 fingertip oximeter (modelled on the Viatom/Beurer PO-60 class): spot-check results
are stored and indicated on 0x2A5E once the gateway enables indications; in `continuous` mode it also stays connected
and notifies live SpO2/pulse on 0x2A5F (`stream`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from device_simulators.encoders import encode_plx_continuous, encode_plx_spot_check
from device_simulators.link import Air, Props, ServerConnection
from device_simulators.peripherals.base import Peripheral, StoredRecord

PLX_SPOT_CHECK_MEASUREMENT = 0x2A5E
PLX_CONTINUOUS_MEASUREMENT = 0x2A5F
PLX_FEATURES = 0x2A60


@dataclass(frozen=True, slots=True)
class SpotCheckRecord:
    spo2: float
    pulse: float
    at: datetime | None
    clock_not_set: bool
    measurement_status: tuple[str, ...] | None
    device_sensor_status: tuple[str, ...] | None

    def payload(self) -> bytes:
        return encode_plx_spot_check(
            self.spo2,
            self.pulse,
            time_stamp=self.at,
            device_clock_not_set=self.clock_not_set,
            measurement_status=self.measurement_status,
            device_sensor_status=self.device_sensor_status,
        )


class PulseOximeter(Peripheral):
    device_type = "pulse_oximeter"
    service_uuid = 0x1822
    default_model = "PO-60"
    manufacturer = "Beurer"

    def __init__(
        self, air: Air, address: str, *, continuous: bool = False, capacity: int = 100, **options: Any
    ) -> None:
        super().__init__(air, address, **options)
        self.continuous = continuous
        self.capacity = capacity
        self.memory: list[StoredRecord] = []
        self.add_characteristic(PLX_SPOT_CHECK_MEASUREMENT, Props.INDICATE)
        if continuous:
            self.add_characteristic(PLX_CONTINUOUS_MEASUREMENT, Props.NOTIFY)
        self.add_characteristic(PLX_FEATURES, Props.READ, secure=False)

    def disconnects_after_transfer(self) -> bool:
        return not self.continuous

    def measure(
        self,
        spo2: float,
        pulse: float,
        *,
        at: datetime | None = None,
        clock_not_set: bool = False,
        measurement_status: Iterable[str] | None = None,
        device_sensor_status: Iterable[str] | None = None,
    ) -> SpotCheckRecord:
        record = SpotCheckRecord(
            spo2,
            pulse,
            (at or self.clock.now()).replace(microsecond=0),
            clock_not_set,
            tuple(measurement_status) if measurement_status is not None else None,
            tuple(device_sensor_status) if device_sensor_status is not None else None,
        )
        self.memory.append(record)
        del self.memory[: -self.capacity]
        self.advertise()
        return record

    def stream(self, spo2: float, pulse: float, *, measurement_status: Iterable[str] | None = None) -> bool:
        """One live value on 0x2A5F; False when nobody is connected and listening (live values are not stored)."""
        connection = self.connection
        if not self.continuous or connection is None or not connection.open:
            return False
        payload = encode_plx_continuous(
            spo2, pulse, measurement_status=tuple(measurement_status) if measurement_status is not None else None
        )
        sent = connection.notify(PLX_CONTINUOUS_MEASUREMENT, payload)
        self.values_sent += sent
        return sent

    def has_pending_data(self) -> bool:
        return bool(self.memory)

    def read_value(self, connection: ServerConnection, uuid: int) -> bytes:
        if uuid == PLX_FEATURES:
            return (0x0000).to_bytes(2, "little")
        return super().read_value(connection, uuid)

    async def serve(self, connection: ServerConnection) -> None:
        await connection.wait_subscribed(PLX_SPOT_CHECK_MEASUREMENT)
        await self.send_stored(connection, PLX_SPOT_CHECK_MEASUREMENT, self.memory)
        if self.continuous:
            await asyncio.Event().wait()
