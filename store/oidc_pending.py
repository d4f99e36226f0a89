"""Sign-ins begun with an OpenID provider and not yet finished (`oidc_pending`): the state, nonce and PKCE verifier
kept server-side, so any API replica can finish a sign-in another began. A state is spent on first use. What makes a
sign-in valid (the ID token's signature, audience, nonce) is `clinician_api.citizen.oidc`'s."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from psycopg import Connection
from psycopg.rows import class_row


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    nonce: str
    code_verifier: str
    next: str | None
    fresh: bool
    """Not yet expired."""


def begin(
    conn: Connection[Any],
    *,
    state: str,
    audience: str,
    nonce: str,
    code_verifier: str,
    next_path: str | None,
    valid_for: timedelta,
) -> None:
    """Remember a sign-in begun (and forget the expired ones)."""
    conn.execute("DELETE FROM oidc_pending WHERE expires_at < now()")
    conn.execute(
        "INSERT INTO oidc_pending (state, audience, nonce, code_verifier, next, expires_at) "
        "VALUES (%s, %s, %s, %s, %s, now() + %s)",
        (state, audience, nonce, code_verifier, next_path, valid_for),
    )


def spend(conn: Connection[Any], state: str, audience: str) -> PendingSignIn | None:
    """The sign-in with this state, removed (a state is used once); None if unknown or already used."""
    with conn.cursor(row_factory=class_row(PendingSignIn)) as cur:
        return cur.execute(
            "DELETE FROM oidc_pending WHERE state = %s AND audience = %s "
            "RETURNING nonce, code_verifier, next, expires_at > now() AS fresh",
            (state, audience),
        ).fetchone()


__all__ = ["PendingSignIn", "begin", "spend"]
