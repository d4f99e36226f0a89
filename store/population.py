"""How a care team's patients fare, as typed rows: the population overview (each patient's worst alarm now, in the
last days and the days before, and alarms opened in the period), adherence to the active plan's measurement
schedule, and the alarm burden (patient-weeks of follow-up, alarms and cleared repeat requests per team and rule).

Read-only. What the figures mean (zones, trends, per-week rates) is `clinician_api.population`'s and
`clinician_api.burden`'s; this module only counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import class_row, scalar_row

_SCORE = "CASE a.severity WHEN 'red' THEN 2 WHEN 'yellow' THEN 1 ELSE 0 END"
"""An alarm's severity as a score: red 2, yellow 1, anything else 0."""

_ADHERENCE_SQL = """
WITH sched AS (
    SELECT pl.patient_id, s->>'kind' AS kind, s->'weekdays' AS weekdays, (s->>'deadline')::time AS deadline,
           coalesce(pl.body->>'timezone', p.timezone) AS tz
    FROM self_management_plans pl JOIN patients p ON p.id = pl.patient_id
    CROSS JOIN LATERAL jsonb_array_elements(coalesce(pl.body->'schedule', '[]'::jsonb)) AS s
    WHERE pl.status = 'active' AND pl.patient_id = ANY(%(ids)s::uuid[])
), planned AS (
    SELECT sc.patient_id, sc.kind, sc.tz, d.day
    FROM sched sc
    CROSS JOIN LATERAL (SELECT g::date AS day FROM generate_series((%(start)s AT TIME ZONE sc.tz)::date,
                        (%(end)s AT TIME ZONE sc.tz)::date, interval '1 day') AS g) AS d
    WHERE sc.weekdays ? (ARRAY['mon','tue','wed','thu','fri','sat','sun'])[extract(isodow FROM d.day)::int]
      AND (d.day + sc.deadline) AT TIME ZONE sc.tz > %(start)s
      AND (d.day + sc.deadline) AT TIME ZONE sc.tz <= %(end)s
)
SELECT pd.patient_id, count(*) AS planned,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM readings r WHERE r.patient_id = pd.patient_id
           AND r.kind = pd.kind AND r.measured_at >= pd.day::timestamp AT TIME ZONE pd.tz
           AND r.measured_at < (pd.day + 1)::timestamp AT TIME ZONE pd.tz)) AS taken
FROM planned pd GROUP BY pd.patient_id
"""

_OVERVIEW_SQL = (
    "\nSELECT p.id AS patient_id, p.display_name AS name, p.team_id, t.name AS team_name,\n       (SELECT "
    "coalesce(max({score}), 0) FROM alarms a WHERE a.patient_id = p.id AND a.state <> 'resolved') AS open_score,\n"
    "       (SELECT coalesce(max({score}), 0) FROM alarms a WHERE a.patient_id = p.id AND a.opened_at < %(now)s\n"
    "            AND coalesce(a.resolved_at, 'infinity') >= %(now)s - make_interval(days => {days})) AS last_score,\n"
    "       (SELECT coalesce(max({score}), 0) FROM alarms a WHERE a.patient_id = p.id\n"
    "            AND a.opened_at < %(now)s - make_interval(days => {days})\n"
    "            AND coalesce(a.resolved_at, 'infinity') >= %(now)s - make_interval(days => {twice}))"
    " AS before_score,\n"
    "       (SELECT count(*) FROM alarms a WHERE a.patient_id = p.id AND a.opened_at >= %(start)s\n"
    "            AND a.opened_at < %(now)s) AS alarms\nFROM patients p JOIN care_teams t ON t.id = p.team_id\n"
    "WHERE p.active AND p.team_id = ANY(%(teams)s::uuid[])\nORDER BY t.name, p.display_name, p.id\n"
)

_EXPOSURE_SQL = (
    "SELECT c.id AS team_id, c.name AS team, count(f.id) AS patients, "
    "COALESCE(sum(extract(epoch FROM f.until - f.since)), 0) AS seconds "
    "FROM care_teams c LEFT JOIN LATERAL ("
    " SELECT p.id, greatest(p.created_at, %(from)s) AS since, "
    "  CASE WHEN p.active THEN %(to)s ELSE (SELECT max(r.measured_at) FROM readings r WHERE r.patient_id = p.id "
    "   AND r.measured_at >= %(from)s AND r.measured_at < %(to)s) END AS until "
    " FROM patients p WHERE p.team_id = c.id AND p.created_at < %(to)s) f ON f.until > f.since "
    "WHERE c.id = ANY(%(teams)s::uuid[]) GROUP BY c.id, c.name ORDER BY c.name"
)
_RULE_ALARMS_SQL = (
    "SELECT p.team_id, a.rule, count(*) AS alarms, count(*) FILTER (WHERE a.severity = 'red') AS red FROM alarms a "
    "JOIN patients p ON p.id = a.patient_id WHERE p.team_id = ANY(%(teams)s::uuid[]) "
    "AND a.opened_at >= %(from)s AND a.opened_at < %(to)s GROUP BY p.team_id, a.rule"
)
_CLEARED_SQL = (
    "SELECT p.team_id, q.rule, count(*) AS cleared FROM repeat_requests q JOIN patients p ON p.id = q.patient_id "
    "WHERE p.team_id = ANY(%(teams)s::uuid[]) AND q.state = 'cleared' "
    "AND q.measured_at >= %(from)s AND q.measured_at < %(to)s GROUP BY p.team_id, q.rule"
)


