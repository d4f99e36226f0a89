"""Writes one batch in one transaction: insert-once into readings (COPY, or a staging table when some readings were
stored before), dead letters, the rules on the newly stored readings, and a NOTIFY for the API."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.errors import UniqueViolation

from ingest_service.judge import DeadLetter, ReadingRow

NOTIFY_CHANNEL = "varde_events"

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
    dead_rows = 0
    alarm_ids: Sequence[UUID] = ()
    with conn.transaction(), conn.cursor() as cur:
        if rows:
            stored = _insert_new(conn, cur, rows)
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
        if stored or alarm_ids:
            payload = json.dumps({"readings": len(stored), "alarms": [str(a) for a in alarm_ids][:100]})
            cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, payload))
    return BatchResult(len(rows), len(stored), sum(d.reading_count for d in dead), dead_rows, len(alarm_ids))


def _insert_new(conn: Connection[Any], cur: Any, rows: Sequence[ReadingRow]) -> StoredBatch:
    """Insert each reading once; returns the ones this call stored.

    The common case, readings the table has never seen, goes by binary COPY straight into `readings` (inside a
    savepoint). A redelivered or replayed reading makes that COPY fail on the primary key; then the batch goes
    through a staging table and `INSERT … ON CONFLICT DO NOTHING`, which stores only what is new.
    """
    try:
        with conn.transaction(), cur.copy(f"COPY readings ({STAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(STAGE_TYPES)
            for row in rows:
                copy.write_row(row)
        return StoredBatch.of(rows)
    except UniqueViolation:
        pass
    cur.execute("CREATE TEMP TABLE IF NOT EXISTS ingest_stage (LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    with cur.copy(f"COPY ingest_stage ({STAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(STAGE_TYPES)
        for row in rows:
            copy.write_row(row)
    cur.execute(
        f"INSERT INTO readings ({STAGE_COLUMNS}) SELECT {STAGE_COLUMNS} FROM ingest_stage "
        "ON CONFLICT DO NOTHING RETURNING id"
    )
    inserted = cur.fetchall()
    if len(inserted) == len(rows):
        return StoredBatch.of(rows)
    return StoredBatch.of(_first_of_each(rows, {r[0] for r in inserted}))


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
