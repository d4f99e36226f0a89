"""Alarm burden of the caller's care teams: alarms per patient-week, per team and per rule (`clinician_api.burden`).

A nurse or physician sees the teams she belongs to, an admin every team; nobody sees another team's figures, not
even by naming it. Each look is audited, one row per team shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from clinician_api import burden, problems
from clinician_api.deps import Conn, CurrentPrincipal, client_addr
from store import audit, population

router = APIRouter(prefix="/api/v1/alarm-burden", tags=["alarms"], responses=problems.responses(401))

DEFAULT_DAYS = 28
MAX_DAYS = 365


class RuleBurdenItem(BaseModel):
    rule: str
    label_nb: str
    label_en: str
    alarms: int
    red: int = Field(description="Of the alarms, those that were red")
    per_patient_week: float | None
    share: float = Field(description="The rule's part of the team's alarms, 0–1")
    repeats_cleared: int = Field(description="Single yellow readings whose repeat was back in range: no alarm")


class TeamBurdenItem(BaseModel):
    team_id: UUID
    team: str
    patients: int = Field(description="Patients followed at some time in the period")
    patient_weeks: float
    alarms: int
    per_patient_week: float | None = Field(description="None when the team followed nobody in the period")
    rules: list[RuleBurdenItem] = Field(description="Noisiest rule first")


class AlarmBurden(BaseModel):
    since: datetime
    until: datetime
    days: int
    teams: list[TeamBurdenItem]


@router.get("", response_model=AlarmBurden, responses=problems.responses(422))
def alarm_burden(
    conn: Conn,
    principal: CurrentPrincipal,
    request: Request,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="The period: this many days up to now")] = DEFAULT_DAYS,
    team: Annotated[list[UUID] | None, Query(description="Only these of the caller's care teams")] = None,
) -> AlarmBurden:
    """Alarms opened in the last `days` days per patient-week, per care team and per rule."""
    until = datetime.now(UTC)
    since = until - timedelta(days=days)
    if principal.is_admin:
        allowed = population.all_team_ids(conn)
    else:
        allowed = list(principal.team_ids) if principal.reads_records else []
    wanted = [t for t in allowed if team is None or t in team]
    teams = burden.team_burden(conn, wanted, since, until) if wanted else []
    for t in teams:
        audit.record(
            conn, principal, "read", request.url.path, "ok", team_id=t.team_id, client_addr=client_addr(request)
        )
    return AlarmBurden(since=since, until=until, days=days, teams=[_team(t) for t in teams])


def _team(t: burden.TeamBurden) -> TeamBurdenItem:
    total = t.alarms
    rules = sorted(t.rules.values(), key=lambda r: (-r.alarms, -r.repeats_cleared, r.rule))
    return TeamBurdenItem(
        team_id=t.team_id,
        team=t.team,
        patients=t.patients,
        patient_weeks=round(t.patient_weeks, 2),
        alarms=total,
        per_patient_week=t.per_patient_week(total),
        rules=[
            RuleBurdenItem(
                rule=r.rule,
                label_nb=burden.rule_label(r.rule)[0],
                label_en=burden.rule_label(r.rule)[1],
                alarms=r.alarms,
                red=r.red,
                per_patient_week=t.per_patient_week(r.alarms),
                share=round(r.alarms / total, 3) if total else 0.0,
                repeats_cleared=r.repeats_cleared,
            )
            for r in rules
        ],
    )
