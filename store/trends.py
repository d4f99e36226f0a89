"""Trend buckets (min, avg, max and count per hour, day or week in the patient's time zone) from one of two sources:
the `readings` table itself, or the hourly aggregate `readings_hourly`: TimescaleDB's continuous aggregate
(`0060_readings_hourly.timescale.sql`) or, on plain PostgreSQL, the rollup table that triggers on `readings` keep in
the readings' own transaction (`0225_readings_hourly_rollup.postgres.sql`). Both give the same buckets; which one
runs is decided per query here. A 90-day trend of a 1 Hz oximeter reads ~2 200 hourly rows instead of 7.8 M readings.

The aggregate holds UTC hours. Re-aggregating them into local hours, days and weeks is exact only where every
local bucket boundary is a whole UTC hour, i.e. where the zone's offset is a whole number of hours over the range;
for other zones (India, Nepal, Newfoundland, ...) and for the partial hours at the ends of the range the raw
readings are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import args_row

TrendSource = Literal["readings", "hourly_aggregate"]
Bucket = Literal["hour", "day", "week"]
HOURLY_AGGREGATE = "readings_hourly"
"""The hourly aggregate (named in full in HOURLY_AGGREGATE_SQL, a fixed statement)."""

# date_trunc in the patient's zone: day and week buckets start at local midnight (Monday), also across DST changes.
READINGS_SQL = (
    "SELECT date_trunc(%(bucket)s, measured_at, %(tz)s) AS b, min(value), avg(value), max(value), count(*) "
    "FROM readings WHERE patient_id = %(patient)s AND kind = %(kind)s "
    "AND measured_at >= %(start)s AND measured_at < %(end)s GROUP BY b ORDER BY b"
)

# Whole UTC hours inside [inner_start, inner_end) from the aggregate, the partial hours at either end from readings;
# then the same date_trunc as above over both.
HOURLY_AGGREGATE_SQL = (
    "WITH parts (t, lo, hi, total, n) AS (SELECT bucket, min_value, max_value, sum_value, n "
    "FROM readings_hourly WHERE patient_id = %(patient)s AND kind = %(kind)s AND bucket >= %(inner_start)s "
    "AND bucket < %(inner_end)s UNION ALL SELECT measured_at, value, value, value, 1 FROM "
    "readings WHERE patient_id = %(patient)s AND kind = %(kind)s AND measured_at >= %(start)s "
    "AND measured_at < %(end)s AND NOT (measured_at >= %(inner_start)s AND measured_at < "
    "%(inner_end)s)) SELECT date_trunc(%(bucket)s, t, %(tz)s) AS b, min(lo), sum(total) / "
    "sum(n)::double precision, max(hi), sum(n)::bigint FROM parts GROUP BY b ORDER BY b"
)

# The patient's zone, whether the aggregate exists, and whether the zone's UTC offset is whole hours over the range.
# Sampled daily: an offset lasts for days or years between transitions, so the sample at the day after a change
# shows the new offset.
_PROBE_SQL = (
    "SELECT coalesce(p.timezone, 'UTC'), to_regclass(%(aggregate)s) IS NOT NULL, "
    "(SELECT bool_and(extract(epoch FROM (t AT TIME ZONE coalesce(p.timezone, 'UTC')) - (t AT TIME ZONE 'UTC'))"
    "::bigint %% 3600 = 0) FROM (SELECT generate_series(%(start)s::timestamptz, %(end)s::timestamptz, "
    "interval '1 day') UNION ALL SELECT %(end)s::timestamptz) AS s(t)) "
    "FROM patients p WHERE p.id = %(patient)s"
)


# An hour of the rollup against the same hour computed from the readings; a row on one side only counts too.
_DRIFT_SQL = sql.SQL(
    "WITH raw AS (SELECT patient_id, kind, date_trunc('hour', measured_at, 'UTC') AS bucket, "
    "min(value) AS lo, max(value) AS hi, sum(value) AS total, count(*) AS n FROM readings "
    "WHERE patient_id = ANY(%(patients)s) AND measured_at >= %(start)s AND measured_at < "
    "%(end)s GROUP BY 1, 2, 3), agg AS (SELECT patient_id, kind, bucket, min_value AS lo, "
    "max_value AS hi, sum_value AS total, n FROM {} WHERE patient_id = ANY(%(patients)s) AND "
    "bucket >= %(start)s AND bucket < %(end)s) SELECT coalesce(raw.patient_id, "
    "agg.patient_id), coalesce(raw.kind, agg.kind), coalesce(raw.bucket, agg.bucket), raw.lo, "
    "raw.hi, raw.total, raw.n, agg.lo, agg.hi, agg.total, agg.n FROM raw FULL JOIN agg USING "
    "(patient_id, kind, bucket) WHERE raw.n IS DISTINCT FROM agg.n OR raw.lo IS DISTINCT FROM "
    "agg.lo OR raw.hi IS DISTINCT FROM agg.hi OR abs(raw.total - agg.total) > 1e-9 * "
    "greatest(1, abs(raw.total)) OR agg.n IS NULL OR raw.n IS NULL ORDER BY 1, 2, 3"
).format(sql.SQL(HOURLY_AGGREGATE))


@dataclass(frozen=True, slots=True)
class HourDrift:
    """One UTC hour where the hourly aggregate and the readings disagree (None: no row on that side)."""

    patient_id: UUID
    kind: str
    bucket: datetime
    readings: tuple[float, float, float, int] | None
    aggregate: tuple[float, float, float, int] | None


def hourly_drift(
    conn: psycopg.Connection[Any], patient_ids: list[UUID], start: datetime, end: datetime
) -> list[HourDrift]:
    """The hours in [start, end) of these patients whose aggregate row differs from the readings' own min, max, sum
    and count (sums compared to 1e-9 relative: the aggregate adds partial sums). Empty when they agree.

    Start and end should be whole UTC hours; the aggregate counts whole hours only."""
    rows = conn.execute(_DRIFT_SQL, {"patients": patient_ids, "start": start, "end": end}).fetchall()
    return [
        HourDrift(
            r[0],
            r[1],
            r[2],
            None if r[6] is None else (r[3], r[4], r[5], r[6]),
            None if r[10] is None else (r[7], r[8], r[9], r[10]),
        )
        for r in rows
    ]


class TrendBucketRow(NamedTuple):
    """One bucket: its start in the patient's zone, min, avg, max and number of the readings in it (a named tuple, so
    the two sources' rows compare as plain tuples)."""

    start: datetime
    min: float
    avg: float
    max: float
    n: int


