"""The nurse's worklist: all work of the caller's care teams in one list (clinician_api/worklist.py), and who takes
which item. Only the caller's own teams: a team the caller is not a member of is refused, and items of patients
seen through an emergency access stay off the team's list. Every patient shown is audited as a list read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from clinician_api import problems, worklist
from clinician_api.access import patient_access, user_has_duty_of_care
from clinician_api.deps import NOT_IN_CARE, Clinician, Conn, SettingsDep, client_addr
from clinician_api.problems import ProblemError
from store import audit

router = APIRouter(prefix="/api/v1/worklist", tags=["worklist"], responses=problems.responses(401, 403))

ItemType = Literal["alarm", "message", "missed_measurement", "inactive_patient", "plan_review", "handover"]


class WorkItemOut(BaseModel):
    type: ItemType
    key: str = Field(description="The item's id within its type (alarm, thread, patient or plan id)")
    sla: str = Field(description="The SLA the item is measured against (docs/organisations.md, Worklist)")
    sla_minutes: int
    patient_id: UUID
    patient_name: str
    team_id: UUID
    title: str
    severity: str | None
    since: datetime = Field(description="When the item's SLA clock started")
    due_at: datetime = Field(description="When the item becomes overdue")
    overdue: bool
    assignee_id: UUID | None
    assignee_name: str | None
    assignable: bool = Field(description="Whether the item is taken here (alarms: POST /alarms/{id}/assign)")
    link: str = Field(description="The dashboard page where the work is done")


class TypeCount(BaseModel):
    type: ItemType
    count: int
    overdue: int


class Worklist(BaseModel):
    generated_at: datetime
    team_ids: list[UUID]
    items: list[WorkItemOut]
    counts: list[TypeCount]
    inactive_days: int
    plan_review_days: int


class WorkAssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["message", "inactive_patient", "plan_review"]
    key: str = Field(max_length=100)
    assignee: UUID | Literal["me"] | None = Field(description='A user of the patient\'s team, "me", or null to release')


class WorkAssignment(BaseModel):
    type: str
    key: str
    assignee_id: UUID | None
    assignee_name: str | None


def own_teams(principal_teams: tuple[UUID, ...], wanted: list[UUID] | None) -> tuple[UUID, ...]:
    if not wanted:
        return principal_teams
    outside = [t for t in wanted if t not in principal_teams]
    if outside:
        raise HTTPException(403, "the worklist shows only your own care teams")
    return tuple(dict.fromkeys(wanted))


@router.get("", response_model=Worklist)
def get_worklist(
    conn: Conn,
    principal: Clinician,
    settings: SettingsDep,
    request: Request,
    team: Annotated[list[UUID] | None, Query(description="Care team ids (default: all of the caller's)")] = None,
    type: Annotated[list[ItemType] | None, Query(description="Item types (default: all)")] = None,
    mine: Annotated[bool, Query(description="Only items assigned to the caller")] = False,
    lang: Annotated[Literal["nb", "en"], Query()] = "nb",
) -> Worklist:
    """All work of the caller's teams, most urgent first: red alarms, then by the time left on each item's SLA."""
    now = datetime.now(UTC)
    query = worklist.WorklistQuery(
        principal=principal,
        team_ids=own_teams(principal.team_ids, team),
        now=now,
        lang=lang,
        inactive_days=settings.worklist_inactive_days,
        plan_review_days=settings.worklist_plan_review_days,
    )
    items = worklist.collect(conn, query, type) if query.team_ids else []
    if mine:
        items = [i for i in items if i.assignee_id == principal.user_id]
    addr = client_addr(request)
    audit.record_patients(
        conn,
        principal,
        "list",
        request.url.path,
        [i.patient_id for i in items if i.type != "handover"],
        client_addr=addr,
    )
    # A hand-over's patient is still the sending team's: audited under the receiving team, not as an emergency read.
    for patient_id, team_id in sorted({(i.patient_id, i.team_id) for i in items if i.type == "handover"}, key=str):
        audit.record(
            conn, principal, "list", request.url.path, "ok", patient_id=patient_id, team_id=team_id, client_addr=addr
        )
    counts = {t: [0, 0] for t in worklist.PROVIDERS}
    for i in items:
        counts[i.type][0] += 1
        counts[i.type][1] += i.overdue(now)
    return Worklist(
        generated_at=now,
        team_ids=list(query.team_ids),
        items=[
            WorkItemOut(
                type=i.type,
                key=i.key,
                sla=i.sla,
                sla_minutes=int(worklist.SLAS[i.sla].total_seconds() // 60),
                patient_id=i.patient_id,
                patient_name=i.patient_name,
                team_id=i.team_id,
                title=i.title,
                severity=i.severity,
                since=i.since,
                due_at=i.due_at,
                overdue=i.overdue(now),
                assignee_id=i.assignee_id,
                assignee_name=i.assignee_name,
                assignable=i.type in worklist.ALARM_TYPES or i.type in worklist.ASSIGNABLE,
                link=i.link,
            )
            for i in items
        ],
        counts=[TypeCount(type=t, count=c, overdue=o) for t, (c, o) in counts.items()],
        inactive_days=query.inactive_days,
        plan_review_days=query.plan_review_days,
    )


@router.post("/assign", response_model=WorkAssignment, responses=problems.responses(404, 422))
def assign(body: WorkAssignRequest, conn: Conn, principal: Clinician, request: Request) -> WorkAssignment:
    """Take, hand to a colleague, or release an item that is not an alarm (alarms: `POST /alarms/{id}/assign`).
    The item's patient must be in one of the caller's teams; the assignee must be in the patient's team."""
    patient_id = worklist.patient_of(conn, body.type, body.key)
    access = patient_access(conn, principal, patient_id) if patient_id else None
    if patient_id is None or access is None or access.emergency:
        audit.record(
            conn,
            principal,
            "assign",
            request.url.path,
            "denied",
            patient_id=patient_id,
            client_addr=client_addr(request),
        )
        conn.commit()
        raise HTTPException(404, NOT_IN_CARE)
    assignee = principal.user_id if body.assignee == "me" else body.assignee
    if assignee is not None and not user_has_duty_of_care(conn, assignee, patient_id):
        raise ProblemError(
            422,
            "the assignee must be an active user in the patient's care team",
            errors=[{"loc": ["body", "assignee"], "msg": "not a member of the patient's care team"}],
        )
    who = worklist.assign(conn, body.type, body.key, patient_id, assignee, principal.user_id)
    audit.record(
        conn,
        principal,
        "assign",
        request.url.path,
        "ok",
        patient_id=patient_id,
        team_id=access.team_id,
        client_addr=client_addr(request),
    )
    return WorkAssignment(
        type=body.type,
        key=body.key,
        assignee_id=who.assignee_id if who else None,
        assignee_name=who.assignee_name if who else None,
    )
