"""The audit log: every read and write of patient data, appended in the request's own transaction."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Connection

from clinician_api.access import Principal


def record(
    conn: Connection[Any],
    principal: Principal | None,
    action: str,
    resource: str,
    outcome: str,
    *,
    patient_id: UUID | None = None,
    client_addr: str | None = None,
    emergency: bool = False,
    reason: str | None = None,
) -> None:
    conn.execute(
        "INSERT INTO audit_log (user_id, username, role, team_id, patient_id, action, resource, outcome, "
        "client_addr, emergency, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            principal.user_id if principal else None,
            principal.username if principal else None,
            principal.role if principal else None,
            principal.team_ids[0] if principal and principal.team_ids else None,
            patient_id,
            action,
            resource,
            outcome,
            client_addr,
            emergency,
            reason,
        ),
    )
