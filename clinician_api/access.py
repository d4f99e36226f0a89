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


BASIS_TEAM = "team"
BASIS_EMERGENCY = "emergency"
BASIS_CONSULTATIVE = "consultative"
BASIS_HANDOVER = "handover"
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


# Read-only grounds: the caller's team consults on the active episode (until the agreed end), or a hand-over of
# the active episode to the caller's team awaits its answer. Uncorrelated, so a list query hashes them once.
_CONSULTS = sql.SQL(
    "{alias}.id IN (SELECT ce.patient_id FROM care_episode_consultants cc JOIN care_episodes ce "
    "ON ce.id = cc.episode_id WHERE ce.status = 'active' AND cc.until > now() AND cc.team_id = ANY({teams}::uuid[]))"
)
_RECEIVES = sql.SQL(
    "{alias}.id IN (SELECT h.patient_id FROM care_handovers h WHERE h.state = 'proposed' "
    "AND h.to_team_id = ANY({teams}::uuid[]))"
)


def _consults(alias: str, teams: str) -> sql.Composed:
    return _CONSULTS.format(alias=sql.Identifier(alias), teams=sql.Placeholder(teams))


def _receives(alias: str, teams: str) -> sql.Composed:
    return _RECEIVES.format(alias=sql.Identifier(alias), teams=sql.Placeholder(teams))


def patient_access(conn: Connection[Any], principal: Principal, patient_id: UUID) -> PatientAccess | None:
    """None when the principal has no duty of care for the patient (the caller answers 404)."""
    if not principal.reads_records:
        return None
    row = conn.execute(
        sql.SQL(
            "SELECT p.team_id, p.team_id = ANY(%(teams)s::uuid[]) AS member, e.reason, e.expires_at, "
            "{}, {} FROM patients p LEFT JOIN LATERAL (SELECT reason, expires_at FROM emergency_access "
            "e  WHERE e.user_id = %(user)s AND e.patient_id = p.id AND e.expires_at > now()  ORDER BY "
            "e.expires_at DESC LIMIT 1) e ON true WHERE p.id = %(patient)s"
        ).format(_consults("p", "teams"), _receives("p", "teams")),
        {"teams": list(principal.team_ids), "user": principal.user_id, "patient": patient_id},
    ).fetchone()
    if row is None:
        return None
    team_id, member, reason, expires_at, consults, receives = row
    if member:
        return PatientAccess(patient_id, team_id, False, None)
    if reason is not None:
        return PatientAccess(patient_id, team_id, True, str(reason), expires_at, BASIS_EMERGENCY)
    if consults:
        return PatientAccess(patient_id, team_id, False, None, basis=BASIS_CONSULTATIVE)
    if receives:
        return PatientAccess(patient_id, team_id, False, None, basis=BASIS_HANDOVER)
    return None


def visible_patients_clause(principal: Principal, alias: str = "p") -> tuple[sql.Composable, list[Any]]:
    """SQL condition restricting `{alias}` (patients) to those the principal has a duty of care for."""
    if not principal.reads_records:
        return (sql.SQL("false"), [])
    return (
        sql.SQL(
            "({}.team_id = ANY(%s::uuid[]) OR EXISTS (SELECT 1 FROM emergency_access e WHERE e.user_id "
            "= %s AND e.patient_id = {}.id AND e.expires_at > now()))"
        ).format(sql.Identifier(alias), sql.Identifier(alias)),
        [list(principal.team_ids), principal.user_id],
    )


