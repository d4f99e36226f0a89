"""FastAPI dependencies: a database connection per request, the authenticated principal, role checks, and the
duty-of-care gate every patient route goes through (`PatientDep`, `AlarmDep`), which also writes the audit row.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any
from uuid import UUID

import psycopg
from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import OAuth2PasswordBearer
from psycopg import Connection

from clinician_api.access import BASIS_TEAM, PatientAccess, Principal, alarm_patient, patient_access
from clinician_api.fhir_search import FhirError
from clinician_api.gateway_link import GatewayPublisher
from clinician_api.identity import principal_for_claims
from clinician_api.metrics import AUTH_FAILURES
from clinician_api.problems import ProblemError
from clinician_api.security import TokenError, verify_token
from store import audit
from store.access import reading_patient
from store.db import LazyPool
from store.settings import Settings, get_settings

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token",
    auto_error=False,
    description="A bearer token from the built-in issuer (POST /api/v1/auth/token) or the configured OIDC issuer.",
)


def settings_dep(request: Request) -> Settings:
    """The app's settings (given to `create_app`, else the process-wide settings object)."""
    settings: Settings | None = getattr(request.app.state, "settings", None)
    return settings or get_settings()


def db_conn(request: Request) -> Iterator[Connection[Any]]:
    """One connection from the app's pool (`create_app`'s settings) per request: one transaction, committed when
    the route returns (before the response is sent), rolled back when it raises."""
    pool: LazyPool = request.app.state.pool
    with pool.get().connection() as conn:
        yield conn


Conn = Annotated[Connection[Any], Depends(db_conn, scope="function")]
SettingsDep = Annotated[Settings, Depends(settings_dep)]


def _gateway_publisher(request: Request) -> GatewayPublisher:
    publisher: GatewayPublisher = request.app.state.gateway_publisher
    return publisher


GatewayLink = Annotated[GatewayPublisher, Depends(_gateway_publisher)]
"""The API process's MQTT client for messages to gateways (plans, receipts)."""

_UNAUTHENTICATED = HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


def client_addr(request: Request) -> str | None:
    """The caller's address for audit and rate limits: the TCP peer, or what a trusted proxy (and only one, see
    VARDE_FORWARDED_ALLOW_IPS) forwarded; None when that is not an IP address."""
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


