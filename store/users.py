"""Staff users as the API sees them: a user with role and care teams (`UserRow`), the sign-in lookup, users that
an OpenID issuer names by external subject (created on first sight, role and teams kept in step with its claims),
and what the caller's own profile shows (teams, team leads); and the care teams themselves (`care_teams`: made by
name, found by name or id) and the local logins the admin CLI keeps (made or reset with their password hash,
enabled and disabled, joined to teams, made team leads). Which roles exist and how a password is hashed are
`varde.admin`'s and `clinician_api.passwords`'."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import class_row, scalar_row

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
_ENSURE_TEAM = (
    "INSERT INTO care_teams (name) VALUES (%s) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id"
)
_TEAM_ID = "SELECT id FROM care_teams WHERE name = %s OR id::text = %s"
_UPSERT_LOCAL = (
    "INSERT INTO users (username, role, password_hash, display_name) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (username) DO UPDATE SET role = EXCLUDED.role, password_hash = EXCLUDED.password_hash, "
    "display_name = EXCLUDED.display_name RETURNING id"
)
_JOIN_TEAM = "INSERT INTO team_memberships (user_id, team_id) VALUES (%s, %s) ON CONFLICT DO NOTHING"
_LOCK_LOGIN = "SELECT id, active FROM users WHERE username = %s FOR UPDATE"
_SET_ACTIVE = "UPDATE users SET active = %s WHERE id = %s"
_SET_LEAD = (
    "UPDATE team_memberships m SET lead = %s FROM users u WHERE u.id = m.user_id AND u.username = %s AND m.team_id = %s"
)


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


@dataclass(frozen=True, slots=True)
class LoginState:
    id: UUID
    active: bool


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


# --- care teams and local logins, as the admin CLI keeps them ------------------------------------------------------


def ensure_team(conn: Connection[Any], name: str) -> UUID:
    """The care team of this name, made when new."""
    with conn.cursor(row_factory=scalar_row) as cur:
        team_id: UUID | None = cur.execute(_ENSURE_TEAM, (name,)).fetchone()
    assert team_id is not None
    return team_id


def team_id(conn: Connection[Any], team: str) -> UUID | None:
    """The care team named `team`, or whose id it is."""
    with conn.cursor(row_factory=scalar_row) as cur:
        found: UUID | None = cur.execute(_TEAM_ID, (team, team)).fetchone()
    return found


def upsert_local(conn: Connection[Any], username: str, role: str, password_hash: str, display_name: str) -> UUID:
    """A login with a password: made, or an existing one of this username given the role, hash and name."""
    with conn.cursor(row_factory=scalar_row) as cur:
        user_id: UUID | None = cur.execute(_UPSERT_LOCAL, (username, role, password_hash, display_name)).fetchone()
    assert user_id is not None
    return user_id


def join_team(conn: Connection[Any], user_id: UUID, team_id: UUID) -> None:
    """Make the user a member of the team (a member already stays one)."""
    conn.execute(_JOIN_TEAM, (user_id, team_id))


def lock_login(conn: Connection[Any], username: str) -> LoginState | None:
    """The user of this name and whether the login is enabled, locked until the caller's transaction ends."""
    with conn.cursor(row_factory=class_row(LoginState)) as cur:
        return cur.execute(_LOCK_LOGIN, (username,)).fetchone()


def set_active(conn: Connection[Any], user_id: UUID, active: bool) -> None:
    conn.execute(_SET_ACTIVE, (active, user_id))


def set_team_lead(conn: Connection[Any], username: str, team_id: UUID, lead: bool) -> bool:
    """Make the member a lead of the team (or not); False when the user is no member of it."""
    return conn.execute(_SET_LEAD, (lead, username, team_id)).rowcount > 0


__all__ = [
    "Credentials",
    "ExternalUser",
    "LoginState",
    "TeamRow",
    "UserRow",
    "active_user",
    "add_external_user",
    "credentials",
    "ensure_team",
    "external_user",
    "join_team",
    "lead_of",
    "lock_login",
    "set_active",
    "set_team_lead",
    "set_team_names",
    "team_id",
    "teams",
    "update_external_user",
    "upsert_local",
    "username_taken",
]