def visible_patients_named(
    principal: Principal, alias: str = "p", *, read_only: bool = False
) -> tuple[sql.Composable, dict[str, Any]]:
    """`visible_patients_clause` for queries with named parameters (`vis_teams`, `vis_user`). With `read_only`,
    also the patients seen through a consultative access or a hand-over awaiting the caller's team (the patient
    list shows them; the alarm queue and its kin do not: alarms go to the responsible team)."""
    if not principal.reads_records:  # the parameters still exist: a query may name them beside the clause
        return (sql.SQL("false"), {"vis_teams": [], "vis_user": principal.user_id})
    extra: sql.Composable = sql.SQL("")
    if read_only:
        extra = sql.SQL(" OR {} OR {}").format(_consults(alias, "vis_teams"), _receives(alias, "vis_teams"))
    return (
        sql.SQL(
            "({}.team_id = ANY(%(vis_teams)s::uuid[]) OR EXISTS (SELECT 1 FROM emergency_access e "
            "WHERE e.user_id = %(vis_user)s AND e.patient_id = {}.id AND e.expires_at > now()){})"
        ).format(sql.Identifier(alias), sql.Identifier(alias), extra),
        {"vis_teams": list(principal.team_ids), "vis_user": principal.user_id},
    )


def access_basis_sql(alias: str = "p") -> sql.Composable:
    """An SQL expression naming the principal's access basis for `{alias}` (named parameters `vis_teams`,
    `vis_user`, as `visible_patients_named` gives them), in the order `patient_access` decides."""
    return sql.SQL(
        "CASE WHEN {alias}.team_id = ANY(%(vis_teams)s::uuid[]) THEN {team} WHEN EXISTS (SELECT 1 FROM "
        "emergency_access e WHERE e.user_id = %(vis_user)s AND e.patient_id = {alias}.id AND "
        "e.expires_at > now()) THEN {emergency} WHEN {consults} THEN {consultative} WHEN {receives} THEN {handover} END"
    ).format(
        alias=sql.Identifier(alias),
        team=sql.Literal(BASIS_TEAM),
        emergency=sql.Literal(BASIS_EMERGENCY),
        consults=_consults(alias, "vis_teams"),
        consultative=sql.Literal(BASIS_CONSULTATIVE),
        receives=_receives(alias, "vis_teams"),
        handover=sql.Literal(BASIS_HANDOVER),
    )


def emergency_patient_ids(conn: Connection[Any], principal: Principal) -> dict[UUID, datetime]:
    """Patients seen through an unexpired emergency access, with the time each access ends."""
    rows = conn.execute(
        "SELECT patient_id, max(expires_at) FROM emergency_access WHERE user_id = %s AND expires_at > now() "
        "GROUP BY patient_id",
        (principal.user_id,),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def alarm_patient(conn: Connection[Any], alarm_id: UUID) -> UUID | None:
    row = conn.execute("SELECT patient_id FROM alarms WHERE id = %s", (alarm_id,)).fetchone()
    return row[0] if row else None


def may_break_glass(principal: Principal) -> bool:
    """Only clinicians may open a record outside their teams; an administrator has no clinical duty of care."""
    return principal.is_clinician


def grant_emergency_access(
    conn: Connection[Any], principal: Principal, patient_id: UUID, reason: str, minutes: int
) -> tuple[UUID, datetime, datetime] | None:
    """Record an emergency access; None when no such patient. Returns (id, granted_at, expires_at)."""
    if len(reason.strip()) < EMERGENCY_REASON_MIN:
        raise ValueError(f"the reason must have at least {EMERGENCY_REASON_MIN} characters")
    minutes = max(1, min(minutes, EMERGENCY_MINUTES_MAX))
    row = conn.execute(
        "INSERT INTO emergency_access (user_id, patient_id, reason, expires_at) "
        "SELECT %s, p.id, %s, now() + %s FROM patients p WHERE p.id = %s RETURNING id, granted_at, expires_at",
        (principal.user_id, reason.strip(), timedelta(minutes=minutes), patient_id),
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None


def user_has_duty_of_care(conn: Connection[Any], user_id: UUID, patient_id: UUID) -> bool:
    """Whether an (active) user belongs to the patient's care team: the condition for being assigned an alarm."""
    row = conn.execute(
        "SELECT 1 FROM users u JOIN team_memberships m ON m.user_id = u.id JOIN patients p ON p.team_id = m.team_id "
        "WHERE u.id = %s AND u.active AND p.id = %s",
        (user_id, patient_id),
    ).fetchone()
    return row is not None
