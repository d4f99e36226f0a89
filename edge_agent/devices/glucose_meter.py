"""Glucose meters (Glucose Service 0x1808): stored records are fetched through the Record Access Control Point.

The first fetch asks for all records, later ones for sequence numbers above the last one committed (kept in the
device state). A record whose context (0x2A34) is announced is committed when the context arrives, so a link lost
between the two leaves the record to be fetched whole next time. Reading ids hash the meter's own time and sequence
number, so records fetched twice are stored once. The sequence cursor advances only over committed records: a full
outbox leaves the rest in the meter.
"""

from __future__ import annotations

import logging
from typing import NoReturn

from edge_agent.devices.base import DeviceHandler, Subscription
from edge_agent.devices.session import Incoming, Session
from edge_agent.gatt import (
    GlucoseContext,
    GlucoseMeasurement,
    NumberOfStoredRecords,
    RacpResult,
    ResponseCode,
    abort_operation,
    report_all_records,
    report_number_of_records,
    report_records_from,
)
from edge_agent.gatt.glucose import GLUCOSE_MEASUREMENT, GLUCOSE_MEASUREMENT_CONTEXT
from edge_agent.gatt.racp import RECORD_ACCESS_CONTROL_POINT
from edge_agent.link import ConnectionDroppedError, ConnectTimeoutError, GattOperationError, LinkError

GLUCOSE_SERVICE = 0x1808
_MAX_SEQUENCE = 0xFFFF
_FINISHED = (ResponseCode.SUCCESS, ResponseCode.NO_RECORDS_FOUND)

log = logging.getLogger(__name__)


class GlucoseMeterHandler(DeviceHandler):
    device_type = "glucose_meter"
    service_uuid = GLUCOSE_SERVICE
    subscriptions = (
        Subscription(GLUCOSE_MEASUREMENT_CONTEXT, optional=True),
        Subscription(GLUCOSE_MEASUREMENT),
        Subscription(RECORD_ACCESS_CONTROL_POINT),
    )

    async def transfer(self, session: Session) -> None:
        await self.subscribe(session)
        last = session.state.last_sequence
        start = None if last is None or last >= _MAX_SEQUENCE else last + 1
        count = await self._count(session, start)
        if count == 0:
            return
        await session.write(
            RECORD_ACCESS_CONTROL_POINT, report_all_records() if start is None else report_records_from(start)
        )
        await _RecordTransfer(session).run()

    async def _count(self, session: Session, start: int | None) -> int | None:
        """Stored records from `start` on; None when the meter does not answer the question (then just fetch)."""
        await session.write(RECORD_ACCESS_CONTROL_POINT, report_number_of_records(start))
        while True:
            item = await session.receive(session.timing.racp_timeout_s)
            if item is None:
                _raise_incomplete(session, "the number of stored records")
            decoded = session.decode(item)
            if isinstance(decoded, NumberOfStoredRecords):
                return decoded.count
            if isinstance(decoded, RacpResult):
                log.info("racp_count_unsupported address=%s code=%s", session.device.address, decoded.code.name)
                return None


class _RecordTransfer:
    """Collects one "report stored records" procedure, committing each record once it is complete."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: tuple[GlucoseMeasurement, Incoming] | None = None
        self.blocked = False

    async def run(self) -> None:
        session = self.session
        while True:
            item = await session.receive(session.timing.racp_timeout_s)
            if item is None:
                if not session.link_lost:
                    await self._abort()
                _raise_incomplete(session, "stored glucose records")
            decoded = session.decode(item)
            if isinstance(decoded, GlucoseMeasurement):
                self._flush()
                if decoded.context_follows:
                    self.pending = (decoded, item)
                else:
                    self._commit(decoded, item, ())
            elif isinstance(decoded, GlucoseContext):
                if self.pending is not None and self.pending[0].sequence == decoded.sequence:
                    measurement, first = self.pending
                    self.pending = None
                    self._commit(measurement, first, decoded.flags())
            elif isinstance(decoded, RacpResult):
                self._flush()
                if decoded.code in _FINISHED:
                    return
                raise GattOperationError(
                    f"the meter refused the record request: {decoded.code.name}", address=session.device.address
                )

    def _flush(self) -> None:
        """A record whose announced context never came is committed without it."""
        if self.pending is not None:
            measurement, item = self.pending
            self.pending = None
            self._commit(measurement, item, ())

    def _commit(self, record: GlucoseMeasurement, item: Incoming, flags: tuple[str, ...]) -> None:
        if self.blocked:
            return
        result = self.session.commit(record.measurements, item.received_at, flags)
        if result is not None and result.refused:
            self.blocked = True
            log.error(
                "glucose_records_left_on_meter address=%s from_sequence=%d reason=outbox_full",
                self.session.device.address,
                record.sequence,
            )
            return
        state = self.session.state
        if state.last_sequence is None or record.sequence > state.last_sequence:
            state.last_sequence = record.sequence

    async def _abort(self) -> None:
        try:
            await self.session.write(RECORD_ACCESS_CONTROL_POINT, abort_operation())
        except LinkError as exc:
            log.info("racp_abort_failed address=%s error=%s", self.session.device.address, exc)


def _raise_incomplete(session: Session, what: str) -> NoReturn:
    address = session.device.address
    if session.link_lost:
        raise ConnectionDroppedError(f"link lost while receiving {what}", address=address)
    raise ConnectTimeoutError(f"the meter stopped sending {what}", address=address)
