"""A Glucose Service 1.0 meter (modelled on the Roche Accu-Chek Guide): requires bonding by default, numbers every
result with a sequence number, keeps them in memory and sends them only when asked through the Record Access Control
Point (0x2A52): report all / from a sequence number / first / last, number of stored records, delete all, abort.
Records go out as 0x2A18 notifications (plus 0x2A34 context when it has one), the RACP answer as an indication.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from device_simulators.encoders import (
    encode_glucose_measurement,
    encode_glucose_measurement_context,
    encode_number_of_stored_records,
    encode_response_code,
    parse_racp_request,
)
from device_simulators.encoders.racp import (
    ABORT_OPERATION,
    DELETE_STORED_RECORDS,
    OPERATOR_ALL,
    OPERATOR_FIRST,
    OPERATOR_GREATER_OR_EQUAL,
    OPERATOR_LAST,
    REPORT_NUMBER_OF_STORED_RECORDS,
    REPORT_STORED_RECORDS,
    RacpRequest,
)
from device_simulators.link import (
    ATT_CCCD_IMPROPERLY_CONFIGURED,
    ATT_PROCEDURE_ALREADY_IN_PROGRESS,
    CCCD_INDICATE,
    Air,
    AttError,
    PeripheralClosed,
    Props,
    ServerConnection,
)
from device_simulators.peripherals.base import Peripheral

GLUCOSE_MEASUREMENT = 0x2A18
GLUCOSE_MEASUREMENT_CONTEXT = 0x2A34
GLUCOSE_FEATURE = 0x2A51
RECORD_ACCESS_CONTROL_POINT = 0x2A52

GlucoseUnit = Literal["mg/dL", "mmol/L"]


@dataclass(frozen=True, slots=True)
class GlucoseRecord:
    sequence: int
    at: datetime
    concentration: float
    unit: GlucoseUnit
    sample_type: str
    sample_location: str | None
    sensor_status: tuple[str, ...] | None
    meal: str | None
    tester: str | None
    health: str | None

    @property
    def has_context(self) -> bool:
        return any(v is not None for v in (self.meal, self.tester, self.health))

    def measurement(self) -> bytes:
        return encode_glucose_measurement(
            self.sequence,
            self.at,
            time_offset_minutes=0,
            concentration=self.concentration,
            unit=self.unit,
            sample_type=self.sample_type,
            sample_location=self.sample_location,
            sensor_status=self.sensor_status,
            context_follows=self.has_context,
        )

    def context(self) -> bytes:
        return encode_glucose_measurement_context(self.sequence, meal=self.meal, tester=self.tester, health=self.health)


class GlucoseMeter(Peripheral):
    device_type = "glucose_meter"
    service_uuid = 0x1808
    default_model = "Accu-Chek Guide"
    manufacturer = "Roche Diabetes Care"

    def __init__(
        self,
        air: Air,
        address: str,
        *,
        unit: GlucoseUnit = "mmol/L",
        capacity: int = 720,
        first_sequence: int = 1,
        record_interval_s: float = 0.0,
        **options: Any,
    ) -> None:
        options.setdefault("bonding", True)
        super().__init__(air, address, **options)
        self.unit: GlucoseUnit = unit
        self.capacity = capacity
        self.record_interval_s = record_interval_s
        """Pause between records on the air, so an abort can land mid-transfer."""
        self.records: list[GlucoseRecord] = []
        self.requests: list[RacpRequest] = []
        self.last_sent_sequence: int | None = None
        """The newest record sent to a gateway so far (meters keep sent records; this is what is new)."""
        self._next_sequence = first_sequence
        self._procedure: asyncio.Task[None] | None = None
        self._answered = False
        """The running procedure has sent its final indication: a new request may come before its confirmation
        has reached the meter's procedure (on a real stack the two can arrive together)."""
        self.add_characteristic(GLUCOSE_MEASUREMENT, Props.NOTIFY)
        self.add_characteristic(GLUCOSE_MEASUREMENT_CONTEXT, Props.NOTIFY)
        self.add_characteristic(GLUCOSE_FEATURE, Props.READ)
        self.add_characteristic(RECORD_ACCESS_CONTROL_POINT, Props.WRITE | Props.INDICATE)

    def disconnects_after_transfer(self) -> bool:
        return False

    def measure(
        self,
        concentration: float,
        *,
        at: datetime | None = None,
        meal: str | None = None,
        tester: str | None = None,
        health: str | None = None,
        sample_type: str = "capillary_plasma",
        sample_location: str | None = "finger",
        sensor_status: tuple[str, ...] | None = None,
    ) -> GlucoseRecord:
        """One strip result in the meter's unit; numbered, kept (the oldest falls out at capacity), advertised."""
        record = GlucoseRecord(
            self._next_sequence & 0xFFFF,
            (at or self.clock.now()).replace(microsecond=0),
            concentration,
            self.unit,
            sample_type,
            sample_location,
            sensor_status,
            meal,
            tester,
            health,
        )
        self._next_sequence += 1
        self.records.append(record)
        del self.records[: -self.capacity]
        self.advertise()
        return record

    def has_pending_data(self) -> bool:
        return False

    def unsent(self) -> int:
        """Records newer than any sent so far: what a meter would announce by advertising again."""
        last = self.last_sent_sequence
        return sum(1 for r in self.records if last is None or r.sequence > last)

    def read_value(self, connection: ServerConnection, uuid: int) -> bytes:
        if uuid == GLUCOSE_FEATURE:
            return (0x0400).to_bytes(2, "little")
        return super().read_value(connection, uuid)

    def write_value(self, connection: ServerConnection, uuid: int, data: bytes) -> None:
        if uuid != RECORD_ACCESS_CONTROL_POINT:
            super().write_value(connection, uuid, data)
            return
        if not connection.cccd.get(RECORD_ACCESS_CONTROL_POINT, 0) & CCCD_INDICATE:
            raise AttError(
                "RACP write refused: Client Characteristic Configuration Descriptor improperly configured (0xFD)",
                code=ATT_CCCD_IMPROPERLY_CONFIGURED,
                address=self.address,
            )
        busy = self._procedure is not None and not self._procedure.done() and not self._answered
        if busy and data[:1] != bytes((ABORT_OPERATION,)):
            raise AttError(
                "RACP write refused: procedure already in progress (0xFE)",
                code=ATT_PROCEDURE_ALREADY_IN_PROGRESS,
                address=self.address,
            )
        loop = asyncio.get_running_loop()
        if data[:1] == bytes((ABORT_OPERATION,)):
            self._answered = False
            self._procedure = loop.create_task(self._abort(connection, self._procedure))
            return
        self._answered = False
        self._procedure = loop.create_task(self._run(connection, data))

    def closed(self, connection: ServerConnection) -> None:
        if self._procedure is not None:
            self._procedure.cancel()
            self._procedure = None
        super().closed(connection)

    async def _run(self, connection: ServerConnection, data: bytes) -> None:
        opcode = data[0] if data else 0
        try:
            request = parse_racp_request(data)
        except ValueError:
            await self._answer(connection, opcode, "invalid_operand")
            return
        self.requests.append(request)
        if request.operator == OPERATOR_GREATER_OR_EQUAL and request.min_sequence:
            # The gateway asks only for what follows what it already has: the older records count as sent.
            held = request.min_sequence - 1
            if self.last_sent_sequence is None or held > self.last_sent_sequence:
                self.last_sent_sequence = held
        if request.opcode not in (REPORT_STORED_RECORDS, REPORT_NUMBER_OF_STORED_RECORDS, DELETE_STORED_RECORDS):
            await self._answer(connection, request.opcode, "opcode_not_supported")
            return
        selected = self._select(request)
        if selected is None:
            await self._answer(connection, request.opcode, "operator_not_supported")
            return
        if request.opcode == REPORT_NUMBER_OF_STORED_RECORDS:
            await self._indicate(connection, encode_number_of_stored_records(len(selected)))
            return
        if request.opcode == DELETE_STORED_RECORDS:
            self.records = [r for r in self.records if r not in selected]
            await self._answer(connection, request.opcode, "success")
            return
        if not selected:
            await self._answer(connection, request.opcode, "no_records_found")
            return
        for record in selected:
            await self.send(connection, GLUCOSE_MEASUREMENT, record.measurement())
            if self.last_sent_sequence is None or record.sequence > self.last_sent_sequence:
                self.last_sent_sequence = record.sequence
            if record.has_context:
                await self.send(connection, GLUCOSE_MEASUREMENT_CONTEXT, record.context())
            await asyncio.sleep(self.record_interval_s)
        await self._answer(connection, request.opcode, "success")

    async def _abort(self, connection: ServerConnection, running: asyncio.Task[None] | None) -> None:
        if running is not None and not running.done():
            running.cancel()
            await asyncio.wait([running])
        await self._answer(connection, ABORT_OPERATION, "success")

    def _select(self, request: RacpRequest) -> list[GlucoseRecord] | None:
        if request.operator == OPERATOR_ALL:
            return list(self.records)
        if request.operator == OPERATOR_GREATER_OR_EQUAL and request.min_sequence is not None:
            return [r for r in self.records if r.sequence >= request.min_sequence]
        if request.operator == OPERATOR_FIRST:
            return self.records[:1]
        if request.operator == OPERATOR_LAST:
            return self.records[-1:]
        return None

    async def _answer(self, connection: ServerConnection, request_opcode: int, result: str) -> None:
        await self._indicate(connection, encode_response_code(request_opcode, result))

    async def _indicate(self, connection: ServerConnection, payload: bytes) -> None:
        self._answered = True
        try:
            await self.send(connection, RECORD_ACCESS_CONTROL_POINT, payload)
        except PeripheralClosed:
            return
