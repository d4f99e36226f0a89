"""What the period summary report of one patient holds, read in one transaction: the readings of each kind with the
patient's zone limits, the alarms and what was done about them, the plan's changes, adherence to the schedule, and
hand-overs. The rows are `store.period_report`'s and `store.readings`'; rendering is `reports.pdf`; delivery to the
record is `reports.document`."""

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
from store import period_report, readings, thresholds
from store.period_report import HandoverLine, PlanChange
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


def gather(conn: Connection[Any], patient_id: UUID, start: datetime, end: datetime) -> PeriodReport | None:
    head = period_report.patient(conn, patient_id)
    if head is None:
        return None
    patient = PatientInfo(
        id=head.id,
        name=head.name,
        national_id=head.national_id,
        birth_date=head.birth_date,
        protocol=head.protocol,
        timezone=head.timezone,
        team_name=head.team_name,
        organisation=(head.organisation_id, head.organisation_name, head.org_number) if head.organisation_id else None,
    )
    series: dict[str, list[tuple[datetime, float]]] = {}
    for point in readings.points_between(conn, patient_id, [k.value for k in Kind], start, end):
        series.setdefault(point.kind, []).append((point.measured_at, float(point.value)))
    limits = effective_limits(patient.protocol, as_mapping(thresholds.limit_overrides(conn, patient_id)))
    zones = {k: _zones(limits[Kind(k)]) for k in series}
    alarms = [
        AlarmLine(
            opened_at=r.opened_at,
            severity=r.severity,
            kind=r.kind,
            explanation_nb=r.explanation_nb,
            explanation_en=r.explanation_en,
            state=r.state,
            resolved_at=r.resolved_at,
            resolution=r.resolution,
            resolved_by=r.resolved_by,
            notes=tuple(r.notes or ()),
        )
        for r in period_report.alarms(conn, patient_id, start, end)
    ]
    plan_changes = period_report.plan_changes(conn, patient_id, start, end)
    planned, taken = population.adherence(conn, [patient_id], start, end).get(patient_id, (0, 0))
    return PeriodReport(
        patient=patient,
        start=start,
        end=end,
        series=series,
        zones=zones,
        alarms=alarms,
        plan_changes=plan_changes,
        planned=planned,
        taken=taken,
        handovers=period_report.handovers(conn, patient_id, start, end),
    )


__all__ = ["AlarmLine", "HandoverLine", "PatientInfo", "PeriodReport", "PlanChange", "Zones", "gather"]
