"""The built-in token issuer (OAuth2 password form → short-lived bearer JWT, rate limited) and `/me`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordRequestForm

from clinician_api import audit, problems
from clinician_api.deps import Conn, CurrentPrincipal, SettingsDep, client_addr
from clinician_api.identity import load_principal
from clinician_api.metrics import AUTH_FAILURES
from clinician_api.passwords import verify_password
from clinician_api.ratelimit import Budget, address_bucket, give_back, take
from clinician_api.schemas import EmergencyAccess, Me, Team, Token
from clinician_api.security import issue_token

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/auth/token", response_model=Token, responses=problems.responses(401, 429))
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    conn: Conn,
    settings: SettingsDep,
    request: Request,
) -> Token:
    """Exchange username and password for a bearer token. Failed attempts are limited per account and per client
    address over all API replicas."""
    username = form.username.strip().lower()
    addr = client_addr(request)
    budgets = [
        Budget(f"account:{username[:64]}", settings.login_attempts_per_account),
        Budget(address_bucket(addr), settings.login_attempts_per_address),
    ]
    attempt = take(conn, budgets)
    if (retry_after := attempt.retry_after) is not None:
        audit.record(conn, None, "login", "auth/token", "rate_limited", client_addr=addr, username=username[:64])
        conn.commit()
        AUTH_FAILURES.labels(reason="rate_limited").inc()
        raise HTTPException(
            429, f"too many sign-in attempts; try again in {retry_after} s", headers={"Retry-After": str(retry_after)}
        )
    row = conn.execute("SELECT id, password_hash FROM users WHERE username = %s AND active", (username,)).fetchone()
    if row is None or row[1] is None or not verify_password(row[1], form.password):
        audit.record(conn, None, "login", "auth/token", "denied", client_addr=addr, username=username[:64])
        conn.commit()
        AUTH_FAILURES.labels(reason="bad_credentials").inc()
        raise HTTPException(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    principal = load_principal(conn, row[0])
    assert principal is not None
    give_back(conn, attempt)
    access_token, ttl = issue_token(settings, principal.user_id, principal.username, principal.role)
    audit.record(conn, principal, "login", "auth/token", "ok", client_addr=addr)
    return Token(access_token=access_token, expires_in=ttl)


@router.get("/me", response_model=Me, responses=problems.responses(401))
def me(conn: Conn, principal: CurrentPrincipal) -> Me:
    """The caller: role, care teams and unexpired emergency accesses."""
    teams = conn.execute(
        "SELECT id, name FROM care_teams WHERE id = ANY(%s::uuid[]) ORDER BY name", (list(principal.team_ids),)
    ).fetchall()
    grants = conn.execute(
        "SELECT DISTINCT ON (patient_id) id, patient_id, reason, granted_at, expires_at FROM emergency_access "
        "WHERE user_id = %s AND expires_at > now() ORDER BY patient_id, expires_at DESC",
        (principal.user_id,),
    ).fetchall()
    return Me(
        id=principal.user_id,
        username=principal.username,
        display_name=principal.display_name,
        role=principal.role,
        teams=[Team(id=t[0], name=t[1]) for t in teams],
        emergency_access=[
            EmergencyAccess(id=g[0], patient_id=g[1], reason=g[2], granted_at=g[3], expires_at=g[4]) for g in grants
        ],
    )
