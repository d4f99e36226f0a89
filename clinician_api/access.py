"""Access by duty of care (tjenstlig behov): the one place that decides who may see which patient.

A user sees a patient when the patient's responsible team (`patients.team_id`, which follows the active care
episode, see `clinician_api.episodes`) is one of the user's teams, or while an emergency access (break-the-glass) the
user granted themselves with a reason has not expired. Two further grounds give read-only access: a former team's
consultative access agreed in a hand-over, and a team's access to a patient whose hand-over to it awaits its answer.
Everything else is answered as if the patient did not exist. Routes do not call these functions themselves: they
take the patient through the dependencies in `deps` (`PatientScope`), which also write the audit row (and refuse a
write on read-only access with 403).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection, sql

from clinician_api import roles
from store import access as store_access
from store.access import BASIS_CONSULTATIVE as BASIS_CONSULTATIVE
from store.access import BASIS_EMERGENCY as BASIS_EMERGENCY
from store.access import BASIS_HANDOVER as BASIS_HANDOVER
from store.access import BASIS_TEAM as BASIS_TEAM

EMERGENCY_MINUTES_DEFAULT = 60
EMERGENCY_MINUTES_MAX = 240
EMERGENCY_REASON_MIN = 10
CLINICAL_ROLES = roles.CLINICAL_ROLES


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: UUID
    username: str
    role: str
    team_ids: tuple[UUID, ...]
    display_name: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_clinician(self) -> bool:
        return self.role in CLINICAL_ROLES

    @property
    def reads_records(self) -> bool:
        """Whether the role may open patients' records at all (the export role only runs bulk exports)."""
        return self.role != roles.DATA_EXPORT


READ_ONLY_BASES = (BASIS_CONSULTATIVE, BASIS_HANDOVER)


@dataclass(frozen=True, slots=True)
class PatientAccess:
    """Why a principal may see a patient: membership of the responsible team, an unexpired emergency access, or
    (read-only) a consultative access or a hand-over waiting for the caller's team. `team_id` is the patient's
    responsible team."""

    patient_id: UUID
    team_id: UUID
    emergency: bool
    reason: str | None
    expires_at: datetime | None = None
    basis: str = BASIS_TEAM

    @property
    def read_only(self) -> bool:
        return self.basis in READ_ONLY_BASES


def patient_access(conn: Connection[Any], principal: Principal, patient_id: UUID) -> PatientAccess | None:
    """None when the principal has no duty of care for the patient (the caller answers 404)."""
    if not principal.reads_records:
        return None
    found = store_access.grounds(conn, principal.team_ids, principal.user_id, patient_id)
    if found is None:
        return None
    team_id = found.team_id
    if found.member:
        return PatientAccess(patient_id, team_id, False, None)
    if found.emergency_reason is not None:
        return PatientAccess(
            patient_id, team_id, True, found.emergency_reason, found.emergency_expires_at, BASIS_EMERGENCY
        )
    if found.consults:
        return PatientAccess(patient_id, team_id, False, None, basis=BASIS_CONSULTATIVE)
    if found.receives:
        return PatientAccess(patient_id, team_id, False, None, basis=BASIS_HANDOVER)
    return None


def visible_patients_clause(principal: Principal, alias: str = "p") -> tuple[sql.Composable, list[Any]]:
    """SQL condition restricting `{alias}` (patients) to those the principal has a duty of care for."""
    if not principal.reads_records:
        return (sql.SQL("false"), [])
    return store_access.visible_clause(principal.team_ids, principal.user_id, alias)


def visible_patients_named(
    principal: Principal, alias: str = "p", *, read_only: bool = False
) -> tuple[sql.Composable, dict[str, Any]]:
    """`visible_patients_clause` for queries with named parameters (`vis_teams`, `vis_user`). With `read_only`,
    also the patients seen through a consultative access or a hand-over awaiting the caller's team (the patient
    list shows them; the alarm queue and its kin do not: alarms go to the responsible team)."""
    if not principal.reads_records:  # the parameters still exist: a query may name them beside the clause
        return (sql.SQL("false"), {"vis_teams": [], "vis_user": principal.user_id})
    return store_access.visible_named(principal.team_ids, principal.user_id, alias, read_only=read_only)


def access_basis_sql(alias: str = "p") -> sql.Composable:
    """An SQL expression naming the principal's access basis for `{alias}` (named parameters `vis_teams`,
    `vis_user`, as `visible_patients_named` gives them), in the order `patient_access` decides."""
    return store_access.basis_expression(alias)


def emergency_patient_ids(conn: Connection[Any], principal: Principal) -> dict[UUID, datetime]:
    """Patients seen through an unexpired emergency access, with the time each access ends."""
    return store_access.emergencies(conn, principal.user_id)


alarm_patient = store_access.alarm_patient


def may_break_glass(principal: Principal) -> bool:
    """Only clinicians may open a record outside their teams; an administrator has no clinical duty of care."""
    return principal.is_clinician


def grant_emergency_access(
    conn: Connection[Any], principal: Principal, patient_id: UUID, reason: str, minutes: int
) -> store_access.EmergencyGrant | None:
    """Record an emergency access of at most `EMERGENCY_MINUTES_MAX`; None when no such patient."""
    if len(reason.strip()) < EMERGENCY_REASON_MIN:
        raise ValueError(f"the reason must have at least {EMERGENCY_REASON_MIN} characters")
    minutes = max(1, min(minutes, EMERGENCY_MINUTES_MAX))
    return store_access.grant_emergency(conn, principal.user_id, patient_id, reason.strip(), timedelta(minutes=minutes))


def user_has_duty_of_care(conn: Connection[Any], user_id: UUID, patient_id: UUID) -> bool:
    """Whether an (active) user belongs to the patient's care team: the condition for being assigned an alarm."""
    return store_access.on_patients_team(conn, user_id, patient_id)
