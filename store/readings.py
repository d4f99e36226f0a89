"""The `readings` table: storing new readings exactly once (`ReadingRow`, by binary COPY, or through a staging table
when some ids were stored before), one patient's stored readings
over a time range as columns, for code that replays them (the threshold editor's what-if), and as the API shows
them (`MeasurementRow` pages newest first, `NewestReading` per kind, the kinds measured lately). Which readings to
store and which to refuse is ingest's (`ingest_service.writer`); this module only moves rows. Last-seen bookkeeping
is `store.gateways`'; trend buckets are `store.trends`'."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.errors import UniqueViolation
from psycopg.rows import class_row, scalar_row


@dataclass(frozen=True, slots=True)
class StoredReading:
    """A stored reading with its device, as the FHIR mapping reads it (`clinician_api.fhir.ReadingRow` is this)."""

    id: UUID
    patient_id: UUID
    gateway_id: str
    kind: str
    value: float
    measured_at: datetime
    received_at: datetime
    device_address: str | None
    device_type: str | None
    device_model: str | None
    group: str | None
    flags: Sequence[str] = ()


READING_COLUMNS = sql.SQL(
    "{alias}.id, {alias}.patient_id, {alias}.gateway_id, {alias}.kind, {alias}.value, {alias}.measured_at, "
    '{alias}.received_at, {alias}.device_address, {alias}.device_type, {alias}.device_model, {alias}.grp AS "group", '
    "{alias}.flags"
)
"""The columns of `StoredReading`, over the readings table as `alias`."""


def reading_columns(alias: str) -> sql.Composed:
    return READING_COLUMNS.format(alias=sql.Identifier(alias))


class ReadingRow(NamedTuple):
    """A new reading as `readings` stores it, in `STAGE_COLUMNS` order (COPY writes the tuple as it is)."""

    id: UUID
    patient_id: UUID
    gateway_id: str
    kind: str
    value: float
    measured_at: datetime
    received_at: datetime
    device_address: str
    device_type: str
    device_model: str | None
    grp: str | None
    flags: list[str]


STAGE_COLUMNS = ", ".join(ReadingRow._fields)
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
_COLUMNS = sql.SQL(STAGE_COLUMNS)
_COPY_IDS = "COPY reading_ids (id, measured_at) FROM STDIN (FORMAT BINARY)"
_COPY_READINGS = sql.SQL("COPY readings ({}) FROM STDIN (FORMAT BINARY)").format(_COLUMNS)
_CLAIM_IDS = (
    "INSERT INTO reading_ids (id, measured_at) SELECT * FROM unnest(%s::uuid[], %s::timestamptz[]) "
    "ON CONFLICT (id) DO NOTHING"
)
_STORED_AT = "SELECT id, measured_at FROM reading_ids WHERE id = ANY(%s)"
_STAGE = "CREATE TEMP TABLE IF NOT EXISTS ingest_stage (LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
_COPY_STAGE = sql.SQL("COPY ingest_stage ({}) FROM STDIN (FORMAT BINARY)").format(_COLUMNS)
_FROM_STAGE = sql.SQL(
    "INSERT INTO readings ({}) SELECT {} FROM ingest_stage ON CONFLICT DO NOTHING RETURNING id"
).format(_COLUMNS, _COLUMNS)

_RANGE_SQL = (
    "SELECT kind, value, extract(epoch FROM measured_at)::bigint FROM readings "
    "WHERE patient_id = %s AND measured_at >= %s AND measured_at < %s ORDER BY measured_at, kind LIMIT %s"
)
"""Served by `readings_patient_kind_time_idx` (patient_id, kind, measured_at) per kind."""
_NEWEST_PER_KIND = (
    "SELECT k.kind, l.value, l.measured_at, l.id FROM unnest(%s::text[]) AS k(kind) CROSS JOIN LATERAL "
    "(SELECT r.id, r.value, r.measured_at FROM readings r WHERE r.patient_id = %s AND r.kind = k.kind "
    "ORDER BY r.measured_at DESC LIMIT 1) AS l"
)
_MEASURED_LATELY = (
    "SELECT k.kind FROM unnest(%s::text[]) AS k(kind) WHERE EXISTS (SELECT 1 FROM readings r "
    "WHERE r.patient_id = %s AND r.kind = k.kind AND r.measured_at > now() - interval '90 days')"
)


def copy_new(conn: psycopg.Connection[Any], rows: Sequence[ReadingRow]) -> bool:
    """Store readings none of whose ids the table has seen, by binary COPY into `reading_ids` and `readings`, in a
    savepoint of the caller's transaction. False, with nothing stored, when an id was stored before."""
    try:
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy(_COPY_IDS) as copy:
                copy.set_types(["uuid", "timestamptz"])
                for row in rows:
                    copy.write_row((row.id, row.measured_at))
            with cur.copy(_COPY_READINGS) as copy:
                copy.set_types(STAGE_TYPES)
                for row in rows:
                    copy.write_row(row)
    except UniqueViolation:
        return False
    return True


