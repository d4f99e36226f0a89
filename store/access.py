"""The duty-of-care data (tjenstlig behov): a user's grounds for seeing one patient, the SQL conditions that restrict
a query to the patients a user may see, the patient an alarm or a reading belongs to, and emergency access
(break-the-glass) grants. Which ground counts for what — and who may read records at all — is
`clinician_api.access`'s; this module only reads and writes the rows.

The grounds: the patient's responsible team is one of the user's teams; an unexpired emergency access; (read-only)
a consultative access on the active care episode until its agreed end; a hand-over of the active episode to one of
the user's teams awaiting its answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import class_row

BASIS_TEAM = "team"
BASIS_EMERGENCY = "emergency"
BASIS_CONSULTATIVE = "consultative"
BASIS_HANDOVER = "handover"

# Uncorrelated, so a list query hashes them once.
_CONSULTS = sql.SQL(
    "{alias}.id IN (SELECT ce.patient_id FROM care_episode_consultants cc JOIN care_episodes ce "
    "ON ce.id = cc.episode_id WHERE ce.status = 'active' AND cc.until > now() AND cc.team_id = ANY({teams}::uuid[]))"
)
_RECEIVES = sql.SQL(
    "{alias}.id IN (SELECT h.patient_id FROM care_handovers h WHERE h.state = 'proposed' "
    "AND h.to_team_id = ANY({teams}::uuid[]))"
)
_GROUNDS = sql.SQL(
    "SELECT p.team_id, p.team_id = ANY(%(teams)s::uuid[]) AS member, e.reason AS emergency_reason, "
    "e.expires_at AS emergency_expires_at, {} AS consults, {} AS receives FROM patients p LEFT JOIN LATERAL "
    "(SELECT reason, expires_at FROM emergency_access e WHERE e.user_id = %(user)s AND e.patient_id = p.id "
    "AND e.expires_at > now() ORDER BY e.expires_at DESC LIMIT 1) e ON true WHERE p.id = %(patient)s"
)
_VISIBLE = sql.SQL(
    "({alias}.team_id = ANY(%s::uuid[]) OR EXISTS (SELECT 1 FROM emergency_access e WHERE e.user_id "
    "= %s AND e.patient_id = {alias}.id AND e.expires_at > now()))"
)
_VISIBLE_NAMED = sql.SQL(
    "({alias}.team_id = ANY(%(vis_teams)s::uuid[]) OR EXISTS (SELECT 1 FROM emergency_access e "
    "WHERE e.user_id = %(vis_user)s AND e.patient_id = {alias}.id AND e.expires_at > now()){extra})"
)
_BASIS = sql.SQL(
    "CASE WHEN {alias}.team_id = ANY(%(vis_teams)s::uuid[]) THEN {team} WHEN EXISTS (SELECT 1 FROM "
    "emergency_access e WHERE e.user_id = %(vis_user)s AND e.patient_id = {alias}.id AND "
    "e.expires_at > now()) THEN {emergency} WHEN {consults} THEN {consultative} WHEN {receives} THEN {handover} END"
)
_EMERGENCIES = (
    "SELECT patient_id, max(expires_at) AS expires_at FROM emergency_access WHERE user_id = %s AND expires_at > now() "
    "GROUP BY patient_id"
)
_ACTIVE_GRANTS = (
    "SELECT DISTINCT ON (patient_id) id, patient_id, reason, granted_at, expires_at FROM emergency_access "
    "WHERE user_id = %s AND expires_at > now() ORDER BY patient_id, expires_at DESC"
)
_ALARM_PATIENT = "SELECT patient_id FROM alarms WHERE id = %s"
# A reading by id alone: its time from `reading_ids` (one probe of an unpartitioned primary key), so the readings
# lookup prunes to the partition of that time instead of probing the id in every partition.
READING_PATIENT_SQL = (
    "SELECT patient_id FROM readings WHERE id = %s "
    "AND measured_at = (SELECT measured_at FROM reading_ids WHERE id = %s) LIMIT 1"
)
_GRANT = (
    "INSERT INTO emergency_access (user_id, patient_id, reason, expires_at) "
    "SELECT %s, p.id, %s, now() + %s FROM patients p WHERE p.id = %s RETURNING id, granted_at, expires_at"
)
_ON_TEAM = (
    "SELECT 1 FROM users u JOIN team_memberships m ON m.user_id = u.id JOIN patients p ON p.team_id = m.team_id "
    "WHERE u.id = %s AND u.active AND p.id = %s"
)


@dataclass(frozen=True, slots=True)
class Grounds:
    """Each ground a user has for one patient; `team_id` is the patient's responsible team."""

    team_id: UUID
    member: bool
    emergency_reason: str | None
    emergency_expires_at: datetime | None
    consults: bool
    receives: bool


@dataclass(frozen=True, slots=True)
class EmergencyGrant:
    id: UUID
    granted_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ActiveGrant:
    id: UUID
    patient_id: UUID
    reason: str
    granted_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class _Emergency:
    patient_id: UUID
    expires_at: datetime


