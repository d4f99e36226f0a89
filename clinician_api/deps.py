"""FastAPI dependencies: a database connection per request and the authenticated principal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer
from psycopg import Connection

from clinician_api.access import Principal, load_principal
from clinician_api.security import TokenError, verify_token
from store.db import get_pool
from store.settings import Settings, get_settings

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def settings_dep() -> Settings:
    return get_settings()


def db_conn() -> Iterator[Connection[Any]]:
    """One pooled connection per request; committed when the route returns, rolled back on error."""
    with get_pool().connection() as conn:
        yield conn


Conn = Annotated[Connection[Any], Depends(db_conn)]
SettingsDep = Annotated[Settings, Depends(settings_dep)]

_UNAUTHENTICATED = HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


def current_principal(
    conn: Conn, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    if not token:
        raise _UNAUTHENTICATED
    try:
        claims = verify_token(settings, token)
    except TokenError:
        raise _UNAUTHENTICATED from None
    principal = load_principal(conn, claims.user_id)
    if principal is None:
        raise _UNAUTHENTICATED
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def client_addr(request: Request) -> str | None:
    return request.client.host if request.client else None
