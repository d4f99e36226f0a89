"""Staff browser sessions (`staff_sessions`): refresh tokens stored as SHA-256 hashes, one row per token, grouped in
families that end together. The rotation rules (use once, reuse grace, idle and age limits) are
`clinician_api.sessions`'; this module reads and writes the rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import class_row

_INSERT = (
    "INSERT INTO staff_sessions (family_id, user_id, token_hash, family_started_at, client_addr) "
    "VALUES (%s, %s, %s, coalesce(%s, now()), %s)"
)
_REVOKE_FAMILY = (
    "UPDATE staff_sessions SET revoked_at = now(), revoked_reason = %s WHERE family_id = %s AND revoked_at IS NULL"
)
_REVOKE_USER = (
    "UPDATE staff_sessions SET revoked_at = now(), revoked_reason = %s WHERE user_id = %s AND revoked_at IS NULL"
)
_LOCK = (
    "SELECT s.id, s.family_id, s.user_id, s.used_at IS NOT NULL AS used, "
    "coalesce(s.used_at > now() - make_interval(secs => %s), false) AS just_used, s.revoked_at IS NOT NULL AS revoked, "
    "s.created_at < now() - %s AS idle, s.family_started_at < now() - %s AS too_old, s.family_started_at, "
    "u.active AS user_active FROM staff_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = %s "
    "FOR UPDATE OF s"
)
_MARK_USED = "UPDATE staff_sessions SET used_at = now() WHERE id = %s"
_FAMILY = "SELECT family_id, user_id FROM staff_sessions WHERE token_hash = %s"


@dataclass(frozen=True, slots=True)
class TokenState:
    """A refresh token's row, locked, with what the rotation rules ask of it."""

    id: UUID
    family_id: UUID
    user_id: UUID
    used: bool
    just_used: bool
    """Used within the reuse grace."""
    revoked: bool
    idle: bool
    too_old: bool
    family_started_at: datetime
    user_active: bool


@dataclass(frozen=True, slots=True)
class TokenFamily:
    family_id: UUID
    user_id: UUID


def add(
    conn: Connection[Any],
    user_id: UUID,
    family_id: UUID,
    token_hash: bytes,
    family_started_at: datetime | None,
    client_addr: str | None,
) -> None:
    """A token of a family (a new family when `family_started_at` is None: it starts now)."""
    conn.execute(_INSERT, (family_id, user_id, token_hash, family_started_at, client_addr))


def lock(
    conn: Connection[Any], token_hash: bytes, *, grace_seconds: int, idle_after: timedelta, max_age: timedelta
) -> TokenState | None:
    with conn.cursor(row_factory=class_row(TokenState)) as cur:
        return cur.execute(_LOCK, (grace_seconds, idle_after, max_age, token_hash)).fetchone()


def mark_used(conn: Connection[Any], session_id: UUID) -> None:
    conn.execute(_MARK_USED, (session_id,))


def family_of(conn: Connection[Any], token_hash: bytes) -> TokenFamily | None:
    with conn.cursor(row_factory=class_row(TokenFamily)) as cur:
        return cur.execute(_FAMILY, (token_hash,)).fetchone()


def revoke_family(conn: Connection[Any], family_id: UUID, reason: str) -> None:
    conn.execute(_REVOKE_FAMILY, (reason, family_id))


def revoke_user(conn: Connection[Any], user_id: UUID, reason: str) -> None:
    conn.execute(_REVOKE_USER, (reason, user_id))


__all__ = ["TokenFamily", "TokenState", "add", "family_of", "lock", "mark_used", "revoke_family", "revoke_user"]
