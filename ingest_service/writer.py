"""Writes one batch in one transaction: insert-once into readings (COPY, or a staging table when some readings were
stored before), dead letters, the rules on the newly stored readings, and a NOTIFY for the API."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

from ingest_service import metrics
from store import dead_letters, gateways
from store import readings as stored_readings
from store.dead_letters import DeadLetter
from store.events import notify_changes
from store.readings import ReadingRow
from vitals import KINDS, Kind, Reason, readings_topic


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """The readings this transaction inserted, column by column (what the rules take)."""

    ids: Sequence[UUID]
    patient_ids: Sequence[UUID]
    kinds: Sequence[str]
    values: Sequence[float]
    measured_at: Sequence[datetime]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, rows: Sequence[ReadingRow]) -> StoredBatch:
        if not rows:
            return cls((), (), (), (), ())
        return cls(
            [r.id for r in rows],
            [r.patient_id for r in rows],
            [r.kind for r in rows],
            [r.value for r in rows],
            [r.measured_at for r in rows],
        )


@dataclass(frozen=True, slots=True)
class BatchResult:
    staged: int
    stored: int
    dead_lettered_readings: int
    dead_letter_rows: int
    alarms_changed: int

    @property
    def duplicates(self) -> int:
        return self.staged - self.stored


RulesHook = Callable[[Connection[Any], StoredBatch], Sequence[UUID]]


def write_batch(
    conn: Connection[Any],
    rows: Sequence[ReadingRow],
    dead: Sequence[DeadLetter],
    rules: RulesHook | None = None,
) -> BatchResult:
    """Everything in one transaction: a crash anywhere leaves nothing half-written and nothing acknowledged."""
    stored = StoredBatch.of(())
    conflicts: list[DeadLetter] = []
    dead_rows = 0
    alarm_ids: Sequence[UUID] = ()
    with conn.transaction():
        if rows:
            stored, conflicts = _insert_new(conn, rows)
            dead = [*dead, *conflicts]
        if dead:
            dead_rows = dead_letters.insert(conn, dead)
        if stored and rules is not None:
            alarm_ids = rules(conn, stored)
        notify_changes(conn, "ingest", (), len(stored))  # the alarms' own notices went out with their changes
    if conflicts:
        metrics.DEAD_LETTERED.labels(reason=Reason.ID_CONFLICT.value).inc(len(conflicts))
    staged = len(rows) - len(conflicts)
    return BatchResult(staged, len(stored), sum(d.reading_count for d in dead), dead_rows, len(alarm_ids))


def _insert_new(conn: Connection[Any], rows: Sequence[ReadingRow]) -> tuple[StoredBatch, list[DeadLetter]]:
    """Insert each reading once; returns the ones this call stored and the dead letters of id conflicts.

    The common case, readings the table has never seen, goes by binary COPY straight into `reading_ids` and
    `readings`. A redelivered or replayed reading makes that COPY fail on a primary key; then the batch takes
    `_insert_known`, which stores only what is new and refuses an id re-sent with another time.
    """
    if stored_readings.copy_new(conn, rows):
        return StoredBatch.of(rows), []
    return _insert_known(conn, rows)


def _insert_known(conn: Connection[Any], rows: Sequence[ReadingRow]) -> tuple[StoredBatch, list[DeadLetter]]:
    """The batch holds ids seen before. Each id counts at the time it was first stored with (`reading_ids`): a copy
    at that time is a duplicate, skipped; a copy at another time is an `id_conflict` dead letter. Within the batch
    the first row of an id wins."""
    first: dict[UUID, datetime] = {}
    for row in rows:
        first.setdefault(row.id, row.measured_at)
    stored_at = stored_readings.claim_ids(conn, first)
    candidates = [row for row in rows if stored_at.get(row.id) == row.measured_at]
    conflicts = [
        _conflict(row, stored_at[row.id]) for row in rows if stored_at.get(row.id) not in (None, row.measured_at)
    ]
    if not candidates:
        return StoredBatch.of(()), conflicts
    inserted = stored_readings.insert_staged(conn, candidates)
    if len(inserted) == len(candidates):
        return StoredBatch.of(candidates), conflicts
    return StoredBatch.of(_first_of_each(candidates, inserted)), conflicts


def _conflict(row: ReadingRow, stored_at: datetime) -> DeadLetter:
    """The dead letter of a reading whose id is stored at another time: a stored reading is never moved in time
    (its alarms and trends were judged at that time), and a second row would count it twice."""
    reading_id, gateway_id, measured_at = row.id, row.gateway_id, row.measured_at
    doc = {
        "id": str(reading_id),
        "kind": row.kind,
        "value": row.value,
        "unit": KINDS[Kind(row.kind)].unit,
        "measured_at": measured_at.isoformat(),
        "device": {"address": row.device_address, "type": row.device_type, "model": row.device_model},
        "group": row.grp,
        "flags": list(row.flags),
    }
    detail = (
        f"reading id {reading_id} is stored with measured_at {stored_at.isoformat()}; this copy says "
        f"{measured_at.isoformat()}. The stored reading stays; a reading is not moved in time"
    )
    key = hashlib.sha256(f"id_conflict\0{reading_id}\0{measured_at.isoformat()}".encode()).digest()
    return DeadLetter(
        readings_topic(gateway_id),
        gateway_id,
        Reason.ID_CONFLICT.value,
        detail,
        None,
        reading_id,
        1,
        key,
        json.dumps(doc).encode(),
    )


def _first_of_each(rows: Sequence[ReadingRow], inserted_ids: set[UUID]) -> list[ReadingRow]:
    """The rows that were inserted: an id sent twice in one batch was stored once, from its first row (the staging
    table is read in COPY order, and ON CONFLICT keeps the first)."""
    kept = []
    for row in rows:
        if row.id in inserted_ids:
            inserted_ids.discard(row.id)
            kept.append(row)
    return kept


class SeenTracker:
    """Gateway and device bookkeeping (last seen, device registry) kept out of the readings transaction.

    Touching the same gateway rows in every batch's transaction made parallel workers queue behind each other's row
    locks until commit. Instead each worker touches them in a short transaction of its own before the batch, and only
    what it has not touched within `interval` seconds (a device seen for the first time always at once, so it is
    registered before its readings are visible).
    """

    def __init__(self, interval: float = 5.0) -> None:
        self._interval = interval
        self._touched: dict[tuple[str, str], float] = {}

    def due(self, rows: Sequence[ReadingRow], now: float) -> list[gateways.DeviceSeen]:
        latest: dict[tuple[str, str], ReadingRow] = {}
        for row in rows:
            key = (row.gateway_id, row.device_address)
            seen = latest.get(key)
            if seen is None or row.received_at > seen.received_at:
                latest[key] = row
        return [
            gateways.DeviceSeen(gw, addr, row.device_type, row.device_model, row.received_at)
            for (gw, addr), row in sorted(latest.items(), key=lambda item: item[0])
            if now - self._touched.get((gw, addr), -1e18) >= self._interval
        ]

    def touch(self, conn: Connection[Any], rows: Sequence[ReadingRow], now: float) -> int:
        """Update last-seen times and register new devices; returns the devices touched."""
        due = self.due(rows, now)
        if not due:
            return 0
        gateways.touch_seen(conn, due)
        for device in due:
            self._touched[(device.gateway_id, device.address)] = now
        return len(due)
