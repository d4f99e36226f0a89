"""The population overview of the caller's care teams (clinician_api/population.py) as JSON and as a CSV download.
Only the caller's own teams; every patient shown is audited (`list`), every patient exported too (`export`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from clinician_api import population, problems
from clinician_api.deps import Clinician, Conn, client_addr
from clinician_api.routes.worklist import own_teams
from store import audit

router = APIRouter(prefix="/api/v1/population", tags=["population"], responses=problems.responses(401, 403))

Days = Annotated[int, Query(ge=7, le=90, description="Period of adherence and alarm burden, in days")]
Teams = Annotated[list[UUID] | None, Query(description="Care team ids (default: all of the caller's)")]


class PatientOut(BaseModel):
    patient_id: UUID
    name: str
    team_id: UUID
    team_name: str
    zone: population.Zone
    trend: population.Trend
    adherence: float | None
    planned: int
    taken: int
    alarms: int
    alarms_per_week: float


class TeamOut(BaseModel):
    team_id: UUID
    team_name: str
    patients: int
    zones: dict[str, int]
    trends: dict[str, int]
    zone_trends: dict[str, dict[str, int]]
    adherence: float | None
    planned: int
    taken: int
    alarms: int
    alarms_per_patient_week: float


class Overview(BaseModel):
    generated_at: datetime
    days: int
    trend_days: int
    teams: list[TeamOut]
    patients: list[PatientOut]


def _lines(conn: Conn, principal: Clinician, team: list[UUID] | None, days: int) -> list[population.PatientLine]:
    teams = own_teams(principal.team_ids, team)
    return population.patient_lines(conn, teams, datetime.now(UTC), days) if teams else []


@router.get("", response_model=Overview)
def overview(conn: Conn, principal: Clinician, request: Request, team: Teams = None, days: Days = 28) -> Overview:
    """Per team: patients by current zone and 7-day trend, adherence, alarms per patient-week; and each patient."""
    lines = _lines(conn, principal, team, days)
    audit.record_patients(
        conn, principal, "list", request.url.path, [m.patient_id for m in lines], client_addr=client_addr(request)
    )
    return Overview(
        generated_at=datetime.now(UTC),
        days=days,
        trend_days=population.TREND_DAYS,
        teams=[TeamOut.model_validate(s, from_attributes=True) for s in population.summarise(lines, days)],
        patients=[PatientOut.model_validate(m, from_attributes=True) for m in lines],
    )


@router.get("/export.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def export_csv(conn: Conn, principal: Clinician, request: Request, team: Teams = None, days: Days = 28) -> Response:
    """The patients of the overview as CSV (UTF-8 with BOM, so spreadsheet programs read æøå); audited as export."""
    lines = _lines(conn, principal, team, days)
    audit.record_patients(
        conn, principal, "export", request.url.path, [m.patient_id for m in lines], client_addr=client_addr(request)
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return Response(
        "\ufeff" + population.to_csv(lines),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="varde-population-{stamp}.csv"'},
    )
