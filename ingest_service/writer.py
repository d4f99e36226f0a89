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

from psycopg import Connection, sql
from psycopg.errors import UniqueViolation

from ingest_service import metrics
from ingest_service.judge import DeadLetter, ReadingRow
from store.events import notify_changes
from vitals import KINDS, Kind, Reason, readings_topic

STAGE_COLUMNS = (
    "id, patient_id, gateway_id, kind, value, measured_at, received_at, device_address, device_type, "
    "device_model, grp, flags"
)
STAGE_TYPES = [
    "uuid",
    "uuid",
    "text",
    "text",
    "float8",
    "timestamptz",
    "timestamptz",
    "text",
    "text",
    "text",
    "text",
    "text[]",
]


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
        columns = list(zip(*rows, strict=True))
        return cls(columns[0], columns[1], columns[3], columns[4], columns[5])


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
    with conn.transaction(), conn.cursor() as cur:
        if rows:
            stored, conflicts = _insert_new(conn, cur, rows)
            dead = [*dead, *conflicts]
        if dead:
            cur.executemany(
                "INSERT INTO rejected_messages (topic, gateway_id, reason, detail, reading_index, reading_id, "
                "reading_count, dedupe_key, payload) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
                [
                    (
                        d.topic,
                        d.gateway_id,
                        d.reason,
                        d.detail,
                        d.reading_index,
                        d.reading_id,
                        d.reading_count,
                        d.dedupe_key,
                        d.payload,
                    )
                    for d in dead
                ],
                returning=True,
            )
            dead_rows = sum(1 for _ in _results(cur))
        if stored and rules is not None:
            alarm_ids = rules(conn, stored)
        notify_changes(conn, "ingest", (), len(stored))  # the alarms' own notices went out with their changes
    if conflicts:
        metrics.DEAD_LETTERED.labels(reason=Reason.ID_CONFLICT.value).inc(len(conflicts))
    staged = len(rows) - len(conflicts)
    return BatchResult(staged, len(stored), sum(d.reading_count for d in dead), dead_rows, len(alarm_ids))


