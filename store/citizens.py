"""Patients and relatives as users of the patient app, the one reader and writer of `citizens` and
`citizen_sessions`: who a national sign-in or a local password names, the relative's row a proxy makes, and the
server-side sessions (by the hash of the cookie's id) with their idle and absolute ends; and the local password
logins of the offline demo (`varde.demo`).

Each function is one statement in the caller's transaction; hashing the session id, the session's lifetimes and
who may become a user are `clinician_api.citizen.sessions`'.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from uuid import UUID

from psycopg import Connection
from psycopg.rows import class_row, scalar_row


@dataclass(frozen=True, slots=True)
class Citizen:
    """A signed-in patient or relative. `national_id` never goes into a log line or an error text."""

    id: UUID
    display_name: str
    national_id: str


@dataclass(frozen=True, slots=True)
class KnownCitizen:
    id: UUID
    active: bool


@dataclass(frozen=True, slots=True)
class PasswordLogin:
    """An active citizen's local sign-in (the demo's); `password_hash` None when they have no password."""

    id: UUID
    password_hash: str | None


def by_national_id(conn: Connection[Any], national_id: str) -> KnownCitizen | None:
    with conn.cursor(row_factory=class_row(KnownCitizen)) as cur:
        return cur.execute("SELECT id, active FROM citizens WHERE national_id = %s", (national_id,)).fetchone()


def password_login(conn: Connection[Any], username: str) -> PasswordLogin | None:
    with conn.cursor(row_factory=class_row(PasswordLogin)) as cur:
        return cur.execute(
            "SELECT id, password_hash FROM citizens WHERE username = %s AND active", (username,)
        ).fetchone()


def patient_name(conn: Connection[Any], national_id: str) -> str | None:
    """The name of the active patient with this national id, if Varde follows one up."""
    with conn.cursor(row_factory=scalar_row) as cur:
        name: str | None = cur.execute(
            "SELECT display_name FROM patients WHERE national_id = %s AND active", (national_id,)
        ).fetchone()
    return name


def ensure(conn: Connection[Any], national_id: str, display_name: str) -> UUID:
    """The citizen with this national id, made with `display_name` when new (a known one keeps their name)."""
    with conn.cursor(row_factory=scalar_row) as cur:
        citizen_id: UUID | None = cur.execute(
            "INSERT INTO citizens (national_id, display_name) VALUES (%s, %s) "
            "ON CONFLICT (national_id) DO UPDATE SET national_id = EXCLUDED.national_id RETURNING id",
            (national_id, display_name),
        ).fetchone()
    assert citizen_id is not None
    return citizen_id


def upsert_password_login(
    conn: Connection[Any], national_id: str, display_name: str, username: str, password_hash: str
) -> UUID:
    """The citizen with this national id, made or reset to this name, username and password hash, and active."""
    with conn.cursor(row_factory=scalar_row) as cur:
        citizen_id: UUID | None = cur.execute(
            "INSERT INTO citizens (national_id, display_name, username, password_hash) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (national_id) DO UPDATE SET username = EXCLUDED.username, "
            "password_hash = EXCLUDED.password_hash, display_name = EXCLUDED.display_name, active = true "
            "RETURNING id",
            (national_id, display_name, username, password_hash),
        ).fetchone()
    assert citizen_id is not None
    return citizen_id


def open_session(
    conn: Connection[Any], id_hash: bytes, citizen_id: UUID, via: Literal["oidc", "password"], lasts: timedelta
) -> None:
    conn.execute(
        "INSERT INTO citizen_sessions (id_hash, citizen_id, via, expires_at) VALUES (%s, %s, %s, now() + %s)",
        (id_hash, citizen_id, via, lasts),
    )


def touch_session(conn: Connection[Any], id_hash: bytes, idle: timedelta) -> Citizen | None:
    """The active citizen of a live session, its idle clock restarted; None when absent, ended, idle longer than
    `idle` or past its end."""
    with conn.cursor(row_factory=class_row(Citizen)) as cur:
        return cur.execute(
            "UPDATE citizen_sessions s SET last_seen_at = now() FROM citizens c "
            "WHERE s.id_hash = %s AND c.id = s.citizen_id AND c.active AND s.ended_at IS NULL "
            "AND s.expires_at > now() AND s.last_seen_at > now() - %s "
            "RETURNING c.id, c.display_name, c.national_id",
            (id_hash, idle),
        ).fetchone()


def end_session(conn: Connection[Any], id_hash: bytes) -> None:
    conn.execute("UPDATE citizen_sessions SET ended_at = now() WHERE id_hash = %s AND ended_at IS NULL", (id_hash,))


__all__ = [
    "Citizen",
    "KnownCitizen",
    "PasswordLogin",
    "by_national_id",
    "end_session",
    "ensure",
    "open_session",
    "password_login",
    "patient_name",
    "touch_session",
    "upsert_password_login",
]
