"""The audit log for administrators and team leads: who did what to which patient's data, filtered and paged.
A team lead sees the rows about the team's patients and the rows of the team's members; an admin sees all."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request

from clinician_api import paging, problems
from clinician_api.deps import Conn, CurrentPrincipal, client_addr
from clinician_api.schemas import AuditEntry, AuditPage
from store import audit, users

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=problems.responses(401, 403))


@router.get("", response_model=AuditPage, responses=problems.responses(400))
def list_audit(
    conn: Conn,
    principal: CurrentPrincipal,
    request: Request,
    user_id: UUID | None = None,
    username: Annotated[str | None, Query(max_length=64, description="Exact username")] = None,
    patient_id: UUID | None = None,
    action: Annotated[str | None, Query(max_length=40)] = None,
    outcome: Annotated[str | None, Query(max_length=40)] = None,
    emergency: bool | None = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Audit rows, newest first, with the patient's name where the caller may see it. Reading the audit log is
    itself audited. Admins and team leads only (403 otherwise)."""
    about: list[UUID] | None = None
    if principal.role != "admin":
        about = users.lead_of(conn, principal.user_id)
        if not about:
            raise HTTPException(403, "the audit log is for admins and team leads")
    flt = audit.AuditFilter(
        user_id=user_id,
        username=username.strip().lower() if username else None,
        patient_id=patient_id,
        action=action,
        outcome=outcome,
        emergency=emergency,
        since=from_,
        until=to,
    )
    before = None
    if cursor:
        (before,) = paging.decode("audit", cursor, (int,))
    rows = audit.page(conn, principal.team_ids, about, flt, before, limit + 1)
    shown, next_cursor = paging.page(rows, limit, lambda r: (r.id,), "audit")
    audit.record(
        conn, principal, "read", request.url.path, "ok", patient_id=patient_id, client_addr=client_addr(request)
    )
    return AuditPage(
        items=[AuditEntry.model_validate(r, from_attributes=True) for r in shown],
        next=next_cursor,
    )
