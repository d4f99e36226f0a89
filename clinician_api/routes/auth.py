"""The built-in token issuer: OAuth2 password form → short-lived bearer JWT."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from clinician_api import audit
from clinician_api.access import load_principal
from clinician_api.deps import Conn, SettingsDep, client_addr
from clinician_api.passwords import verify_password
from clinician_api.security import issue_token

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


@router.post("/token", response_model=Token, responses={401: {"description": "Wrong username or password"}})
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], conn: Conn, settings: SettingsDep, request: Request
) -> Token:
    row = conn.execute(
        "SELECT id, password_hash FROM users WHERE username = %s AND active", (form.username.lower(),)
    ).fetchone()
    if row is None or row[1] is None or not verify_password(row[1], form.password):
        audit.record(conn, None, "login", "auth/token", "denied", client_addr=client_addr(request))
        raise HTTPException(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    principal = load_principal(conn, row[0])
    assert principal is not None
    access_token, ttl = issue_token(settings, principal.user_id, principal.username, principal.role)
    audit.record(conn, principal, "login", "auth/token", "ok", client_addr=client_addr(request))
    return Token(access_token=access_token, expires_in=ttl)