def _consults(alias: str, teams: str) -> sql.Composed:
    return _CONSULTS.format(alias=sql.Identifier(alias), teams=sql.Placeholder(teams))


def _receives(alias: str, teams: str) -> sql.Composed:
    return _RECEIVES.format(alias=sql.Identifier(alias), teams=sql.Placeholder(teams))


def grounds(conn: Connection[Any], team_ids: Sequence[UUID], user_id: UUID, patient_id: UUID) -> Grounds | None:
    """None when no such patient."""
    query = _GROUNDS.format(_consults("p", "teams"), _receives("p", "teams"))
    with conn.cursor(row_factory=class_row(Grounds)) as cur:
        return cur.execute(query, {"teams": list(team_ids), "user": user_id, "patient": patient_id}).fetchone()


def visible_clause(team_ids: Sequence[UUID], user_id: UUID, alias: str = "p") -> tuple[sql.Composable, list[Any]]:
    """A condition on `{alias}` (patients): the responsible team is one of `team_ids`, or an emergency access of
    the user's is unexpired; with its positional parameters."""
    return _VISIBLE.format(alias=sql.Identifier(alias)), [list(team_ids), user_id]


def visible_named(
    team_ids: Sequence[UUID], user_id: UUID, alias: str = "p", *, read_only: bool = False
) -> tuple[sql.Composable, dict[str, Any]]:
    """`visible_clause` with named parameters (`vis_teams`, `vis_user`); with `read_only` also the patients seen
    through a consultative access or a hand-over awaiting one of the teams."""
    extra: sql.Composable = sql.SQL("")
    if read_only:
        extra = sql.SQL(" OR {} OR {}").format(_consults(alias, "vis_teams"), _receives(alias, "vis_teams"))
    clause = _VISIBLE_NAMED.format(alias=sql.Identifier(alias), extra=extra)
    return clause, {"vis_teams": list(team_ids), "vis_user": user_id}


def basis_expression(alias: str = "p") -> sql.Composable:
    """An SQL expression naming the ground for `{alias}` (named parameters as `visible_named` gives them), in the
    order the grounds are decided: team, emergency, consultative, hand-over."""
    return _BASIS.format(
        alias=sql.Identifier(alias),
        team=sql.Literal(BASIS_TEAM),
        emergency=sql.Literal(BASIS_EMERGENCY),
        consults=_consults(alias, "vis_teams"),
        consultative=sql.Literal(BASIS_CONSULTATIVE),
        receives=_receives(alias, "vis_teams"),
        handover=sql.Literal(BASIS_HANDOVER),
    )


def emergencies(conn: Connection[Any], user_id: UUID) -> dict[UUID, datetime]:
    """Patients the user sees through an unexpired emergency access, with the time each access ends."""
    with conn.cursor(row_factory=class_row(_Emergency)) as cur:
        return {e.patient_id: e.expires_at for e in cur.execute(_EMERGENCIES, (user_id,))}


def active_grants(conn: Connection[Any], user_id: UUID) -> list[ActiveGrant]:
    """The user's unexpired emergency accesses, the latest-ending one per patient."""
    with conn.cursor(row_factory=class_row(ActiveGrant)) as cur:
        return cur.execute(_ACTIVE_GRANTS, (user_id,)).fetchall()


def alarm_patient(conn: Connection[Any], alarm_id: UUID) -> UUID | None:
    row = conn.execute(_ALARM_PATIENT, (alarm_id,)).fetchone()
    return None if row is None else UUID(str(row[0]))


def reading_patient(conn: Connection[Any], reading_id: UUID) -> UUID | None:
    """The patient of a stored reading (whose record a FHIR Observation belongs to); None for an unknown id."""
    row = conn.execute(READING_PATIENT_SQL, (reading_id, reading_id)).fetchone()
    return None if row is None else UUID(str(row[0]))


def grant_emergency(
    conn: Connection[Any], user_id: UUID, patient_id: UUID, reason: str, duration: timedelta
) -> EmergencyGrant | None:
    """None when no such patient."""
    with conn.cursor(row_factory=class_row(EmergencyGrant)) as cur:
        return cur.execute(_GRANT, (user_id, reason, duration, patient_id)).fetchone()


def on_patients_team(conn: Connection[Any], user_id: UUID, patient_id: UUID) -> bool:
    """Whether an active user belongs to the patient's responsible team."""
    return conn.execute(_ON_TEAM, (user_id, patient_id)).fetchone() is not None


__all__ = [
    "BASIS_CONSULTATIVE",
    "BASIS_EMERGENCY",
    "BASIS_HANDOVER",
    "BASIS_TEAM",
    "READING_PATIENT_SQL",
    "ActiveGrant",
    "EmergencyGrant",
    "Grounds",
    "active_grants",
    "alarm_patient",
    "basis_expression",
    "emergencies",
    "grant_emergency",
    "grounds",
    "on_patients_team",
    "reading_patient",
    "visible_clause",
    "visible_named",
]
