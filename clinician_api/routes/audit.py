"""The audit log for administrators and team leads: who did what to which patient's data, filtered and paged.
A team lead sees the rows about the team's patients and the rows of the team's members; an admin sees all."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from psycopg import sql

from clinician_api import paging, problems
from clinician_api.deps import Conn, CurrentPrincipal, client_addr
from clinician_api.schemas import AuditEntry, AuditPage
from store import audit

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
    where: list[sql.Composable] = [sql.SQL("true")]
    params: list[Any] = []
    if principal.role != "admin":
        lead_of = [
            r[0]
            for r in conn.execute(
                "SELECT team_id FROM team_memberships WHERE user_id = %s AND lead", (principal.user_id,)
            ).fetchall()
        ]
        if not lead_of:
            raise HTTPException(403, "the audit log is for admins and team leads")
        where.append(
            sql.SQL(
                "(l.patient_id IN (SELECT id FROM patients WHERE team_id = ANY(%s::uuid[])) OR l.user_id IN "
                "(SELECT user_id FROM team_memberships WHERE team_id = ANY(%s::uuid[])))"
            )
        )
        params += [lead_of, lead_of]
    for column, value in (
        ("l.user_id", user_id),
        ("l.username", username.strip().lower() if username else None),
        ("l.patient_id", patient_id),
        ("l.action", action),
        ("l.outcome", outcome),
        ("l.emergency", emergency),
    ):
        if value is not None:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(*column.split("."))))
            params.append(value)
    if from_:
        where.append(sql.SQL("l.at >= %s"))
        params.append(from_)
    if to:
        where.append(sql.SQL("l.at < %s"))
        params.append(to)
    if cursor:
        (before,) = paging.decode("audit", cursor, (int,))
        where.append(sql.SQL("l.id < %s"))
        params.append(before)
    rows = conn.execute(
        sql.SQL(
            "SELECT l.id, l.at, l.user_id, l.username, l.role, l.team_id, l.action, l.resource, "
            "l.outcome, l.emergency, l.reason, l.patient_id, l.client_addr, CASE WHEN p.team_id = "
            "ANY(%s::uuid[]) THEN p.display_name END FROM audit_log l LEFT JOIN patients p ON p.id = "
            "l.patient_id WHERE {} ORDER BY l.id DESC LIMIT %s"
        ).format(sql.SQL(" AND ").join(where)),
        [list(principal.team_ids), *params, limit + 1],
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
                patient_name=r[13],
            )
            for r in shown
        ],
        next=next_cursor,
    )