def claim_ids(conn: psycopg.Connection[Any], measured_at: Mapping[UUID, datetime]) -> dict[UUID, datetime]:
    """Claim each id at its time where no reading holds it yet; returns the time each id is stored with now (the
    claim's or an earlier one's). The read is a statement of its own, so its snapshot sees ids another worker
    committed while the claim waited."""
    ids = list(measured_at)
    with conn.cursor() as cur:
        cur.execute(_CLAIM_IDS, (ids, [measured_at[i] for i in ids]))
        cur.execute(_STORED_AT, (ids,))
        return dict(cur.fetchall())


def insert_staged(conn: psycopg.Connection[Any], rows: Sequence[ReadingRow]) -> set[UUID]:
    """Insert readings through a staging table, skipping any already stored; returns the ids this call inserted
    (of an id given twice, the first row: the staging table is read in COPY order)."""
    with conn.cursor() as cur:
        cur.execute(_STAGE)
        with cur.copy(_COPY_STAGE) as copy:
            copy.set_types(STAGE_TYPES)
            for row in rows:
                copy.write_row(row)
        cur.execute(_FROM_STAGE)
        return {reading_id for (reading_id,) in cur.fetchall()}


@dataclass(frozen=True, slots=True)
class PatientReadings:
    """Readings in time order: kind name, value in the canonical unit, measured_at in epoch seconds."""

    kinds: list[str]
    values: list[float]
    measured_at: list[int]
    truncated: bool
    """More readings lay in the range than the limit asked for (the newest are left out)."""

    def __len__(self) -> int:
        return len(self.kinds)


def patient_readings(
    conn: psycopg.Connection[Any], patient_id: UUID, since: datetime, until: datetime, *, limit: int
) -> PatientReadings:
    """The patient's readings with `since <= measured_at < until`, oldest first, at most `limit`."""
    rows = conn.execute(_RANGE_SQL, (patient_id, since, until, limit + 1)).fetchall()
    truncated = len(rows) > limit
    kinds, values, measured_at = (list(c) for c in zip(*rows[:limit], strict=True)) if rows else ([], [], [])
    return PatientReadings(kinds, [float(v) for v in values], [int(t) for t in measured_at], truncated=truncated)


@dataclass(frozen=True, slots=True)
class MeasurementRow:
    id: UUID
    kind: str
    value: float
    measured_at: datetime
    received_at: datetime
    device_address: str
    device_type: str
    device_model: str | None
    flags: list[str]
    gateway_id: str
    grp: str | None


