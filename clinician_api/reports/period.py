"""What the period summary report of one patient holds, read in one transaction: the readings of each kind with the
patient's zone limits, the alarms and what was done about them, the plan's changes, adherence to the schedule, and
hand-overs (when the episodes' tables exist). Rendering is `reports.pdf`; delivery to the record is
`reports.document`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from psycopg import Connection

from clinician_api import population
from clinician_api.routes.thresholds import as_mapping
from rules_engine.profiles import KindLimits, effective_limits
from store import thresholds
from vitals import Kind


@dataclass(frozen=True, slots=True)
class PatientInfo:
    id: UUID
    name: str
    national_id: str | None
    birth_date: Any
    protocol: str
    timezone: str
    team_name: str
    organisation: tuple[Any, ...] | None
    """id, name, org_number of the team's organisation, when it has one."""


@dataclass(frozen=True, slots=True)
class AlarmLine:
    opened_at: datetime
    severity: str
    kind: str | None
    explanation_nb: str
    explanation_en: str
    state: str
    resolved_at: datetime | None
    resolution: str | None
    resolved_by: str | None
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PlanChange:
    version: int
    status: str
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None
    by: str | None


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


@dataclass(frozen=True, slots=True)
class Zones:
    """A kind's limits after layering; NaN where there is none (as in `KindLimits`)."""

    red_low: float
    yellow_low: float
    yellow_high: float
    red_high: float

    def zone(self, value: float) -> str:
        """Limits are strict: a value equal to a limit does not breach it."""
        if value < self.red_low or value > self.red_high:
            return "red"
        if value < self.yellow_low or value > self.yellow_high:
            return "yellow"
        return "green"


@dataclass
class PeriodReport:
    patient: PatientInfo
    start: datetime
    end: datetime
    series: dict[str, list[tuple[datetime, float]]]
    zones: dict[str, Zones]
    alarms: list[AlarmLine]
    plan_changes: list[PlanChange]
    planned: int
    taken: int
    handovers: list[HandoverLine] = field(default_factory=list)
    generated_at: datetime | None = None

    @property
    def adherence(self) -> float | None:
        return population.percent(self.taken, self.planned)

    @property
    def last_day(self) -> date:
        """The last day of the period in the patient's time zone (`end` is the midnight after it)."""
        return (
            (self.end - timedelta(microseconds=1)).astimezone(ZoneInfo(self.patient.timezone or "Europe/Oslo")).date()
        )

    @property
    def first_day(self) -> date:
        return self.start.astimezone(ZoneInfo(self.patient.timezone or "Europe/Oslo")).date()


def _zones(limits: KindLimits) -> Zones:
    red_low, yellow_low, yellow_high, red_high = (float(v) for v in limits.as_tuple())
    low = [-math.inf if math.isnan(v) else v for v in (red_low, yellow_low)]
    high = [math.inf if math.isnan(v) else v for v in (yellow_high, red_high)]
    return Zones(low[0], low[1], high[0], high[1])


_HANDOVERS_SQL = (
    "SELECT h.proposed_at, f.name, t.name, h.state, h.decided_at, h.situation, h.plan, h.watch "
    "FROM care_handovers h JOIN care_teams f ON f.id = h.from_team_id JOIN care_teams t ON t.id = h.to_team_id "
    "WHERE h.patient_id = %s AND h.proposed_at < %s AND coalesce(h.decided_at, 'infinity') >= %s "
    "ORDER BY h.proposed_at, h.id"
)


def _handovers(conn: Connection[Any], patient_id: UUID, start: datetime, end: datetime) -> list[HandoverLine]:
    """Hand-overs proposed or decided in the period."""
    return [HandoverLine(*r) for r in conn.execute(_HANDOVERS_SQL, (patient_id, end, start)).fetchall()]


def gather(conn: Connection[Any], patient_id: UUID, start: datetime, end: datetime) -> PeriodReport | None:
    head = conn.execute(
        "SELECT p.id, p.display_name, p.national_id, p.birth_date, p.protocol, p.timezone, t.name, "
        "o.id, o.name, o.org_number FROM patients p JOIN care_teams t ON t.id = p.team_id "
        "LEFT JOIN organisations o ON o.id = t.organisation_id WHERE p.id = %s",
        (patient_id,),
    ).fetchone()
    if head is None:
        return None
    patient = PatientInfo(
        id=head[0],
        name=head[1],
        national_id=head[2],
        birth_date=head[3],
        protocol=head[4],
        timezone=head[5],
        team_name=head[6],
        organisation=tuple(head[7:]) if head[7] else None,
    )
    readings = conn.execute(
        "SELECT kind, measured_at, value FROM readings WHERE patient_id = %s AND kind = ANY(%s) "
        "AND measured_at >= %s AND measured_at < %s ORDER BY kind, measured_at",
        (patient_id, [k.value for k in Kind], start, end),
    ).fetchall()
    series: dict[str, list[tuple[datetime, float]]] = {}
    for kind, at, value in readings:
        series.setdefault(kind, []).append((at, float(value)))
    limits = effective_limits(patient.protocol, as_mapping(thresholds.limit_overrides(conn, patient_id)))
    zones = {k: _zones(limits[Kind(k)]) for k in series}
    alarm_rows = conn.execute(
        "SELECT a.opened_at, a.severity, a.kind, a.explanation_nb, a.explanation_en, a.state, a.resolved_at, "
        "a.resolution, coalesce(nullif(u.display_name, ''), u.username), "
        "(SELECT coalesce(array_agg(e.data->>'text' ORDER BY e.at), '{}') FROM alarm_events e "
        " WHERE e.alarm_id = a.id AND e.event = 'note') "
        "FROM alarms a LEFT JOIN users u ON u.id = a.resolved_by WHERE a.patient_id = %s AND a.opened_at < %s "
        "AND coalesce(a.resolved_at, 'infinity') >= %s ORDER BY a.opened_at, a.id",
        (patient_id, end, start),
    ).fetchall()
    alarms = [
        AlarmLine(
            opened_at=r[0],
            severity=r[1],
            kind=r[2],
            explanation_nb=r[3],
            explanation_en=r[4],
            state=r[5],
            resolved_at=r[6],
            resolution=r[7],
            resolved_by=r[8],
            notes=tuple(r[9] or ()),
        )
        for r in alarm_rows
    ]
    plan_rows = conn.execute(
        "SELECT pl.version, pl.status, pl.created_at, pl.activated_at, pl.retired_at, "
        "coalesce(nullif(u.display_name, ''), u.username) FROM self_management_plans pl "
        "LEFT JOIN users u ON u.id = pl.created_by WHERE pl.patient_id = %s AND ("
        "pl.created_at BETWEEN %s AND %s OR pl.activated_at BETWEEN %s AND %s OR pl.retired_at BETWEEN %s AND %s) "
        "ORDER BY pl.version",
        (patient_id, start, end, start, end, start, end),
    ).fetchall()
    planned, taken = population.adherence(conn, [patient_id], start, end).get(patient_id, (0, 0))
    return PeriodReport(
        patient=patient,
        start=start,
        end=end,
        series=series,
        zones=zones,
        alarms=alarms,
        plan_changes=[PlanChange(*r) for r in plan_rows],
        planned=planned,
        taken=taken,
        handovers=_handovers(conn, patient_id, start, end),
    )