@dataclass(frozen=True, slots=True)
class TrendRows:
    source: TrendSource
    timezone: str
    rows: list[TrendBucketRow]


def choose_source(has_hourly_aggregate: bool, zone_in_whole_hours: bool) -> TrendSource:
    """The aggregate when the database has it (TimescaleDB) and it can answer exactly for this zone."""
    return "hourly_aggregate" if has_hourly_aggregate and zone_in_whole_hours else "readings"


def sql_for(source: TrendSource) -> str:
    return HOURLY_AGGREGATE_SQL if source == "hourly_aggregate" else READINGS_SQL


def whole_hours_inside(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The whole UTC hours within [start, end): first hour boundary at or after start, last at or before end."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    floor_start = start.replace(minute=0, second=0, microsecond=0)
    inner_start = floor_start if floor_start == start else floor_start + timedelta(hours=1)
    inner_end = end.replace(minute=0, second=0, microsecond=0)
    return inner_start, max(inner_start, inner_end)


def trend_rows(
    conn: psycopg.Connection[Any],
    patient_id: UUID,
    kind: str,
    bucket: Bucket,
    start: datetime,
    end: datetime,
    *,
    source: TrendSource | None = None,
) -> TrendRows:
    """Buckets of one kind for one patient in [start, end), from the source chosen for this database and zone
    (or the given one)."""
    probe = conn.execute(
        _PROBE_SQL, {"aggregate": HOURLY_AGGREGATE, "start": start, "end": end, "patient": patient_id}
    ).fetchone()
    timezone = str(probe[0]) if probe else "UTC"
    chosen = source or choose_source(bool(probe and probe[1]), bool(probe and probe[2]))
    inner_start, inner_end = whole_hours_inside(start, end)
    params = {
        "bucket": bucket,
        "tz": timezone,
        "patient": patient_id,
        "kind": kind,
        "start": start,
        "end": end,
        "inner_start": inner_start,
        "inner_end": inner_end,
    }
    with conn.cursor(row_factory=args_row(TrendBucketRow)) as cur:
        return TrendRows(chosen, timezone, cur.execute(sql_for(chosen), params).fetchall())