def page(
    conn: psycopg.Connection[Any],
    patient_id: UUID,
    *,
    kind: str | None,
    since: datetime | None,
    until: datetime | None,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[MeasurementRow]:
    """Up to `limit` of the patient's readings (of one kind, with `since <= measured_at < until` where given), newest
    first, before the key `before` (measured_at, id) of the previous page's last row."""
    where: list[sql.Composable] = [sql.SQL("patient_id = %s")]
    params: list[Any] = [patient_id]
    if kind:
        where.append(sql.SQL("kind = %s"))
        params.append(kind)
    if since:
        where.append(sql.SQL("measured_at >= %s"))
        params.append(since)
    if until:
        where.append(sql.SQL("measured_at < %s"))
        params.append(until)
    if before is not None:
        where.append(sql.SQL("(measured_at, id) < (%s, %s)"))
        params += list(before)
    query = sql.SQL(
        "SELECT id, kind, value, measured_at, received_at, device_address, device_type, "
        "device_model, flags, gateway_id, grp FROM readings WHERE {} ORDER BY measured_at DESC, id "
        "DESC LIMIT %s"
    ).format(sql.SQL(" AND ").join(where))
    with conn.cursor(row_factory=class_row(MeasurementRow)) as cur:
        return cur.execute(query, [*params, limit]).fetchall()


@dataclass(frozen=True, slots=True)
class NewestReading:
    kind: str
    value: float
    measured_at: datetime
    id: UUID


def newest_per_kind(conn: psycopg.Connection[Any], patient_id: UUID, kinds: Sequence[str]) -> list[NewestReading]:
    """The patient's newest reading of each of `kinds` it has any of (one index probe per kind), in no order."""
    with conn.cursor(row_factory=class_row(NewestReading)) as cur:
        return cur.execute(_NEWEST_PER_KIND, (list(kinds), patient_id)).fetchall()


def kinds_measured_lately(conn: psycopg.Connection[Any], patient_id: UUID, kinds: Sequence[str]) -> set[str]:
    """Which of `kinds` the patient has readings of in the last 90 days."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return set(cur.execute(_MEASURED_LATELY, (list(kinds), patient_id)).fetchall())


@dataclass(frozen=True, slots=True)
class ReadingPoint:
    kind: str
    value: float
    measured_at: datetime


def points_since(conn: psycopg.Connection[Any], patient_id: UUID, since: datetime) -> list[ReadingPoint]:
    """The patient's readings measured since `since` (and at most five minutes ahead of the clock), by kind, oldest
    first."""
    with conn.cursor(row_factory=class_row(ReadingPoint)) as cur:
        return cur.execute(
            "SELECT kind, value, measured_at FROM readings WHERE patient_id = %s AND measured_at >= %s "
            "AND measured_at <= now() + interval '5 minutes' ORDER BY kind, measured_at, id",
            (patient_id, since),
        ).fetchall()


def points_between(
    conn: psycopg.Connection[Any], patient_id: UUID, kinds: Sequence[str], start: datetime, end: datetime
) -> list[ReadingPoint]:
    """The patient's readings of `kinds` measured from `start` up to (not including) `end`, by kind, oldest first."""
    with conn.cursor(row_factory=class_row(ReadingPoint)) as cur:
        return cur.execute(
            "SELECT kind, measured_at, value FROM readings WHERE patient_id = %s AND kind = ANY(%s) "
            "AND measured_at >= %s AND measured_at < %s ORDER BY kind, measured_at",
            (patient_id, list(kinds), start, end),
        ).fetchall()


@dataclass(frozen=True, slots=True)
class MeasuredAt:
    kind: str
    measured_at: datetime


def measured_since(conn: psycopg.Connection[Any], patient_id: UUID, since: datetime) -> list[MeasuredAt]:
    """When the patient measured which kind since `since`, oldest first."""
    with conn.cursor(row_factory=class_row(MeasuredAt)) as cur:
        return cur.execute(
            "SELECT kind, measured_at FROM readings WHERE patient_id = %s AND measured_at >= %s ORDER BY measured_at",
            (patient_id, since),
        ).fetchall()


__all__ = [
    "READING_COLUMNS",
    "STAGE_COLUMNS",
    "STAGE_TYPES",
    "MeasuredAt",
    "MeasurementRow",
    "NewestReading",
    "PatientReadings",
    "ReadingPoint",
    "ReadingRow",
    "StoredReading",
    "claim_ids",
    "copy_new",
    "insert_staged",
    "kinds_measured_lately",
    "measured_since",
    "newest_per_kind",
    "page",
    "patient_readings",
    "points_between",
    "points_since",
    "reading_columns",
]
