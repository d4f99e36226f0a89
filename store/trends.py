"""Trend buckets (min, avg, max and count per hour, day or week in the patient's time zone) from one of two sources:
the `readings` table itself, or TimescaleDB's hourly continuous aggregate `readings_hourly` where a migration made it
(`0060_readings_hourly.timescale.sql`). Both give the same buckets; which one runs is decided per query here.

The aggregate holds UTC hours. Re-aggregating them into local hours, days and weeks is exact only where every
local bucket boundary is a whole UTC hour, i.e. where the zone's offset is a whole number of hours over the range;
for other zones (India, Nepal, Newfoundland, ...) and for the partial hours at the ends of the range the raw
readings are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import psycopg

TrendSource = Literal["readings", "hourly_aggregate"]
Bucket = Literal["hour", "day", "week"]
HOURLY_AGGREGATE = "readings_hourly"

# date_trunc in the patient's zone: day and week buckets start at local midnight (Monday), also across DST changes.
READINGS_SQL = (
    "SELECT date_trunc(%(bucket)s, measured_at, %(tz)s) AS b, min(value), avg(value), max(value), count(*) "
    "FROM readings WHERE patient_id = %(patient)s AND kind = %(kind)s "
    "AND measured_at >= %(start)s AND measured_at < %(end)s GROUP BY b ORDER BY b"
)

# Whole UTC hours inside [inner_start, inner_end) from the aggregate, the partial hours at either end from readings;
# then the same date_trunc as above over both.
HOURLY_AGGREGATE_SQL = (
    "WITH parts (t, lo, hi, total, n) AS ("
    f"SELECT bucket, min_value, max_value, sum_value, n FROM {HOURLY_AGGREGATE} "
    "WHERE patient_id = %(patient)s AND kind = %(kind)s AND bucket >= %(inner_start)s AND bucket < %(inner_end)s "
    "UNION ALL "
    "SELECT measured_at, value, value, value, 1 FROM readings "
    "WHERE patient_id = %(patient)s AND kind = %(kind)s AND measured_at >= %(start)s AND measured_at < %(end)s "
    "AND NOT (measured_at >= %(inner_start)s AND measured_at < %(inner_end)s)) "
    "SELECT date_trunc(%(bucket)s, t, %(tz)s) AS b, min(lo), sum(total) / sum(n)::double precision, max(hi), "
    "sum(n)::bigint FROM parts GROUP BY b ORDER BY b"
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


@dataclass(frozen=True, slots=True)
class TrendRows:
    source: TrendSource
    timezone: str
    rows: list[tuple[datetime, float, float, float, int]]


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
    rows = conn.execute(sql_for(chosen), params).fetchall()
    return TrendRows(chosen, timezone, [(r[0], r[1], r[2], r[3], r[4]) for r in rows])