@dataclass(frozen=True, slots=True)
class OverviewRow:
    """An active patient of the teams, with the worst alarm score (red 2, yellow 1, else 0) over three spans."""

    patient_id: UUID
    name: str
    team_id: UUID
    team_name: str
    open_score: int
    """Of the unresolved alarms."""
    last_score: int
    """Of the alarms active at some time in the last `trend_days`."""
    before_score: int
    """Of the alarms active at some time in the `trend_days` before those."""
    alarms: int
    """Alarms opened in [start, now)."""


@dataclass(frozen=True, slots=True)
class AdherenceRow:
    patient_id: UUID
    planned: int
    """Planned measurements whose deadline fell in the period."""
    taken: int
    """Of those, the ones with a reading of their kind that local day."""


@dataclass(frozen=True, slots=True)
class TeamExposure:
    team_id: UUID
    team: str
    patients: int
    """Patients followed some time in the period."""
    seconds: Decimal
    """Their time followed within the period, summed."""


@dataclass(frozen=True, slots=True)
class RuleAlarms:
    team_id: UUID
    rule: str
    alarms: int
    red: int


@dataclass(frozen=True, slots=True)
class ClearedRepeats:
    team_id: UUID
    rule: str
    cleared: int
    """Repeat requests an in-range repeat cleared (alarms that never were)."""


def overview(
    conn: Connection[Any], team_ids: Sequence[UUID], now: datetime, start: datetime, trend_days: int
) -> list[OverviewRow]:
    """The teams' active patients by team name, then patient name."""
    query = sql.SQL(_OVERVIEW_SQL).format(
        score=sql.SQL(_SCORE), days=sql.Literal(trend_days), twice=sql.Literal(2 * trend_days)
    )
    with conn.cursor(row_factory=class_row(OverviewRow)) as cur:
        return cur.execute(query, {"teams": list(team_ids), "now": now, "start": start}).fetchall()


def adherence(conn: Connection[Any], patient_ids: Sequence[UUID], start: datetime, end: datetime) -> list[AdherenceRow]:
    """Planned and taken measurements over [start, end) of the patients with an active plan that planned any."""
    with conn.cursor(row_factory=class_row(AdherenceRow)) as cur:
        return cur.execute(_ADHERENCE_SQL, {"ids": list(patient_ids), "start": start, "end": end}).fetchall()


def all_team_ids(conn: Connection[Any]) -> list[UUID]:
    """Every care team, by name."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute("SELECT id FROM care_teams ORDER BY name").fetchall()


def _period(team_ids: Sequence[UUID], since: datetime, until: datetime) -> dict[str, Any]:
    return {"teams": list(team_ids), "from": since, "to": until}


def team_exposure(
    conn: Connection[Any], team_ids: Sequence[UUID], since: datetime, until: datetime
) -> list[TeamExposure]:
    """Each of the teams (by name) with its patients' time followed within [since, until): from the later of
    `since` and enrolment to `until`, for an inactive patient only up to its newest reading in the period."""
    with conn.cursor(row_factory=class_row(TeamExposure)) as cur:
        return cur.execute(_EXPOSURE_SQL, _period(team_ids, since, until)).fetchall()


def rule_alarms(conn: Connection[Any], team_ids: Sequence[UUID], since: datetime, until: datetime) -> list[RuleAlarms]:
    """Alarms opened in [since, until) per team and rule, and how many of them red."""
    with conn.cursor(row_factory=class_row(RuleAlarms)) as cur:
        return cur.execute(_RULE_ALARMS_SQL, _period(team_ids, since, until)).fetchall()


def cleared_repeats(
    conn: Connection[Any], team_ids: Sequence[UUID], since: datetime, until: datetime
) -> list[ClearedRepeats]:
    """Repeat requests of readings measured in [since, until) cleared by an in-range repeat, per team and rule."""
    with conn.cursor(row_factory=class_row(ClearedRepeats)) as cur:
        return cur.execute(_CLEARED_SQL, _period(team_ids, since, until)).fetchall()


__all__ = [
    "AdherenceRow",
    "ClearedRepeats",
    "OverviewRow",
    "RuleAlarms",
    "TeamExposure",
    "adherence",
    "all_team_ids",
    "cleared_repeats",
    "overview",
    "rule_alarms",
    "team_exposure",
]
