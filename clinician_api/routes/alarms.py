"""The alarm queue, limited to the patients the caller has a duty of care for."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from clinician_api import audit
from clinician_api.access import visible_patients_clause
from clinician_api.deps import Conn, CurrentPrincipal, client_addr

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])

State = Literal["open", "acknowledged", "resolved"]
Severity = Literal["red", "yellow", "missed", "needs_review"]


class Alarm(BaseModel):
    id: UUID
    patient_id: UUID
    rule: str
    kind: str | None
    severity: Severity
    state: State
    opened_at: datetime
    updated_at: datetime
    count: int
    last_value: float | None
    limit_value: float | None
    explanation: str
    explanation_nb: str
    explanation_en: str


class AlarmPage(BaseModel):
    items: list[Alarm]
    next: str | None


_SEVERITY_RANK = "CASE a.severity WHEN 'red' THEN 0 WHEN 'yellow' THEN 1 WHEN 'needs_review' THEN 2 ELSE 3 END"


@router.get("", response_model=AlarmPage)
def list_alarms(
    conn: Conn,
    principal: CurrentPrincipal,
    request: Request,
    state: Annotated[list[State] | None, Query()] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    patient_id: UUID | None = None,
    lang: Literal["nb", "en"] = "nb",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AlarmPage:
    clause, params = visible_patients_clause(principal)
    where = [clause, "a.state = ANY(%s)"]
    params.append(list(state or ["open", "acknowledged"]))
    if severity:
        where.append("a.severity = ANY(%s)")
        params.append(list(severity))
    if patient_id:
        where.append("a.patient_id = %s")
        params.append(patient_id)
    rows = conn.execute(
        "SELECT a.id, a.patient_id, a.rule, a.kind, a.severity, a.state, a.opened_at, a.updated_at, a.count, "
        "a.last_value, a.limit_value, a.explanation_nb, a.explanation_en FROM alarms a "
        f"JOIN patients p ON p.id = a.patient_id WHERE {' AND '.join(where)} "
        f"ORDER BY {_SEVERITY_RANK}, a.opened_at LIMIT %s",
        [*params, limit],
    ).fetchall()
    items = [_alarm(r, lang) for r in rows]
    audit.record(conn, principal, "read", "alarms", "ok", patient_id=patient_id, client_addr=client_addr(request))
    return AlarmPage(items=items, next=None)


def _alarm(row: Any, lang: str) -> Alarm:
    return Alarm(
        id=row[0],
        patient_id=row[1],
        rule=row[2],
        kind=row[3],
        severity=row[4],
        state=row[5],
        opened_at=row[6],
        updated_at=row[7],
        count=row[8],
        last_value=row[9],
        limit_value=row[10],
        explanation=row[11] if lang == "nb" else row[12],
        explanation_nb=row[11],
        explanation_en=row[12],
    )
