"""The built-in token issuer (OAuth2 password form → short-lived bearer JWT, rate limited), the dashboard's
sessions (`/auth/session`, `/auth/refresh`, `/auth/logout`: see `clinician_api.sessions`) and `/me`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from psycopg import Connection

from clinician_api import problems, sessions
from clinician_api.access import Principal
from clinician_api.deps import Conn, CurrentPrincipal, SettingsDep, client_addr
from clinician_api.identity import load_principal
from clinician_api.metrics import AUTH_FAILURES
from clinician_api.passwords import verify_password
from clinician_api.ratelimit import Budget, address_bucket, give_back, take
from clinician_api.schemas import EmergencyAccess, Me, Team, Token
from clinician_api.security import issue_token
from store import access as store_access
from store import audit, users
from store.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["auth"])


def _authenticate(
    form: OAuth2PasswordRequestForm, conn: Connection[Any], settings: Settings, request: Request, resource: str
) -> Principal:
    """Check a password form. Failed attempts are limited per account and per client address over all API
    replicas (`clinician_api.ratelimit`); a success gives its attempt back."""
    username = form.username.strip().lower()
    addr = client_addr(request)
    budgets = [
        Budget(f"account:{username[:64]}", settings.login_attempts_per_account),
        Budget(address_bucket(addr), settings.login_attempts_per_address),
    ]
    attempt = take(conn, budgets)
    if (retry_after := attempt.retry_after) is not None:
        audit.record(conn, None, "login", resource, "rate_limited", client_addr=addr, username=username[:64])
        conn.commit()
        AUTH_FAILURES.labels(reason="rate_limited").inc()
        raise HTTPException(
            429, f"too many sign-in attempts; try again in {retry_after} s", headers={"Retry-After": str(retry_after)}
        )
    user = users.credentials(conn, username)
    if user is None or user.password_hash is None or not verify_password(user.password_hash, form.password):
        audit.record(conn, None, "login", resource, "denied", client_addr=addr, username=username[:64])
        conn.commit()
        AUTH_FAILURES.labels(reason="bad_credentials").inc()
        raise HTTPException(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    principal = load_principal(conn, user.id)
    assert principal is not None
    give_back(conn, attempt)
    audit.record(conn, principal, "login", resource, "ok", client_addr=addr)
    return principal


@router.post("/auth/token", response_model=Token, responses=problems.responses(401, 429))
def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    conn: Conn,
    settings: SettingsDep,
    request: Request,
) -> Token:
    """Exchange username and password for a bearer token. Failed attempts are limited per account and per client
    address over all API replicas."""
    principal = _authenticate(form, conn, settings, request, "auth/token")
    access_token, ttl = issue_token(settings, principal.user_id, principal.username, principal.role)
    return Token(access_token=access_token, expires_in=ttl)


def _session_token(settings: Settings, principal: Principal) -> Token:
    access_token, ttl = issue_token(
        settings, principal.user_id, principal.username, principal.role, settings.session_access_minutes
    )
    return Token(access_token=access_token, expires_in=ttl, idle_timeout=settings.session_idle_minutes * 60)


@router.post("/auth/session", response_model=Token, responses=problems.responses(401, 429))
def open_session(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    conn: Conn,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> Token:
    """Sign in to the dashboard: a short-lived bearer token, and a refresh token in an HttpOnly, SameSite=Strict
    cookie (path /api/v1/auth) that `/auth/refresh` exchanges for the next pair while the page is in use."""
    principal = _authenticate(form, conn, settings, request, "auth/session")
    sessions.set_cookie(response, request, settings, sessions.start(conn, principal.user_id, client_addr(request)))
    return _session_token(settings, principal)


SessionHeader = Annotated[str | None, Header(alias=sessions.SESSION_HEADER)]
IdleHeader = Annotated[int | None, Header(alias=sessions.IDLE_HEADER, ge=0, le=10**12)]


@router.post("/auth/refresh", response_model=Token, responses=problems.responses(401, 403))
def refresh(
    conn: Conn,
    settings: SettingsDep,
    request: Request,
    response: Response,
    marker: SessionHeader = None,
    idle_ms: IdleHeader = None,
) -> Token:
    """Renew a dashboard session: the refresh cookie is used once and replaced. A refresh token used twice ends
    its session (someone else holds a copy); so do the idle timeout (no renewal, or a page reporting no input in
    `X-Varde-Idle-Ms` for that long) and the session's maximum age."""
    if marker != "1":
        raise HTTPException(403, f"the {sessions.SESSION_HEADER} header is required")
    raw = sessions.cookie_of(request)
    addr = client_addr(request)
    if raw is None:
        AUTH_FAILURES.labels(reason="missing_refresh").inc()
        raise HTTPException(401, "no session to renew; sign in again")
    try:
        idle_for = None if idle_ms is None else timedelta(milliseconds=idle_ms)
        renewal = sessions.rotate(conn, settings, raw, addr, idle_for)
    except sessions.SessionError as exc:
        AUTH_FAILURES.labels(reason=f"refresh_{exc.reason}").inc()
        audit.record(conn, None, "refresh", "auth/refresh", f"denied:{exc.reason}", client_addr=addr)
        conn.commit()
        cleared = Response()
        sessions.clear_cookie(cleared)
        raise HTTPException(401, str(exc), headers={"set-cookie": cleared.headers["set-cookie"]}) from None
    principal = load_principal(conn, renewal.user_id)
    if principal is None:
        raise HTTPException(401, "the user is disabled")
    sessions.set_cookie(response, request, settings, renewal.refresh_token)
    return _session_token(settings, principal)


@router.post("/auth/logout", status_code=204, responses=problems.responses(401, 403))
def logout(conn: Conn, request: Request, response: Response, marker: SessionHeader = None) -> Response:
    """Sign out of the dashboard: the session's refresh tokens stop working at once and the cookie is cleared.
    (An access token already issued lives out its few minutes; the page forgets it.)"""
    if marker != "1":
        raise HTTPException(403, f"the {sessions.SESSION_HEADER} header is required")
    raw = sessions.cookie_of(request)
    user_id = sessions.end(conn, raw) if raw else None
    principal = load_principal(conn, user_id) if user_id else None
    audit.record(conn, principal, "logout", "auth/logout", "ok", client_addr=client_addr(request))
    answer = Response(status_code=204)
    sessions.clear_cookie(answer)
    return answer


@router.get("/me", response_model=Me, responses=problems.responses(401))
def me(conn: Conn, principal: CurrentPrincipal) -> Me:
    """The caller: role, care teams and unexpired emergency accesses."""
    return Me(
        lead_of=users.lead_of(conn, principal.user_id),
        id=principal.user_id,
        username=principal.username,
        display_name=principal.display_name,
        role=principal.role,
        teams=[Team(id=t.id, name=t.name) for t in users.teams(conn, principal.team_ids)],
        emergency_access=[
            EmergencyAccess(
                id=g.id, patient_id=g.patient_id, reason=g.reason, granted_at=g.granted_at, expires_at=g.expires_at
            )
            for g in store_access.active_grants(conn, principal.user_id)
        ],
    )
