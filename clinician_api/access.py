"""Access by duty of care (tjenstlig behov): the one place that decides who may see which patient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Connection


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: UUID
    username: str
    role: str
    team_ids: tuple[UUID, ...]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class PatientAccess:
    """Why a principal may see a patient: care-team membership, or an unexpired emergency access."""

    patient_id: UUID
    emergency: bool
    reason: str | None


def load_principal(conn: Connection[Any], user_id: UUID) -> Principal | None:
    row = conn.execute(
        "SELECT u.id, u.username, u.role, coalesce(array_agg(m.team_id ORDER BY m.team_id) "
        "FILTER (WHERE m.team_id IS NOT NULL), '{}') FROM users u LEFT JOIN team_memberships m ON m.user_id = u.id "
        "WHERE u.id = %s AND u.active GROUP BY u.id",
        (user_id,),
    ).fetchone()
    if row is None:
        return None
    return Principal(row[0], row[1], row[2], tuple(row[3]))


def patient_access(conn: Connection[Any], principal: Principal, patient_id: UUID) -> PatientAccess | None:
    """None when the principal has no duty of care for the patient (the caller answers 404)."""
    row = conn.execute(
        "SELECT p.team_id = ANY(%s::uuid[]) AS member, "
        "(SELECT reason FROM emergency_access e WHERE e.user_id = %s AND e.patient_id = p.id "
        " AND e.expires_at > now() ORDER BY e.expires_at DESC LIMIT 1) AS emergency_reason "
        "FROM patients p WHERE p.id = %s",
        (list(principal.team_ids), principal.user_id, patient_id),
    ).fetchone()
    if row is None:
        return None
    member, emergency_reason = bool(row[0]), row[1]
    if member:
        return PatientAccess(patient_id, False, None)
    if emergency_reason is not None:
        return PatientAccess(patient_id, True, str(emergency_reason))
    return None


def visible_patients_clause(principal: Principal, alias: str = "p") -> tuple[str, list[Any]]:
    """SQL condition restricting `{alias}` (patients) to those the principal has a duty of care for."""
    return (
        f"({alias}.team_id = ANY(%s::uuid[]) OR EXISTS (SELECT 1 FROM emergency_access e WHERE e.user_id = %s "
        f"AND e.patient_id = {alias}.id AND e.expires_at > now()))",
        [list(principal.team_ids), principal.user_id],
    )