def _insert_new(conn: Connection[Any], cur: Any, rows: Sequence[ReadingRow]) -> tuple[StoredBatch, list[DeadLetter]]:
    """Insert each reading once; returns the ones this call stored and the dead letters of id conflicts.

    The common case, readings the table has never seen, goes by binary COPY straight into `reading_ids` and
    `readings` (inside a savepoint). A redelivered or replayed reading makes that COPY fail on a primary key; then
    the batch takes `_insert_known`, which stores only what is new and refuses an id re-sent with another time.
    """
    try:
        with conn.transaction():
            with cur.copy("COPY reading_ids (id, measured_at) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["uuid", "timestamptz"])
                for row in rows:
                    copy.write_row((row[0], row[5]))
            with cur.copy(
                sql.SQL("COPY readings ({}) FROM STDIN (FORMAT BINARY)").format(sql.SQL(STAGE_COLUMNS))
            ) as copy:
                copy.set_types(STAGE_TYPES)
                for row in rows:
                    copy.write_row(row)
        return StoredBatch.of(rows), []
    except UniqueViolation:
        pass
    return _insert_known(cur, rows)


def _insert_known(cur: Any, rows: Sequence[ReadingRow]) -> tuple[StoredBatch, list[DeadLetter]]:
    """The batch holds ids seen before. Each id counts at the time it was first stored with (`reading_ids`): a copy
    at that time is a duplicate, skipped; a copy at another time is an `id_conflict` dead letter. Within the batch
    the first row of an id wins, as the staging table is read in COPY order."""
    first: dict[UUID, ReadingRow] = {}
    for row in rows:
        first.setdefault(row[0], row)
    ids = list(first)
    cur.execute(
        "INSERT INTO reading_ids (id, measured_at) SELECT * FROM unnest(%s::uuid[], %s::timestamptz[]) "
        "ON CONFLICT (id) DO NOTHING",
        (ids, [first[i][5] for i in ids]),
    )
    # A statement of its own: its snapshot sees ids another worker committed while the insert above waited.
    cur.execute("SELECT id, measured_at FROM reading_ids WHERE id = ANY(%s)", (ids,))
    stored_at: dict[UUID, datetime] = dict(cur.fetchall())
    candidates = [row for row in rows if stored_at.get(row[0]) == row[5]]
    conflicts = [_conflict(row, stored_at[row[0]]) for row in rows if stored_at.get(row[0]) not in (None, row[5])]
    if not candidates:
        return StoredBatch.of(()), conflicts
    cur.execute("CREATE TEMP TABLE IF NOT EXISTS ingest_stage (LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    with cur.copy(sql.SQL("COPY ingest_stage ({}) FROM STDIN (FORMAT BINARY)").format(sql.SQL(STAGE_COLUMNS))) as copy:
        copy.set_types(STAGE_TYPES)
        for row in candidates:
            copy.write_row(row)
    cur.execute(
        sql.SQL("INSERT INTO readings ({}) SELECT {} FROM ingest_stage ON CONFLICT DO NOTHING RETURNING id").format(
            sql.SQL(STAGE_COLUMNS), sql.SQL(STAGE_COLUMNS)
        )
    )
    inserted = cur.fetchall()
    if len(inserted) == len(candidates):
        return StoredBatch.of(candidates), conflicts
    return StoredBatch.of(_first_of_each(candidates, {r[0] for r in inserted})), conflicts


def _conflict(row: ReadingRow, stored_at: datetime) -> DeadLetter:
    """The dead letter of a reading whose id is stored at another time: a stored reading is never moved in time
    (its alarms and trends were judged at that time), and a second row would count it twice."""
    reading_id, gateway_id, measured_at = row[0], row[2], row[5]
    doc = {
        "id": str(reading_id),
        "kind": row[3],
        "value": row[4],
        "unit": KINDS[Kind(row[3])].unit,
        "measured_at": measured_at.isoformat(),
        "device": {"address": row[7], "type": row[8], "model": row[9]},
        "group": row[10],
        "flags": list(row[11]),
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
        if row[0] in inserted_ids:
            inserted_ids.discard(row[0])
            kept.append(row)
    return kept


def _results(cur: Any) -> Any:
    while True:
        if cur.pgresult is not None and cur.rowcount > 0:
            yield from cur.fetchall()
        if not cur.nextset():
            break


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

    def due(self, rows: Sequence[ReadingRow], now: float) -> list[tuple[str, str, str, str | None, datetime]]:
        latest: dict[tuple[str, str], tuple[str, str | None, datetime]] = {}
        for row in rows:
            key = (row[2], row[7])
            seen = latest.get(key)
            if seen is None or row[6] > seen[2]:
                latest[key] = (row[8], row[9], row[6])
        due = [
            (gw, addr, kind, model, at)
            for (gw, addr), (kind, model, at) in sorted(latest.items())
            if now - self._touched.get((gw, addr), -1e18) >= self._interval
        ]
        return due

    def touch(self, conn: Connection[Any], rows: Sequence[ReadingRow], now: float) -> int:
        """Update last-seen times and register new devices; returns the devices touched."""
        due = self.due(rows, now)
        if not due:
            return 0
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("UPDATE gateways SET last_seen_at = now() WHERE id = ANY(%s)", (sorted({d[0] for d in due}),))
            cur.executemany(
                "INSERT INTO devices (gateway_id, address, type, model, last_seen_at) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (gateway_id, address) DO UPDATE SET last_seen_at = GREATEST(devices.last_seen_at, "
                "EXCLUDED.last_seen_at), type = EXCLUDED.type, model = COALESCE(EXCLUDED.model, devices.model)",
                due,
            )
        for gw, addr, *_ in due:
            self._touched[(gw, addr)] = now
        return len(due)
