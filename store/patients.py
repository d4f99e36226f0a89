"""Patients as the API lists and opens them: a summary row (`PatientSummaryRow`: team, worst unresolved alarm,
newest measurement, the caller's access basis, current episode) read in keyset pages by name or for one patient,
the rest of the record (`PatientRecordRow`), the patient's time zone, and the row lock that serialises changes to one
patient; and the patients the admin CLI registers (one, or a numbered batch for load tests), their team and
protocol, and the demo's changes (registration backdated, national id moved, deactivation). Conditions are
`store.conditions`', gateways and devices `store.gateways`'."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import class_row, scalar_row

from vitals import Kind

# The newest reading of any kind, bounded in time: per kind, the newest hour of the hourly aggregate (one backward
# probe of its (patient, kind, bucket) key), then the newest reading inside that hour, so the readings lookup prunes
# to the one partition of that hour instead of probing every partition's index.
_LAST_MEASURED = (
    "(SELECT max(l.measured_at) FROM unnest(%(kinds)s::text[]) AS k(kind) CROSS JOIN LATERAL "
    "(SELECT h.bucket FROM readings_hourly h WHERE h.patient_id = p.id AND h.kind = k.kind "
    "ORDER BY h.bucket DESC LIMIT 1) AS hb CROSS JOIN LATERAL "
    "(SELECT max(r.measured_at) AS measured_at FROM readings r WHERE r.patient_id = p.id AND r.kind = k.kind "
    "AND r.measured_at >= hb.bucket AND r.measured_at < hb.bucket + interval '1 hour') AS l)"
)
_WORST = (
    "LEFT JOIN LATERAL (SELECT a.id, a.severity, a.rule, a.state, a.opened_at, count(*) OVER () AS n "
    "FROM alarms a WHERE a.patient_id = p.id AND a.state <> 'resolved' "
    "ORDER BY a.severity_rank, a.opened_at LIMIT 1) w ON true"
)
# The current episode (with a hand-over waiting for an answer, if any).
_EPISODE = (
    "LEFT JOIN LATERAL (SELECT ce.id, ce.status, ce.team_id, ct.name AS team_name, co.name AS organisation_name, "
    "ce.reason, ce.started_at, h.id AS handover_id, ht.name AS to_team FROM care_episodes ce "
    "JOIN care_teams ct ON ct.id = ce.team_id LEFT JOIN organisations co ON co.id = ct.organisation_id "
    "LEFT JOIN care_handovers h ON h.episode_id = ce.id AND h.state = 'proposed' "
    "LEFT JOIN care_teams ht ON ht.id = h.to_team_id "
    "WHERE ce.patient_id = p.id AND ce.status = 'active') ep ON true"
)
_SUMMARY = sql.SQL(
    "SELECT p.id, p.display_name, p.protocol, p.team_id, t.name AS team_name, coalesce(w.n, 0) AS open_alarms, "
    "w.id AS worst_id, w.severity AS worst_severity, w.rule AS worst_rule, w.state AS worst_state, "
    "w.opened_at AS worst_opened_at, {} AS last_measured_at, {} AS access_basis, ep.id AS episode_id, "
    "ep.status AS episode_status, ep.team_id AS episode_team_id, ep.team_name AS episode_team_name, "
    "ep.organisation_name AS episode_organisation_name, ep.reason AS episode_reason, "
    "ep.started_at AS episode_started_at, ep.handover_id AS pending_handover_id, ep.to_team AS pending_to_team_name "
    "FROM patients p JOIN care_teams t ON t.id = p.team_id {} {}"
)
_RECORD = (
    "SELECT p.birth_date, p.national_id, p.timezone, p.active, "
    "(SELECT version FROM self_management_plans s WHERE s.patient_id = p.id AND s.status = 'active') "
    "AS active_plan_version FROM patients p WHERE p.id = %s"
)
_LOCK = "SELECT 1 FROM patients WHERE id = %s FOR UPDATE"
_INSERT = (
    "INSERT INTO patients (display_name, team_id, protocol, timezone, national_id) "
    "VALUES (%s, %s, %s, %s, %s) RETURNING id"
)
_INSERT_NUMBERED = (
    "INSERT INTO patients (display_name, team_id, protocol) "
    "SELECT 'Load patient ' || g, %s, %s FROM generate_series(1, %s) AS g RETURNING id"
)
_CARE = "SELECT team_id, protocol FROM patients WHERE id = %s"
_BACKDATE = "UPDATE patients SET created_at = %s WHERE id = %s"
_RELEASE_NATIONAL_ID = "UPDATE patients SET national_id = NULL WHERE national_id = %s"
_SET_NATIONAL_ID = "UPDATE patients SET national_id = %s WHERE id = %s"
_DEACTIVATE = "UPDATE patients SET active = false WHERE id = ANY(%s)"
_TIMEZONE = "SELECT timezone FROM patients WHERE id = %s"
_ACTIVE_IDS = "SELECT id FROM patients WHERE active ORDER BY id"
_ALL_KINDS = [k.value for k in Kind]


@dataclass(frozen=True, slots=True)
class PatientSummaryRow:
    id: UUID
    display_name: str
    protocol: str
    team_id: UUID
    team_name: str
    open_alarms: int
    worst_id: UUID | None
    """The worst unresolved alarm (red first, then the oldest); None when the patient has none."""
    worst_severity: str | None
    worst_rule: str | None
    worst_state: str | None
    worst_opened_at: datetime | None
    last_measured_at: datetime | None
    access_basis: str | None
    """How the caller sees the patient (`clinician_api.access`'s basis), None when not at all."""
    episode_id: UUID | None
    """The active care episode; None when the patient has none."""
    episode_status: str | None
    episode_team_id: UUID | None
    episode_team_name: str | None
    episode_organisation_name: str | None
    episode_reason: str | None
    episode_started_at: datetime | None
    pending_handover_id: UUID | None
    pending_to_team_name: str | None


@dataclass(frozen=True, slots=True)
class PatientCare:
    """Who follows the patient up, and by which protocol."""

    team_id: UUID
    protocol: str


@dataclass(frozen=True, slots=True)
class PatientRecordRow:
    birth_date: date | None
    national_id: str | None
    timezone: str
    active: bool
    active_plan_version: int | None


def _summary_select(access_basis: sql.Composable) -> sql.Composed:
    return _SUMMARY.format(sql.SQL(_LAST_MEASURED), access_basis, sql.SQL(_WORST), sql.SQL(_EPISODE))


def _like_part(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, its wildcards taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def page(
    conn: Connection[Any],
    visible: sql.Composable,
    access_basis: sql.Composable,
    access_params: Mapping[str, Any],
    *,
    team_ids: Sequence[UUID] | None,
    name_part: str | None,
    after: tuple[str, UUID] | None,
    limit: int,
) -> list[PatientSummaryRow]:
    """Up to `limit` active patients passing `visible` (the caller's duty-of-care clause over `p`, with named
    parameters `access_params`, which `access_basis` reads too), by name then id, after the key `after` (name, id)
    of the previous page's last row; optionally only of `team_ids` or with `name_part` in the name."""
    where: list[sql.Composable] = [visible, sql.SQL("p.active")]
    params: dict[str, Any] = {**access_params, "kinds": _ALL_KINDS, "limit": limit}
    if team_ids:
        where.append(sql.SQL("p.team_id = ANY(%(team)s::uuid[])"))
        params["team"] = team_ids
    if name_part:
        where.append(sql.SQL("p.display_name ILIKE %(q)s"))
        params["q"] = _like_part(name_part)
    if after is not None:
        where.append(sql.SQL("(p.display_name, p.id) > (%(c_name)s, %(c_id)s)"))
        params.update(c_name=after[0], c_id=after[1])
    query = sql.SQL("{} WHERE {} ORDER BY p.display_name, p.id LIMIT %(limit)s").format(
        _summary_select(access_basis), sql.SQL(" AND ").join(where)
    )
    with conn.cursor(row_factory=class_row(PatientSummaryRow)) as cur:
        return cur.execute(query, params).fetchall()


def summary(
    conn: Connection[Any], patient_id: UUID, access_basis: sql.Composable, access_params: Mapping[str, Any]
) -> PatientSummaryRow | None:
    """One patient's summary row, whatever the caller's access (the caller has checked it)."""
    query = sql.SQL("{} WHERE p.id = %(id)s").format(_summary_select(access_basis))
    with conn.cursor(row_factory=class_row(PatientSummaryRow)) as cur:
        return cur.execute(query, {**access_params, "id": patient_id, "kinds": _ALL_KINDS}).fetchone()


def record(conn: Connection[Any], patient_id: UUID) -> PatientRecordRow | None:
    """The rest of the patient's record: identity, time zone, whether active, the active plan's version."""
    with conn.cursor(row_factory=class_row(PatientRecordRow)) as cur:
        return cur.execute(_RECORD, (patient_id,)).fetchone()


def timezone_of(conn: Connection[Any], patient_id: UUID) -> str | None:
    """The patient's time zone (an IANA name); None when there is no such patient."""
    with conn.cursor(row_factory=scalar_row) as cur:
        zone: str | None = cur.execute(_TIMEZONE, (patient_id,)).fetchone()
        return zone


def lock(conn: Connection[Any], patient_id: UUID) -> None:
    """Lock the patient's row until the caller's transaction ends: serialises changes to its conditions and plans."""
    conn.execute(_LOCK, (patient_id,))


# --- registration, as the admin CLI and the demo make and change patients ------------------------------------------


def insert(
    conn: Connection[Any], name: str, team_id: UUID, protocol: str, timezone: str, national_id: str | None
) -> UUID:
    with conn.cursor(row_factory=scalar_row) as cur:
        patient_id: UUID | None = cur.execute(_INSERT, (name, team_id, protocol, timezone, national_id)).fetchone()
    assert patient_id is not None
    return patient_id


def insert_numbered(conn: Connection[Any], team_id: UUID, protocol: str, count: int) -> list[UUID]:
    """`count` patients named 'Load patient 1' … 'Load patient <count>' in one statement (load tests)."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute(_INSERT_NUMBERED, (team_id, protocol, count)).fetchall()


def care_of(conn: Connection[Any], patient_id: UUID) -> PatientCare | None:
    """The patient's team and protocol; None when there is no such patient."""
    with conn.cursor(row_factory=class_row(PatientCare)) as cur:
        return cur.execute(_CARE, (patient_id,)).fetchone()


def backdate(conn: Connection[Any], patient_id: UUID, registered_at: datetime) -> None:
    """The patient counts as registered since `registered_at` (the demo's patients, with days of history)."""
    conn.execute(_BACKDATE, (registered_at, patient_id))


def move_national_id(conn: Connection[Any], national_id: str, patient_id: UUID) -> None:
    """Give the patient this national id, taking it from any other patient who had it."""
    conn.execute(_RELEASE_NATIONAL_ID, (national_id,))
    conn.execute(_SET_NATIONAL_ID, (national_id, patient_id))


def deactivate(conn: Connection[Any], patient_ids: Sequence[UUID]) -> None:
    conn.execute(_DEACTIVATE, (list(patient_ids),))


def active_ids(conn: Connection[Any]) -> list[UUID]:
    """Every active patient's id, in id order."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute(_ACTIVE_IDS).fetchall()


__all__ = [
    "PatientCare",
    "PatientRecordRow",
    "PatientSummaryRow",
    "active_ids",
    "backdate",
    "care_of",
    "deactivate",
    "insert",
    "insert_numbered",
    "lock",
    "move_national_id",
    "page",
    "record",
    "summary",
    "timezone_of",
]
