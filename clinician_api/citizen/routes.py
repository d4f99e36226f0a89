"""The patient app's JSON API (`/api/v1/min/…`) and the OpenID Connect sign-in routes of both audiences.

Patients and relatives authenticate with the session cookie of `sessions`; each patient route goes through
`access.scope_needing(right)`, which decides and audits. Staff sign in through their issuer and get the
dashboard's ordinary bearer token through a one-time handoff code.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Cookie, Depends, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from clinician_api import consent, messages, problems, proxies
from clinician_api import sessions as staff_sessions
from clinician_api.citizen import answers, oidc, sessions, views
from clinician_api.citizen.access import OWN, CitizenScope, CurrentCitizen, acting_for, scope_needing
from clinician_api.citizen.schemas import (
    Handoff,
    NewMessage,
    NewThread,
    PasswordLogin,
    ProxyGrant,
    QuestionnaireAnswer,
    ReservationChange,
    end_is_future,
)
from clinician_api.deps import Conn, SettingsDep, client_addr
from clinician_api.identity import load_principal
from clinician_api.metrics import AUTH_FAILURES
from clinician_api.passwords import verify_password
from clinician_api.ratelimit import Attempt, Budget, address_bucket, give_back, take
from clinician_api.schemas import Token
from clinician_api.security import issue_token
from store import audit, citizens, staff_handoffs
from store.settings import Settings

router = APIRouter(prefix="/api/v1/min", tags=["patient app"], responses=problems.responses(401, 403, 404, 422, 429))
signin = APIRouter(tags=["sign-in"], include_in_schema=True)

Lang = Annotated[Literal["nb", "en"], Query()]
MinPage = "/min/"


def _scope(right: str) -> Any:
    return Depends(scope_needing(right), scope="function")


Measurements = Annotated[CitizenScope, _scope("read_measurements")]
Plan = Annotated[CitizenScope, _scope("read_plan")]
Questionnaires = Annotated[CitizenScope, _scope("answer_questionnaires")]
Messages = Annotated[CitizenScope, _scope("write_messages")]
AccessLog = Annotated[CitizenScope, _scope("read_access_log")]
Own = Annotated[CitizenScope, _scope(OWN)]


def password_login_enabled(settings: Settings) -> bool:
    if settings.citizen_password_login is not None:
        return settings.citizen_password_login
    return settings.environment != "production"


def _base_url(settings: Settings, request: Request) -> str:
    return (settings.public_url or f"{request.url.scheme}://{request.url.netloc}").rstrip("/")


def _set_session(response: Response, request: Request, raw: str, settings: Settings) -> None:
    response.set_cookie(
        sessions.COOKIE,
        raw,
        max_age=settings.citizen_session_max_hours * 3600,
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="lax",  # the callback arrives as a top-level navigation from the issuer
        path="/",
    )


def safe_min_next(target: str | None) -> str:
    if target is None or "\\" in target or not target.startswith(MinPage) or target.startswith("//"):
        return MinPage
    return target


# Starting a sign-in guesses nothing (the issuer checks the person); its budget only bounds the pending rows one
# address can make. Local sign-in draws on the same PostgreSQL budgets as the staff token endpoint.
START_ATTEMPTS = 60


def _rate_limited(conn: Conn, budgets: list[Budget]) -> Attempt:
    attempt = take(conn, budgets)
    if (retry_after := attempt.retry_after) is not None:
        AUTH_FAILURES.labels(reason="rate_limited").inc()
        raise HTTPException(
            429, f"too many sign-in attempts; try again in {retry_after} s", headers={"Retry-After": str(retry_after)}
        )
    return attempt


# --- patients' and relatives' sign-in -------------------------------------------------------------------------


@signin.get("/auth/oidc/patient/start", include_in_schema=False)
def patient_start(
    conn: Conn,
    settings: SettingsDep,
    request: Request,
    next_: Annotated[str | None, Query(alias="next", max_length=500)] = None,
) -> Response:
    """Send the browser to the national sign-in (authorization code + PKCE)."""
    issuer = oidc.issuer_for(settings, "patient")
    if issuer is None:
        raise HTTPException(404, "national sign-in is not configured here")
    _rate_limited(conn, [Budget(f"oidc-start:{client_addr(request) or 'unknown'}", START_ATTEMPTS)])
    try:
        url = oidc.start(
            conn, issuer, f"{_base_url(settings, request)}/auth/oidc/patient/callback", safe_min_next(next_)
        )
    except oidc.OidcError:
        return RedirectResponse("/min/login?reason=unavailable", status_code=303)
    return RedirectResponse(url, status_code=303)


@signin.get("/auth/oidc/patient/callback", include_in_schema=False)
def patient_callback(conn: Conn, settings: SettingsDep, request: Request) -> Response:
    issuer = oidc.issuer_for(settings, "patient")
    if issuer is None:
        raise HTTPException(404, "national sign-in is not configured here")
    addr = client_addr(request)
    try:
        done = oidc.finish(
            conn, issuer, f"{_base_url(settings, request)}/auth/oidc/patient/callback", dict(request.query_params)
        )
    except oidc.OidcError as exc:
        audit.record(conn, None, "login", "auth/oidc/patient", "denied", client_addr=addr, reason=str(exc)[:200])
        conn.commit()
        AUTH_FAILURES.labels(reason="oidc_failed").inc()
        return RedirectResponse("/min/login?reason=failed", status_code=303)
    name = done.claims.get("name")
    citizen_id = (
        sessions.citizen_for_national_id(conn, done.subject_claim, str(name) if name else None)
        if len(done.subject_claim) == 11 and done.subject_claim.isdigit()
        else None
    )
    if citizen_id is None:
        audit.record(conn, None, "login", "auth/oidc/patient", "unknown_person", client_addr=addr)
        conn.commit()
        return RedirectResponse("/min/login?reason=unknown", status_code=303)
    raw = sessions.open_session(conn, settings, citizen_id, "oidc")
    audit.record_citizen(
        conn, citizen_id, "citizen", "login", "auth/oidc/patient", "ok", patient_id=None, client_addr=addr
    )
    response = RedirectResponse(safe_min_next(done.next_path), status_code=303)
    _set_session(response, request, raw, settings)
    return response


@router.post("/session", status_code=204)
def password_session(body: PasswordLogin, conn: Conn, settings: SettingsDep, request: Request) -> Response:
    """The demo's local sign-in for patients and relatives (off in production unless enabled)."""
    if not password_login_enabled(settings):
        raise HTTPException(404, "local sign-in is off here; use the national sign-in")
    username = body.username.lower()
    addr = client_addr(request)
    attempt = _rate_limited(
        conn,
        [
            Budget(f"citizen:{username[:64]}", settings.login_attempts_per_account),
            Budget(address_bucket(addr), settings.login_attempts_per_address),
        ],
    )
    login = citizens.password_login(conn, username)
    if login is None or login.password_hash is None or not verify_password(login.password_hash, body.password):
        audit.record(conn, None, "login", "min/session", "denied", client_addr=addr, username=username[:64])
        conn.commit()
        AUTH_FAILURES.labels(reason="bad_credentials").inc()
        raise HTTPException(401, "wrong username or password")
    give_back(conn, attempt)
    raw = sessions.open_session(conn, settings, login.id, "password")
    audit.record_citizen(conn, login.id, "citizen", "login", "min/session", "ok", patient_id=None, client_addr=addr)
    response = Response(status_code=204)
    _set_session(response, request, raw, settings)
    return response


