"""Staff users as the API sees them: a user with role and care teams (`UserRow`), the sign-in lookup, users that
an OpenID issuer names by external subject (created on first sight, role and teams kept in step with its claims),
and what the caller's own profile shows (teams, team leads). Creating users and setting passwords is the admin
CLI's (`varde.admin`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import class_row

_ACTIVE = (
    "SELECT u.id, u.username, u.role, coalesce(array_agg(m.team_id ORDER BY m.team_id) "
    "FILTER (WHERE m.team_id IS NOT NULL), '{}') AS team_ids, u.display_name FROM users u "
    "LEFT JOIN team_memberships m ON m.user_id = u.id WHERE u.id = %s AND u.active GROUP BY u.id"
)
_CREDENTIALS = "SELECT id, password_hash FROM users WHERE username = %s AND active"
_BY_SUBJECT = "SELECT id, active, role, display_name FROM users WHERE external_subject = %s"
_ADD_EXTERNAL = (
    "INSERT INTO users (username, display_name, role, external_subject) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (external_subject) DO UPDATE SET role = EXCLUDED.role RETURNING id, active, role, display_name"
)
_UPDATE_EXTERNAL = "UPDATE users SET role = %s, display_name = coalesce(nullif(%s, ''), display_name) WHERE id = %s"
_USERNAME_TAKEN = "SELECT 1 FROM users WHERE username = %s"
_LEAVE_TEAMS = (
    "DELETE FROM team_memberships m WHERE m.user_id = %s AND m.team_id NOT IN "
    "(SELECT id FROM care_teams WHERE name = ANY(%s))"
)
_JOIN_TEAMS = (
    "INSERT INTO team_memberships (user_id, team_id) SELECT %s, id FROM care_teams WHERE name = ANY(%s) "
    "ON CONFLICT DO NOTHING"
)
_TEAMS = "SELECT id, name FROM care_teams WHERE id = ANY(%s::uuid[]) ORDER BY name"
_LEADS = "SELECT team_id FROM team_memberships WHERE user_id = %s AND lead ORDER BY team_id"


@dataclass(frozen=True, slots=True)
class UserRow:
    id: UUID
    username: str
    role: str
    team_ids: list[UUID]
    display_name: str


@dataclass(frozen=True, slots=True)
class Credentials:
    id: UUID
    password_hash: str | None


@dataclass(frozen=True, slots=True)
class ExternalUser:
    id: UUID
    active: bool
    role: str
    display_name: str


@dataclass(frozen=True, slots=True)
class TeamRow:
    id: UUID
    name: str


def active_user(conn: Connection[Any], user_id: UUID) -> UserRow | None:
    """The user with role and care teams; None for an unknown or disabled user."""
    with conn.cursor(row_factory=class_row(UserRow)) as cur:
        return cur.execute(_ACTIVE, (user_id,)).fetchone()


def credentials(conn: Connection[Any], username: str) -> Credentials | None:
    """The active user of this name with the password hash (None when the user signs in elsewhere)."""
    with conn.cursor(row_factory=class_row(Credentials)) as cur:
        return cur.execute(_CREDENTIALS, (username,)).fetchone()


def external_user(conn: Connection[Any], subject: str) -> ExternalUser | None:
    with conn.cursor(row_factory=class_row(ExternalUser)) as cur:
        return cur.execute(_BY_SUBJECT, (subject,)).fetchone()


def add_external_user(conn: Connection[Any], username: str, display_name: str, role: str, subject: str) -> ExternalUser:
    with conn.cursor(row_factory=class_row(ExternalUser)) as cur:
        row = cur.execute(_ADD_EXTERNAL, (username, display_name, role, subject)).fetchone()
    assert row is not None
    return row


def update_external_user(conn: Connection[Any], user_id: UUID, role: str, display_name: str | None) -> None:
    """A new role, and a new display name unless it is empty."""
    conn.execute(_UPDATE_EXTERNAL, (role, display_name, user_id))


def username_taken(conn: Connection[Any], username: str) -> bool:
    return conn.execute(_USERNAME_TAKEN, (username,)).fetchone() is not None


def set_team_names(conn: Connection[Any], user_id: UUID, team_names: Sequence[str]) -> None:
    """Memberships become exactly the named teams that exist; unknown names are ignored."""
    conn.execute(_LEAVE_TEAMS, (user_id, list(team_names)))
    conn.execute(_JOIN_TEAMS, (user_id, list(team_names)))


def teams(conn: Connection[Any], team_ids: Sequence[UUID]) -> list[TeamRow]:
    with conn.cursor(row_factory=class_row(TeamRow)) as cur:
        return cur.execute(_TEAMS, (list(team_ids),)).fetchall()


def lead_of(conn: Connection[Any], user_id: UUID) -> list[UUID]:
    """The teams the user leads."""
    return [UUID(str(team_id)) for (team_id,) in conn.execute(_LEADS, (user_id,)).fetchall()]


__all__ = [
    "Credentials",
    "ExternalUser",
    "TeamRow",
    "UserRow",
    "active_user",
    "add_external_user",
    "credentials",
    "external_user",
    "lead_of",
    "set_team_names",
    "teams",
    "update_external_user",
    "username_taken",
]
