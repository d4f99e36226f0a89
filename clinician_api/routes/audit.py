"""The audit log for administrators: who did what to which patient's data, filtered and paged."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request

from clinician_api import audit, paging, problems
from clinician_api.deps import Admin, Conn, client_addr
from clinician_api.schemas import AuditEntry, AuditPage

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=problems.responses(401, 403))


@router.get("", response_model=AuditPage, responses=problems.responses(400))
def list_audit(
    conn: Conn,
    principal: Admin,
    request: Request,
    user_id: UUID | None = None,
    patient_id: UUID | None = None,
    action: Annotated[str | None, Query(max_length=40)] = None,
    outcome: Annotated[str | None, Query(max_length=40)] = None,
    emergency: bool | None = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    """Audit rows, newest first. Reading the audit log is itself audited."""
    where: list[str] = ["true"]
    params: list[Any] = []
    for column, value in (
        ("user_id", user_id),
        ("patient_id", patient_id),
        ("action", action),
        ("outcome", outcome),
        ("emergency", emergency),
    ):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if from_:
        where.append("at >= %s")
        params.append(from_)
    if to:
        where.append("at < %s")
        params.append(to)
    if cursor:
        (before,) = paging.decode("audit", cursor, (int,))
        where.append("id < %s")
        params.append(before)
    rows = conn.execute(
        "SELECT id, at, user_id, username, role, team_id, action, resource, outcome, emergency, reason, patient_id, "
        f"client_addr FROM audit_log WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %s",
        [*params, limit + 1],
    ).fetchall()
    shown, next_cursor = paging.page(rows, limit, lambda r: (r[0],), "audit")
    audit.record(
        conn, principal, "read", request.url.path, "ok", patient_id=patient_id, client_addr=client_addr(request)
    )
    return AuditPage(
        items=[
            AuditEntry(
                id=r[0],
                at=r[1],
                user_id=r[2],
                username=r[3],
                role=r[4],
                team_id=r[5],
                action=r[6],
                resource=r[7],
                outcome=r[8],
                emergency=r[9],
                reason=r[10],
                patient_id=r[11],
                client_addr=r[12],
            )
            for r in shown
        ],
        next=next_cursor,
    )