@router.post("/logout", status_code=204)
def logout(conn: Conn, session: Annotated[str | None, Cookie(alias=sessions.COOKIE)] = None) -> Response:
    sessions.end_session(conn, session)
    response = Response(status_code=204)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


@router.get("/me")
def me(conn: Conn, citizen: CurrentCitizen) -> dict[str, Any]:
    """Who is signed in, and each patient they may act for (themself, and through each live proxy)."""
    return {
        "id": citizen.id,
        "name": citizen.display_name,
        "patients": [
            {
                "patient_id": a.patient_id,
                "name": a.patient_name,
                "own": a.own,
                "relation": a.relation,
                "rights": sorted(r for r in a.rights if r != OWN),
                "valid_until": a.valid_until,
            }
            for a in acting_for(conn, citizen)
        ],
    }


# --- the patient's data -----------------------------------------------------------------------------------------


@router.get("/patients/{patient_id}/measurements")
def my_measurements(scope: Measurements, lang: Lang = "nb", days: Annotated[int, Query(ge=1, le=90)] = 30) -> Any:
    return views.measurements(scope.conn, scope.patient_id, lang, days)


@router.get("/patients/{patient_id}/alarms")
def my_alarms(scope: Measurements, lang: Lang = "nb") -> Any:
    return {"items": views.alarm_outcomes(scope.conn, scope.patient_id, lang)}


@router.get("/patients/{patient_id}/plan")
def my_plan(scope: Plan, lang: Lang = "nb") -> Any:
    return {"plan": views.plan_view(scope.conn, scope.patient_id, lang)}


