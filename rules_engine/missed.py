"""Missed measurements: a scheduled measurement not taken by its deadline (patient's local time) opens a
`missed.<kind>` alarm. One set-based query per run over every active plan, never one job per patient.

A kind scheduled several times a day splits the day at its deadlines (as the gateway's schedule does): the 20:00
measurement is missed when nothing was measured between the 08:00 deadline and 20:00. The schedule judged is the
one in force: while a step-up lasts (`rules_engine.schedules`), the stepped-up one.

The reminder before the deadline is the gateway's own job: it holds the plan's schedule and shows it, also offline.
Each deadline is judged once: a later run finds it already recorded on the alarm (`last_missed_at`) and skips it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

from rules_engine.alarms import AlarmUpsert, upsert_alarms
from store.events import notify_changes
from vitals import KINDS, Kind

_MISSED_SQL = """
WITH scheduled AS (
    SELECT pl.patient_id, s->>'kind' AS kind, (s->>'deadline')::time AS deadline, s->'weekdays' AS weekdays,
           zone.tz, (%(now)s::timestamptz AT TIME ZONE zone.tz)::date AS local_day
    FROM self_management_plans pl
    JOIN patients p ON p.id = pl.patient_id AND p.active
    LEFT JOIN patient_schedules ps ON ps.patient_id = pl.patient_id AND ps.plan_id = pl.id
    CROSS JOIN LATERAL jsonb_array_elements(coalesce(ps.body, pl.body)->'schedule') AS s
    CROSS JOIN LATERAL (SELECT coalesce(pl.body->>'timezone', p.timezone) AS tz) AS zone
    WHERE pl.status = 'active'
), due AS (
    SELECT patient_id, kind, deadline, local_day,
           (local_day + deadline) AT TIME ZONE tz AS deadline_at,
           coalesce(lag((local_day + deadline) AT TIME ZONE tz)
                        OVER (PARTITION BY patient_id, kind, local_day ORDER BY deadline),
                    local_day::timestamp AT TIME ZONE tz) AS window_start
    FROM scheduled
    WHERE weekdays ? (ARRAY['mon','tue','wed','thu','fri','sat','sun'])[extract(isodow FROM local_day)::int]
)
SELECT d.patient_id, d.kind, d.deadline, d.local_day, d.deadline_at, d.window_start
FROM due d
WHERE d.deadline_at <= %(now)s AND d.deadline_at > %(now)s::timestamptz - interval '1 day'
  AND NOT EXISTS (
      SELECT 1 FROM readings r
      WHERE r.patient_id = d.patient_id AND r.kind = d.kind
        AND r.measured_at >= d.window_start AND r.measured_at <= d.deadline_at)
  AND NOT EXISTS (
      SELECT 1 FROM alarms a
      WHERE a.patient_id = d.patient_id AND a.rule = 'missed.' || d.kind
        AND CASE WHEN a.details ? 'last_missed_at' THEN (a.details->>'last_missed_at')::timestamptz >= d.deadline_at
                 ELSE a.details->>'last_missed_day' = d.local_day::text END)
ORDER BY d.deadline_at
"""


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def explain_missed(kind: Kind, deadline: str, day: date) -> tuple[str, str]:
    info = KINDS[kind]
    return (
        f"Ingen måling av {_lower_first(info.name_nb)} {day:%d.%m.} før kl. {deadline} (planen)",
        f"No {_lower_first(info.name_en)} measurement on {day:%Y-%m-%d} by {deadline} (plan schedule)",
    )


def find_missed(conn: Connection[Any], now: datetime | None = None) -> list[AlarmUpsert]:
    rows = conn.execute(_MISSED_SQL, {"now": now or datetime.now(UTC)}).fetchall()
    out: list[AlarmUpsert] = []
    for patient_id, kind, deadline, local_day, deadline_at, window_start in rows:
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
                count=1,
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


def record_missed(conn: Connection[Any], now: datetime | None = None) -> list[UUID]:
    """Open or update `missed.<kind>` alarms for every scheduled measurement past its deadline in the last day."""
    with conn.transaction():
        changed = upsert_alarms(conn, find_missed(conn, now))
        notify_changes(conn, "missed", changed)
    return changed
