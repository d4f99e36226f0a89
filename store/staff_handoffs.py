"""Staff sign-in through the staff issuer, the one reader and writer of `staff_handoffs`: the active user an HPR
number names, and the one-time codes (by hash) that hand the dashboard its session once, before they expire.

Each function is one statement in the caller's transaction; making the code and the session is
`clinician_api.citizen.routes`'.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import scalar_row


def users_with_hpr(conn: Connection[Any], hpr_number: str) -> list[UUID]:
    """The active users with this HPR number, the oldest first; at most two (more than one is ambiguous)."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute(
            "SELECT id FROM users WHERE hpr_number = %s AND active ORDER BY created_at LIMIT 2", (hpr_number,)
        ).fetchall()


def insert(conn: Connection[Any], code_hash: bytes, user_id: UUID, lasts: timedelta) -> None:
    conn.execute(
        "INSERT INTO staff_handoffs (code_hash, user_id, expires_at) VALUES (%s, %s, now() + %s)",
        (code_hash, user_id, lasts),
    )


def use(conn: Connection[Any], code_hash: bytes) -> UUID | None:
    """The user of an unused, unexpired code, which is used from now on; None for any other code."""
    with conn.cursor(row_factory=scalar_row) as cur:
        user_id: UUID | None = cur.execute(
            "UPDATE staff_handoffs SET used_at = now() WHERE code_hash = %s AND used_at IS NULL "
            "AND expires_at > now() RETURNING user_id",
            (code_hash,),
        ).fetchone()
    return user_id


__all__ = ["insert", "use", "users_with_hpr"]