@router.get("/patients/{patient_id}/reminders")
def my_reminders(scope: Plan, lang: Lang = "nb") -> Any:
    return views.reminders(scope.conn, scope.patient_id, lang)


@router.get("/patients/{patient_id}/access-log")
def my_access_log(scope: AccessLog, before: Annotated[int | None, Query(ge=1)] = None) -> Any:
    return views.access_log(scope.conn, scope.patient_id, before=before)


@router.get("/patients/{patient_id}/questionnaires")
def my_questionnaires(scope: Questionnaires, lang: Lang = "nb") -> Any:
    """The plan's questionnaires to answer, and today's answer to each (when, its zone, who gave it)."""
    return answers.questionnaires(scope.conn, scope.patient_id, lang)


@router.post("/patients/{patient_id}/questionnaires/{questionnaire_id}/responses", status_code=201)
def my_answer(
    scope: Questionnaires,
    questionnaire_id: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,39}$")],
    body: QuestionnaireAnswer,
    lang: Lang = "nb",
) -> Any:
    """Answer the plan's questionnaire as the patient, or as a relative whose proxy gives this right: stored and
    scored like an answer on the gateway's screen (the questionnaire alarm included), audited under who answered."""
    scope.action = "answer_questionnaire"
    try:
        done = answers.answer(
            scope.conn,
            scope.patient_id,
            questionnaire_id,
            body.plan_version,
            body.answers,
            lang,
            citizen_id=scope.citizen.id,
            proxy_id=scope.acting.proxy_id,
        )
    except answers.UnknownQuestionnaireError as exc:
        raise HTTPException(404, str(exc)) from None
    except answers.PlanChangedError as exc:
        raise HTTPException(409, f"{exc}; load the questionnaire again") from None
    except answers.AnswerError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"id": done.id, "answered_at": done.answered_at, "zone": done.zone, "advice": done.advice}


def _author(scope: CitizenScope) -> messages.Author:
    return messages.Author(
        name=scope.citizen.display_name,
        role=scope.acting.role,
        citizen_id=scope.citizen.id,
        proxy_id=scope.acting.proxy_id,
    )


@router.get("/patients/{patient_id}/threads")
def my_threads(scope: Messages) -> Any:
    return {"items": messages.threads(scope.conn, scope.patient_id, "patient")}


@router.post("/patients/{patient_id}/threads", status_code=201)
def new_thread(scope: Messages, body: NewThread) -> Any:
    thread_id = messages.start_thread(scope.conn, scope.patient_id, body.subject, body.body, _author(scope))
    return messages.thread(scope.conn, scope.patient_id, thread_id, "patient")


@router.get("/patients/{patient_id}/threads/{thread_id}")
def my_thread(scope: Messages, thread_id: UUID) -> Any:
    found = messages.thread(scope.conn, scope.patient_id, thread_id, "patient")
    if found is None:
        raise HTTPException(404, "no such thread")
    return found


@router.post("/patients/{patient_id}/threads/{thread_id}/messages", status_code=201)
def my_reply(scope: Messages, thread_id: UUID, body: NewMessage) -> Any:
    if messages.post(scope.conn, scope.patient_id, thread_id, body.body, _author(scope)) is None:
        raise HTTPException(404, "no such thread")
    return messages.thread(scope.conn, scope.patient_id, thread_id, "patient")


@router.get("/patients/{patient_id}/sharing")
def my_sharing(scope: Own) -> Any:
    """The patient's reservations and the proxies they have given."""
    return {
        "reservations": consent.reservations(scope.conn, scope.patient_id),
        "proxies": proxies.for_patient(scope.conn, scope.patient_id),
    }


@router.put("/patients/{patient_id}/reservations/{kind}")
def my_reservation(scope: Own, kind: consent.Reservation, body: ReservationChange) -> Any:
    scope.action = "reserve" if body.reserved else "unreserve"
    consent.set_reservation(scope.conn, scope.patient_id, kind, body.reserved, citizen_id=scope.citizen.id)
    return consent.reservations(scope.conn, scope.patient_id)


@router.post("/patients/{patient_id}/proxies", status_code=201)
def my_proxy_grant(scope: Own, body: ProxyGrant) -> Any:
    problem = end_is_future(body.valid_until)
    if problem:
        raise HTTPException(422, problem)
    if body.relative_national_id == scope.citizen.national_id:
        raise HTTPException(422, "you cannot give a proxy to yourself")
    scope.action = "grant_proxy"
    return proxies.grant(
        scope.conn,
        scope.patient_id,
        relative_national_id=body.relative_national_id,
        relative_name=body.relative_name,
        relation=body.relation,
        rights=list(body.rights),
        valid_until=body.valid_until,
        citizen_id=scope.citizen.id,
    )


