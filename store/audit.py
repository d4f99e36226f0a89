"""The audit log, the one writer of `audit_log`: every read and write of patient data, appended in the caller's
own transaction; and its readers: the patient's access log (innsynslogg, `AccessLogRow`) and the audit log of
administrators and team leads (`AuditRow`).

Rows are never updated or deleted (a trigger refuses it). The API's patient routes get their row from the
`PatientScope` dependency (`clinician_api.deps`); list routes record one row per patient they showed, in one
statement; the command line and the timed jobs record what they did under a username.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import class_row


class Principal(Protocol):
    """Who acted, as the API knows them (`clinician_api.access.Principal` is one)."""

    @property
    def user_id(self) -> UUID: ...
    @property
    def username(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def team_ids(self) -> tuple[UUID, ...]: ...


def record(
    conn: Connection[Any],
    principal: Principal | None,
    action: str,
    resource: str,
    outcome: str,
    *,
    patient_id: UUID | None = None,
    team_id: UUID | None = None,
    client_addr: str | None = None,
    emergency: bool = False,
    reason: str | None = None,
    username: str | None = None,
    user_id: UUID | None = None,
) -> None:
    """One row; without a principal (the command line, a timed job, a rule acting for a user) under `username`
    and `user_id`."""
    if team_id is None and principal is not None and principal.team_ids:
        team_id = principal.team_ids[0]
    conn.execute(
        "INSERT INTO audit_log (user_id, username, role, team_id, patient_id, action, resource, outcome, "
        "client_addr, emergency, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            principal.user_id if principal else user_id,
            principal.username if principal else username,
            principal.role if principal else None,
            team_id,
            patient_id,
            action,
            resource,
            outcome,
            client_addr,
            emergency,
            reason,
        ),
    )


def record_citizen(
    conn: Connection[Any],
    citizen_id: UUID,
    role: str,
    action: str,
    resource: str,
    outcome: str,
    *,
    patient_id: UUID | None,
    proxy_id: UUID | None = None,
    client_addr: str | None = None,
) -> None:
    """A patient's or relative's own action (patient app): under their own identity, a relative's with the proxy it
    went through."""
    conn.execute(
        "INSERT INTO audit_log (user_id, role, patient_id, action, resource, outcome, client_addr, proxy_id) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (citizen_id, role, patient_id, action, resource, outcome, client_addr, proxy_id),
    )


def record_patients(
    conn: Connection[Any],
    principal: Principal,
    action: str,
    resource: str,
    patient_ids: Sequence[UUID],
    *,
    client_addr: str | None = None,
) -> None:
    """One row per patient shown by a list route; rows for patients seen by emergency access carry its reason."""
    if not patient_ids:
        return
    conn.execute(
        "INSERT INTO audit_log (user_id, username, role, team_id, patient_id, action, resource, outcome, "
        "client_addr, emergency, reason) "
        "SELECT %(user)s, %(username)s, %(role)s, "
        " CASE WHEN p.team_id = ANY(%(teams)s::uuid[]) THEN p.team_id ELSE (%(teams)s::uuid[])[1] END, "
        " p.id, %(action)s, %(resource)s, 'ok', %(addr)s, NOT (p.team_id = ANY(%(teams)s::uuid[])), "
        " CASE WHEN p.team_id = ANY(%(teams)s::uuid[]) THEN NULL ELSE (SELECT e.reason FROM emergency_access e "
        "  WHERE e.user_id = %(user)s AND e.patient_id = p.id AND e.expires_at > now() "
        "  ORDER BY e.expires_at DESC LIMIT 1) END "
        "FROM patients p WHERE p.id = ANY(%(ids)s::uuid[]) ORDER BY p.id",
        {
            "user": principal.user_id,
            "username": principal.username,
            "role": principal.role,
            "teams": list(principal.team_ids),
            "action": action,
            "resource": resource,
            "addr": client_addr,
            "ids": sorted(set(patient_ids), key=str),
        },
    )


@dataclass(frozen=True, slots=True)
class AccessLogRow:
    id: int
    at: datetime
    user_id: UUID | None
    username: str | None
    role: str | None
    team_id: UUID | None
    action: str
    resource: str
    outcome: str
    emergency: bool
    reason: str | None


def access_log(conn: Connection[Any], patient_id: UUID, *, before: int | None, limit: int) -> list[AccessLogRow]:
    """Up to `limit` of the patient's audit rows, newest first, with ids below `before` (the previous page's last)."""
    where: list[sql.Composable] = [sql.SQL("patient_id = %s")]
    params: list[Any] = [patient_id]
    if before is not None:
        where.append(sql.SQL("id < %s"))
        params.append(before)
    query = sql.SQL(
        "SELECT id, at, user_id, username, role, team_id, action, resource, outcome, emergency, "
        "reason FROM audit_log WHERE {} ORDER BY id DESC LIMIT %s"
    ).format(sql.SQL(" AND ").join(where))
    with conn.cursor(row_factory=class_row(AccessLogRow)) as cur:
        return cur.execute(query, [*params, limit]).fetchall()


@dataclass(frozen=True, slots=True)
class AccessByOther:
    """An audited access to a patient's data by staff or a relative, with who (name) and the accessing team's name."""

    id: int
    at: datetime
    role: str
    action: str
    resource: str
    outcome: str
    emergency: bool
    reason: str | None
    who: str | None
    team: str | None
    proxy_id: UUID | None


def accesses_by_others(
    conn: Connection[Any], patient_id: UUID, staff_roles: Sequence[str], *, before: int | None, limit: int
) -> list[AccessByOther]:
    """Up to `limit` audited accesses to the patient's data by anyone but the patient, newest first, with ids below
    `before`; staff (`staff_roles`) are named as users, relatives as citizens."""
    with conn.cursor(row_factory=class_row(AccessByOther)) as cur:
        return cur.execute(
            "SELECT a.id, a.at, a.role, a.action, a.resource, a.outcome, a.emergency, a.reason, "
            "coalesce(u.display_name, u.username, c.display_name) AS who, t.name AS team, a.proxy_id "
            "FROM audit_log a LEFT JOIN users u ON u.id = a.user_id AND a.role = ANY(%s) "
            "LEFT JOIN citizens c ON c.id = a.user_id AND a.role = 'relative' "
            "LEFT JOIN care_teams t ON t.id = a.team_id "
            "WHERE a.patient_id = %s AND a.role IS DISTINCT FROM 'patient' AND a.role IS NOT NULL "
            "AND (%s::bigint IS NULL OR a.id < %s) ORDER BY a.id DESC LIMIT %s",
            (list(staff_roles), patient_id, before, before, limit),
        ).fetchall()


# --- the audit log for administrators and team leads -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    user_id: UUID | None
    username: str | None
    role: str | None
    team_id: UUID | None
    action: str
    resource: str
    outcome: str
    emergency: bool
    reason: str | None
    patient_id: UUID | None
    client_addr: str | None
    patient_name: str | None
    """Only for a patient of the reader's own teams."""


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which rows: each given field must match exactly; `since` inclusive, `until` exclusive."""

    user_id: UUID | None = None
    username: str | None = None
    patient_id: UUID | None = None
    action: str | None = None
    outcome: str | None = None
    emergency: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


def page(
    conn: Connection[Any],
    reader_team_ids: Sequence[UUID],
    about_team_ids: Sequence[UUID] | None,
    flt: AuditFilter,
    before: int | None,
    limit: int,
) -> list[AuditRow]:
    """Up to `limit` rows, newest first, with ids below `before` (the previous page's last). With `about_team_ids`
    only the rows about those teams' patients or by their members (None: every row). The patient's name is given
    for patients of `reader_team_ids`."""
    where: list[sql.Composable] = [sql.SQL("true")]
    params: list[Any] = []
    if about_team_ids is not None:
        where.append(
            sql.SQL(
                "(l.patient_id IN (SELECT id FROM patients WHERE team_id = ANY(%s::uuid[])) OR l.user_id IN "
                "(SELECT user_id FROM team_memberships WHERE team_id = ANY(%s::uuid[])))"
            )
        )
        params += [list(about_team_ids), list(about_team_ids)]
    for column, value in (
        ("user_id", flt.user_id),
        ("username", flt.username),
        ("patient_id", flt.patient_id),
        ("action", flt.action),
        ("outcome", flt.outcome),
        ("emergency", flt.emergency),
    ):
        if value is not None:
            where.append(sql.SQL("{} = %s").format(sql.Identifier("l", column)))
            params.append(value)
    if flt.since:
        where.append(sql.SQL("l.at >= %s"))
        params.append(flt.since)
    if flt.until:
        where.append(sql.SQL("l.at < %s"))
        params.append(flt.until)
    if before is not None:
        where.append(sql.SQL("l.id < %s"))
        params.append(before)
    query = sql.SQL(
        "SELECT l.id, l.at, l.user_id, l.username, l.role, l.team_id, l.action, l.resource, "
        "l.outcome, l.emergency, l.reason, l.patient_id, l.client_addr, CASE WHEN p.team_id = "
        "ANY(%s::uuid[]) THEN p.display_name END AS patient_name FROM audit_log l LEFT JOIN patients p ON p.id = "
        "l.patient_id WHERE {} ORDER BY l.id DESC LIMIT %s"
    ).format(sql.SQL(" AND ").join(where))
    with conn.cursor(row_factory=class_row(AuditRow)) as cur:
        return cur.execute(query, [list(reader_team_ids), *params, limit]).fetchall()
