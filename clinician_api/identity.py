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
from store import users

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")


def load_principal(conn: Connection[Any], user_id: UUID) -> Principal | None:
    user = users.active_user(conn, user_id)
    if user is None:
        return None
    return Principal(user.id, user.username, user.role, tuple(user.team_ids), user.display_name)


def principal_for_claims(conn: Connection[Any], claims: TokenClaims) -> Principal | None:
    if claims.source == "local":
        assert claims.user_id is not None
        principal = load_principal(conn, claims.user_id)
        # A role changed since the token was issued takes effect at once.
        return principal if principal is not None and principal.role == claims.role else None
    return principal_for_external(conn, claims)


def principal_for_external(conn: Connection[Any], claims: TokenClaims) -> Principal | None:
    """Map an OIDC token to its user row, creating it on first sight; None for a disabled user."""
    user = users.external_user(conn, claims.subject)
    if user is None:
        display_name = claims.display_name or claims.username
        user = users.add_external_user(conn, _free_username(conn, claims), display_name, claims.role, claims.subject)
    if not user.active:
        return None
    if user.role != claims.role or (claims.display_name and user.display_name != claims.display_name):
        users.update_external_user(conn, user.id, claims.role, claims.display_name)
    if claims.teams is not None:
        users.set_team_names(conn, user.id, claims.teams)
    conn.commit()
    return load_principal(conn, user.id)


def _free_username(conn: Connection[Any], claims: TokenClaims) -> str:
    wanted = claims.username.strip().lower()
    if _USERNAME.fullmatch(wanted) and not users.username_taken(conn, wanted):
        return wanted
    return "oidc-" + hashlib.sha256(claims.subject.encode()).hexdigest()[:16]