@router.post("/patients/{patient_id}/proxies/{proxy_id}/revoke")
def my_proxy_revoke(scope: Own, proxy_id: UUID) -> Any:
    scope.action = "revoke_proxy"
    found = proxies.revoke(scope.conn, scope.patient_id, proxy_id, citizen_id=scope.citizen.id)
    if found is None:
        raise HTTPException(404, "no such proxy")
    return found


# --- staff sign-in through the staff issuer ------------------------------------------------------------------------

_HANDOFF_SECONDS = 60


@signin.get("/auth/oidc/staff/start", include_in_schema=False)
def staff_start(
    conn: Conn,
    settings: SettingsDep,
    request: Request,
    next_: Annotated[str | None, Query(alias="next", max_length=500)] = None,
) -> Response:
    issuer = oidc.issuer_for(settings, "staff")
    if issuer is None:
        raise HTTPException(404, "staff sign-in through an issuer is not configured here")
    _rate_limited(conn, [Budget(f"oidc-start:{client_addr(request) or 'unknown'}", START_ATTEMPTS)])
    target = next_ if next_ and next_.startswith("/dashboard/") and "\\" not in next_ else "/dashboard/"
    try:
        url = oidc.start(conn, issuer, f"{_base_url(settings, request)}/auth/oidc/staff/callback", target)
    except oidc.OidcError:
        return RedirectResponse("/dashboard/login?reason=oidc_failed", status_code=303)
    return RedirectResponse(url, status_code=303)


@signin.get("/auth/oidc/staff/callback", include_in_schema=False)
def staff_callback(conn: Conn, settings: SettingsDep, request: Request) -> Response:
    """Map the issuer's HPR-number claim to an active user; hand the dashboard a one-time code in the fragment
    (never sent to a server, never in a log), which it exchanges for a bearer token."""
    issuer = oidc.issuer_for(settings, "staff")
    if issuer is None:
        raise HTTPException(404, "staff sign-in through an issuer is not configured here")
    addr = client_addr(request)
    try:
        done = oidc.finish(
            conn, issuer, f"{_base_url(settings, request)}/auth/oidc/staff/callback", dict(request.query_params)
        )
    except oidc.OidcError as exc:
        audit.record(conn, None, "login", "auth/oidc/staff", "denied", client_addr=addr, reason=str(exc)[:200])
        conn.commit()
        AUTH_FAILURES.labels(reason="oidc_failed").inc()
        return RedirectResponse("/dashboard/login?reason=oidc_failed", status_code=303)
    users = staff_handoffs.users_with_hpr(conn, done.subject_claim)
    if len(users) != 1:
        audit.record(conn, None, "login", "auth/oidc/staff", "unknown_hpr", client_addr=addr)
        conn.commit()
        return RedirectResponse("/dashboard/login?reason=oidc_unknown", status_code=303)
    code = secrets.token_urlsafe(32)
    staff_handoffs.insert(conn, hashlib.sha256(code.encode()).digest(), users[0], timedelta(seconds=_HANDOFF_SECONDS))
    next_path = quote(done.next_path or "/dashboard/", safe="/")
    return RedirectResponse(f"/dashboard/oidc?next={next_path}#code={code}", status_code=303)


@signin.post("/api/v1/auth/oidc/handoff", response_model=Token, tags=["auth"], responses=problems.responses(401, 422))
def staff_handoff(body: Handoff, conn: Conn, settings: SettingsDep, request: Request, response: Response) -> Token:
    """Exchange the one-time code of a staff sign-in for a dashboard session (once, within a minute): the same
    short-lived bearer token and refresh cookie as a password sign-in (`clinician_api.sessions`)."""
    user_id = staff_handoffs.use(conn, hashlib.sha256(body.code.encode()).digest())
    principal = load_principal(conn, user_id) if user_id else None
    if principal is None:
        raise HTTPException(401, "this sign-in code is unknown, used or expired")
    staff_sessions.set_cookie(
        response, request, settings, staff_sessions.start(conn, principal.user_id, client_addr(request))
    )
    access_token, ttl = issue_token(
        settings, principal.user_id, principal.username, principal.role, settings.session_access_minutes
    )
    audit.record(conn, principal, "login", "auth/oidc/staff", "ok", client_addr=client_addr(request))
    return Token(access_token=access_token, expires_in=ttl, idle_timeout=settings.session_idle_minutes * 60)
