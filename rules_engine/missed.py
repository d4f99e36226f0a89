"""Missed measurements: a scheduled measurement not taken by its deadline (patient's local time) opens a
`missed.<kind>` alarm. One set-based query per run over every active plan, never one job per patient.

A kind scheduled several times a day splits the day at its deadlines (as the gateway's schedule does): the 20:00
measurement is missed when nothing was measured between the 08:00 deadline and 20:00. The schedule judged is the
one in force: while a step-up lasts (`rules_engine.schedules`), the stepped-up one.

Each run looks back over the deadlines of the last `LOOKBACK` (local days, so a DST day has its own offsets), not
only today's: a rules service that was down, or a platform started after a deadline, still raises it. A deadline
before the schedule in force began (the plan version's activation, the latest step change, the episode's start) is
never judged, so a patient enrolled at noon is not missed for the morning. A reading counts by its measured time:
one measured by the deadline that reaches the platform late (a gateway offline) covers it if it is there when the
deadline is judged; one measured after the deadline does not (as the rule running at the deadline would have found).

The reminder before the deadline is the gateway's own job: it holds the plan's schedule and shows it, also offline.
Each deadline is judged once: a later run finds it already recorded on an alarm of the rule, open or resolved
(`last_missed_at`), and skips it; several missed in one run update one alarm, counted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from typing import Any
from uuid import UUID

from psycopg import Connection

from rules_engine.alarms import AlarmUpsert, upsert_alarms
from vitals import KINDS, Kind

LOOKBACK = timedelta(hours=48)
"""How far back a run judges deadlines."""

_MISSED_SQL = """
WITH scheduled AS (
    SELECT pl.patient_id, s->>'kind' AS kind, (s->>'deadline')::time AS deadline, s->'weekdays' AS weekdays,
           zone.tz, greatest(coalesce(pl.activated_at, pl.created_at), ps.changed_at, ep.started_at) AS judged_from
    FROM self_management_plans pl
    JOIN patients p ON p.id = pl.patient_id AND p.active
    LEFT JOIN patient_schedules ps ON ps.patient_id = pl.patient_id AND ps.plan_id = pl.id
    LEFT JOIN care_episodes ep ON ep.patient_id = pl.patient_id AND ep.status = 'active'
    CROSS JOIN LATERAL jsonb_array_elements(coalesce(ps.body, pl.body)->'schedule') AS s
    CROSS JOIN LATERAL (SELECT coalesce(pl.body->>'timezone', p.timezone) AS tz) AS zone
    WHERE pl.status = 'active'
), days AS (
    SELECT sc.*, day::date AS local_day
    FROM scheduled sc
    CROSS JOIN LATERAL generate_series(
        ((%(now)s::timestamptz - %(lookback)s::interval) AT TIME ZONE sc.tz)::date::timestamp,
        (%(now)s::timestamptz AT TIME ZONE sc.tz)::date::timestamp,
        interval '1 day') AS day
), due AS (
    SELECT patient_id, kind, deadline, local_day, judged_from,
           (local_day + deadline) AT TIME ZONE tz AS deadline_at,
           coalesce(lag((local_day + deadline) AT TIME ZONE tz)
                        OVER (PARTITION BY patient_id, kind, local_day ORDER BY deadline),
                    local_day::timestamp AT TIME ZONE tz) AS window_start
    FROM days
    WHERE weekdays ? (ARRAY['mon','tue','wed','thu','fri','sat','sun'])[extract(isodow FROM local_day)::int]
)
SELECT d.patient_id, d.kind, d.deadline, d.local_day, d.deadline_at, d.window_start
FROM due d
WHERE d.deadline_at <= %(now)s AND d.deadline_at > %(now)s::timestamptz - %(lookback)s::interval
  AND d.deadline_at >= d.judged_from
  AND NOT EXISTS (
      SELECT 1 FROM readings r
      WHERE r.patient_id = d.patient_id AND r.kind = d.kind
        AND r.measured_at >= d.window_start AND r.measured_at <= d.deadline_at)
  AND NOT EXISTS (
      SELECT 1 FROM alarms a
      WHERE a.patient_id = d.patient_id AND a.rule = 'missed.' || d.kind
        AND CASE WHEN a.details ? 'last_missed_at' THEN (a.details->>'last_missed_at')::timestamptz >= d.deadline_at
                 ELSE a.details->>'last_missed_day' = d.local_day::text END)
ORDER BY d.patient_id, d.kind, d.deadline_at
"""


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def explain_missed(kind: Kind, deadline: str, day: date) -> tuple[str, str]:
    info = KINDS[kind]
    return (
        f"Ingen måling av {_lower_first(info.name_nb)} {day:%d.%m.} før kl. {deadline} (planen)",
        f"No {_lower_first(info.name_en)} measurement on {day:%Y-%m-%d} by {deadline} (plan schedule)",
    )


def find_missed(
    conn: Connection[Any], now: datetime | None = None, lookback: timedelta = LOOKBACK
) -> list[AlarmUpsert]:
    """One candidate per patient and kind with a deadline missed in the `lookback` before `now` and not judged
    yet: the latest such deadline, `count` how many."""
    rows = conn.execute(_MISSED_SQL, {"now": now or datetime.now(UTC), "lookback": lookback}).fetchall()
    out: list[AlarmUpsert] = []
    for (patient_id, kind), group in groupby(rows, key=lambda r: (r[0], r[1])):
        missed = list(group)
        _, _, deadline, local_day, deadline_at, window_start = missed[-1]
        k = Kind(kind)
        hhmm = deadline.strftime("%H:%M")
        nb, en = explain_missed(k, hhmm, local_day)
        out.append(
            AlarmUpsert(
                patient_id=UUID(str(patient_id)),
                rule=f"missed.{kind}",
                kind=kind,
                severity="missed",
                value=None,
                limit=None,
                count=len(missed),
                reading_id=None,
                measured_at=None,
                window_start=window_start,
                window_end=deadline_at,
                explanation_nb=nb,
                explanation_en=en,
                details={
                    "last_missed_day": local_day.isoformat(),
                    "deadline": hhmm,
                    "last_missed_at": deadline_at.isoformat(),
                },
            )
        )
    return out


def record_missed(conn: Connection[Any], now: datetime | None = None, lookback: timedelta = LOOKBACK) -> list[UUID]:
    """Open or update `missed.<kind>` alarms for every scheduled measurement past its deadline in the `lookback`."""
    with conn.transaction():
        changed = upsert_alarms(conn, find_missed(conn, now, lookback), "missed")
    return changed
