"""Who is calling: the user row behind a verified token, with roles and care teams.

Built-in tokens name the user id. OIDC tokens name an external subject: the first request creates the user row
(`external_subject`), and later tokens keep its role and care-team memberships in step with the issuer's claims.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from uuid import UUID

from psycopg import Connection

from clinician_api.access import Principal
from clinician_api.security import TokenClaims

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")


def load_principal(conn: Connection[Any], user_id: UUID) -> Principal | None:
    row = conn.execute(
        "SELECT u.id, u.username, u.role, coalesce(array_agg(m.team_id ORDER BY m.team_id) "
        "FILTER (WHERE m.team_id IS NOT NULL), '{}'), u.display_name FROM users u "
        "LEFT JOIN team_memberships m ON m.user_id = u.id WHERE u.id = %s AND u.active GROUP BY u.id",
        (user_id,),
    ).fetchone()
    if row is None:
        return None
    return Principal(row[0], row[1], row[2], tuple(row[3]), row[4])


def principal_for_claims(conn: Connection[Any], claims: TokenClaims) -> Principal | None:
    if claims.source == "local":
        assert claims.user_id is not None
        principal = load_principal(conn, claims.user_id)
        # A role changed since the token was issued takes effect at once.
        return principal if principal is not None and principal.role == claims.role else None
    return principal_for_external(conn, claims)


def principal_for_external(conn: Connection[Any], claims: TokenClaims) -> Principal | None:
    """Map an OIDC token to its user row, creating it on first sight; None for a disabled user."""
    row = conn.execute(
        "SELECT id, active, role, display_name FROM users WHERE external_subject = %s", (claims.subject,)
    ).fetchone()
    if row is None:
        row = conn.execute(
            "INSERT INTO users (username, display_name, role, external_subject) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (external_subject) DO UPDATE SET role = EXCLUDED.role "
            "RETURNING id, active, role, display_name",
            (_free_username(conn, claims), claims.display_name or claims.username, claims.role, claims.subject),
        ).fetchone()
        assert row is not None
    user_id, active, role, display_name = row
    if not active:
        return None
    if role != claims.role or (claims.display_name and display_name != claims.display_name):
        conn.execute(
            "UPDATE users SET role = %s, display_name = coalesce(nullif(%s, ''), display_name) WHERE id = %s",
            (claims.role, claims.display_name, user_id),
        )
    if claims.teams is not None:
        _sync_teams(conn, user_id, claims.teams)
    conn.commit()
    return load_principal(conn, user_id)


def _free_username(conn: Connection[Any], claims: TokenClaims) -> str:
    wanted = claims.username.strip().lower()
    if (
        _USERNAME.fullmatch(wanted)
        and conn.execute("SELECT 1 FROM users WHERE username = %s", (wanted,)).fetchone() is None
    ):
        return wanted
    return "oidc-" + hashlib.sha256(claims.subject.encode()).hexdigest()[:16]


def _sync_teams(conn: Connection[Any], user_id: UUID, team_names: tuple[str, ...]) -> None:
    """Memberships become exactly the claimed teams that exist; unknown team names are ignored."""
    conn.execute(
        "DELETE FROM team_memberships m WHERE m.user_id = %s AND m.team_id NOT IN "
        "(SELECT id FROM care_teams WHERE name = ANY(%s))",
        (user_id, list(team_names)),
    )
    conn.execute(
        "INSERT INTO team_memberships (user_id, team_id) SELECT %s, id FROM care_teams WHERE name = ANY(%s) "
        "ON CONFLICT DO NOTHING",
        (user_id, list(team_names)),
    )
