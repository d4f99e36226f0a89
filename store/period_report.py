"""What a patient's period summary report is read from, in the caller's transaction: the patient with their team and
the team's organisation (`ReportPatient`), the alarms open at some time in the period with who resolved them and
their notes (`ReportAlarm`), the plan versions created, activated or retired in it (`PlanChange`), and the
hand-overs proposed before its end and not decided before its start (`HandoverLine`), as typed rows. The readings
are `store.readings.points_between`'s, adherence `store.population`'s; what the report makes of them (zones,
adherence, the PDF) is `clinician_api.reports`'."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import class_row

_PATIENT = (
    "SELECT p.id, p.display_name AS name, p.national_id, p.birth_date, p.protocol, p.timezone, t.name AS team_name, "
    "o.id AS organisation_id, o.name AS organisation_name, o.org_number FROM patients p "
    "JOIN care_teams t ON t.id = p.team_id LEFT JOIN organisations o ON o.id = t.organisation_id WHERE p.id = %s"
)
_ALARMS = (
    "SELECT a.opened_at, a.severity, a.kind, a.explanation_nb, a.explanation_en, a.state, a.resolved_at, "
    "a.resolution, coalesce(nullif(u.display_name, ''), u.username) AS resolved_by, "
    "(SELECT coalesce(array_agg(e.data->>'text' ORDER BY e.at), '{}') FROM alarm_events e "
    " WHERE e.alarm_id = a.id AND e.event = 'note') AS notes "
    "FROM alarms a LEFT JOIN users u ON u.id = a.resolved_by WHERE a.patient_id = %s AND a.opened_at < %s "
    "AND coalesce(a.resolved_at, 'infinity') >= %s ORDER BY a.opened_at, a.id"
)
_PLAN_CHANGES = (
    "SELECT pl.version, pl.status, pl.created_at, pl.activated_at, pl.retired_at, "
    "coalesce(nullif(u.display_name, ''), u.username) AS by FROM self_management_plans pl "
    "LEFT JOIN users u ON u.id = pl.created_by WHERE pl.patient_id = %s AND ("
    "pl.created_at BETWEEN %s AND %s OR pl.activated_at BETWEEN %s AND %s OR pl.retired_at BETWEEN %s AND %s) "
    "ORDER BY pl.version"
)
_HANDOVERS = (
    "SELECT h.proposed_at, f.name AS from_team, t.name AS to_team, h.state, h.decided_at, h.situation, h.plan, "
    "h.watch FROM care_handovers h JOIN care_teams f ON f.id = h.from_team_id JOIN care_teams t ON t.id = h.to_team_id "
    "WHERE h.patient_id = %s AND h.proposed_at < %s AND coalesce(h.decided_at, 'infinity') >= %s "
    "ORDER BY h.proposed_at, h.id"
)


@dataclass(frozen=True, slots=True)
class ReportPatient:
    id: UUID
    name: str
    """The display name."""
    national_id: str | None
    birth_date: date | None
    protocol: str
    timezone: str
    team_name: str
    organisation_id: UUID | None
    """The team's organisation, with its name and number; None when the team belongs to none."""
    organisation_name: str | None
    org_number: str | None


@dataclass(frozen=True, slots=True)
class ReportAlarm:
    opened_at: datetime
    severity: str
    kind: str | None
    explanation_nb: str
    explanation_en: str
    state: str
    resolved_at: datetime | None
    resolution: str | None
    resolved_by: str | None
    """The display name (else the user name) of who resolved it."""
    notes: list[str]
    """The texts of its notes, oldest first."""


@dataclass(frozen=True, slots=True)
class PlanChange:
    version: int
    status: str
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None
    by: str | None
    """The display name (else the user name) of who created the version."""


@dataclass(frozen=True, slots=True)
class HandoverLine:
    proposed_at: datetime
    from_team: str
    to_team: str
    state: str
    decided_at: datetime | None
    situation: str
    plan: str
    watch: str


def patient(conn: Connection[Any], patient_id: UUID) -> ReportPatient | None:
    with conn.cursor(row_factory=class_row(ReportPatient)) as cur:
        return cur.execute(_PATIENT, (patient_id,)).fetchone()


def alarms(conn: Connection[Any], patient_id: UUID, start: datetime, end: datetime) -> list[ReportAlarm]:
    """Alarms opened before `end` and not resolved before `start`, oldest first."""
    with conn.cursor(row_factory=class_row(ReportAlarm)) as cur:
        return cur.execute(_ALARMS, (patient_id, end, start)).fetchall()


def plan_changes(conn: Connection[Any], patient_id: UUID, start: datetime, end: datetime) -> list[PlanChange]:
    """Plan versions created, activated or retired between `start` and `end` (both included), by version."""
    with conn.cursor(row_factory=class_row(PlanChange)) as cur:
        return cur.execute(_PLAN_CHANGES, (patient_id, start, end, start, end, start, end)).fetchall()


def handovers(conn: Connection[Any], patient_id: UUID, start: datetime, end: datetime) -> list[HandoverLine]:
    """Hand-overs proposed or decided in the period, oldest first."""
    with conn.cursor(row_factory=class_row(HandoverLine)) as cur:
        return cur.execute(_HANDOVERS, (patient_id, end, start)).fetchall()


__all__ = [
    "HandoverLine",
    "PlanChange",
    "ReportAlarm",
    "ReportPatient",
    "alarms",
    "handovers",
    "patient",
    "plan_changes",
]