def current_principal(
    conn: Conn, settings: SettingsDep, request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    if not token:
        AUTH_FAILURES.labels(reason="missing_token").inc()
        raise _UNAUTHENTICATED
    try:
        claims = verify_token(settings, token)
    except TokenError:
        AUTH_FAILURES.labels(reason="invalid_token").inc()
        raise _UNAUTHENTICATED from None
    principal = principal_for_claims(conn, claims)
    if principal is None:
        AUTH_FAILURES.labels(reason="unknown_principal").inc()
        raise _UNAUTHENTICATED
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Any:
    """A dependency admitting only the given roles (403 otherwise)."""

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            AUTH_FAILURES.labels(reason="forbidden_role").inc()
            raise HTTPException(403, f"this needs the role {' or '.join(roles)}; you are {principal.role}")
        return principal

    return Depends(check)


Clinician = Annotated[Principal, require_roles("nurse", "physician")]
Admin = Annotated[Principal, require_roles("admin")]

_ACTIONS = {"GET": "read", "HEAD": "read", "POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}
NOT_IN_CARE = "no such patient in your care teams"


@dataclass
class PatientScope:
    """A patient the caller has a duty of care for, within this request's transaction.

    The dependency writes one audit row when the route finishes: `action` (from the HTTP method unless the route
    names it), `resource` (the request path) and `outcome`. A refused or failed route is audited too.
    """

    patient_id: UUID
    principal: Principal
    access: PatientAccess
    conn: Connection[Any]
    client_addr: str | None
    action: str
    resource: str
    outcome: str = "ok"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def emergency(self) -> bool:
        return self.access.emergency

    def write_audit(self, outcome: str | None = None) -> None:
        audit.record(
            self.conn,
            self.principal,
            self.action,
            self.resource,
            outcome or self.outcome,
            patient_id=self.patient_id,
            team_id=self.access.team_id if self.access.basis == BASIS_TEAM else None,
            client_addr=self.client_addr,
            emergency=self.access.emergency,
            reason=self.access.reason or (self.access.basis if self.access.read_only else None),
        )


@dataclass
class AlarmScope(PatientScope):
    alarm_id: UUID | None = None


def _deny(conn: Connection[Any], principal: Principal, request: Request, patient_id: UUID | None) -> HTTPException:
    audit.record(
        conn,
        principal,
        _ACTIONS.get(request.method, request.method.lower()),
        request.url.path,
        "denied",
        patient_id=patient_id,
        client_addr=client_addr(request),
    )
    conn.commit()
    AUTH_FAILURES.labels(reason="no_duty_of_care").inc()
    return HTTPException(404, NOT_IN_CARE)


_READS = ("GET", "HEAD")
READ_ONLY_REFUSAL = "your team has read-only access to this patient (consultative, or a hand-over awaiting your answer)"


def _gate(conn: Connection[Any], principal: Principal, request: Request, patient_id: UUID | None) -> PatientAccess:
    """The access for the request, or the refusal: 404 without duty of care, 403 for a write on read-only access
    (both audited)."""
    access = patient_access(conn, principal, patient_id) if patient_id else None
    if access is None:
        raise _deny(conn, principal, request, patient_id)
    if access.read_only and request.method not in _READS:
        audit.record(
            conn,
            principal,
            _ACTIONS.get(request.method, request.method.lower()),
            request.url.path,
            "refused:403",
            patient_id=patient_id,
            client_addr=client_addr(request),
            reason=access.basis,
        )
        conn.commit()
        AUTH_FAILURES.labels(reason="read_only_access").inc()
        raise HTTPException(403, READ_ONLY_REFUSAL)
    return access


def _status_of(exc: BaseException) -> int:
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, ProblemError):
        return exc.status
    if isinstance(exc, FhirError):
        return exc.status
    return 422 if isinstance(exc, RequestValidationError | psycopg.DataError) else 500


def _audited(scope: PatientScope) -> Iterator[Any]:
    try:
        yield scope
    except Exception as exc:
        with contextlib.suppress(psycopg.Error):
            scope.conn.rollback()
            scope.write_audit(f"refused:{_status_of(exc)}")
            scope.conn.commit()
        raise
    else:
        scope.write_audit()


def _scope_kwargs(
    conn: Connection[Any], principal: Principal, request: Request, access: PatientAccess
) -> dict[str, Any]:
    return {
        "patient_id": access.patient_id,
        "principal": principal,
        "access": access,
        "conn": conn,
        "client_addr": client_addr(request),
        "action": _ACTIONS.get(request.method, request.method.lower()),
        "resource": request.url.path,
    }


def patient_scope(
    patient_id: UUID, conn: Conn, principal: CurrentPrincipal, request: Request
) -> Iterator[PatientScope]:
    """The duty-of-care gate of every `/patients/{patient_id}/…` route: 404 (and an audit row) when the caller has
    no duty of care, so a patient outside the caller's teams is indistinguishable from one that does not exist."""
    access = _gate(conn, principal, request, patient_id)
    yield from _audited(PatientScope(**_scope_kwargs(conn, principal, request, access)))


def alarm_scope(alarm_id: UUID, conn: Conn, principal: CurrentPrincipal, request: Request) -> Iterator[AlarmScope]:
    """The same gate for `/alarms/{alarm_id}/…`: the alarm's patient decides."""
    access = _gate(conn, principal, request, alarm_patient(conn, alarm_id))
    yield from _audited(AlarmScope(**_scope_kwargs(conn, principal, request, access), alarm_id=alarm_id))


def observation_scope(
    observation_id: UUID, conn: Conn, principal: CurrentPrincipal, request: Request
) -> Iterator[PatientScope]:
    """The same gate for a reading (FHIR Observation): the reading's patient decides."""
    access = _gate(conn, principal, request, reading_patient(conn, observation_id))
    yield from _audited(PatientScope(**_scope_kwargs(conn, principal, request, access)))


PatientDep = Annotated[PatientScope, Depends(patient_scope, scope="function")]
AlarmDep = Annotated[AlarmScope, Depends(alarm_scope, scope="function")]
ObservationDep = Annotated[PatientScope, Depends(observation_scope, scope="function")]
