"""What a signed-in citizen may do for which patient: everything for themselves (the patient whose national id
is theirs), and for another patient exactly the rights of an unrevoked, unexpired proxy (fullmakt) — checked on
every request, so a revocation or an end date takes effect at the next one.

Routes take the patient through `CitizenScope` (`scope_needing`): a patient the citizen may not act for is a 404,
the same for one that does not exist; a right the proxy does not give is a 403. Each request writes one audit row
under the citizen's own identity (role `patient` or `relative`), for the patient, with the proxy it went through.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import psycopg
from fastapi import Cookie, Depends, HTTPException, Request
from psycopg import Connection

from clinician_api.citizen.sessions import COOKIE, CSRF_HEADER, Citizen, session_citizen
from clinician_api.deps import Conn, SettingsDep, client_addr
from store import audit, proxies

RIGHTS = ("read_measurements", "read_plan", "answer_questionnaires", "write_messages", "read_access_log")
OWN = "own"
"""The pseudo-right only the patient themself has: consent, reservations and proxies."""
NOT_FOUND = "no such patient"
_ACTIONS = {"GET": "read", "HEAD": "read", "POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}


@dataclass(frozen=True, slots=True)
class Acting:
    """One patient the citizen may act for, and how."""

    patient_id: UUID
    patient_name: str
    own: bool
    rights: frozenset[str]
    proxy_id: UUID | None = None
    relation: str | None = None
    valid_until: datetime | None = None

    @property
    def role(self) -> str:
        return "patient" if self.own else "relative"


def _acting(row: proxies.ActingRow) -> Acting:
    rights = frozenset((*RIGHTS, OWN)) if row.own else frozenset(row.rights or ())
    return Acting(row.patient_id, row.patient_name, row.own, rights, row.proxy_id, row.relation, row.valid_until)


def acting_for(conn: Connection[Any], citizen: Citizen) -> list[Acting]:
    # Several proxies for the same patient (a renewed one before the old one ends): the widest rights win.
    seen: dict[UUID, Acting] = {}
    for acting in map(_acting, proxies.acting_for(conn, citizen.national_id, citizen.id)):
        best = seen.get(acting.patient_id)
        if best is None or (not best.own and len(acting.rights) > len(best.rights)):
            seen[acting.patient_id] = acting
    return list(seen.values())


def acting_one(conn: Connection[Any], citizen: Citizen, patient_id: UUID) -> Acting | None:
    return next((a for a in acting_for(conn, citizen) if a.patient_id == patient_id), None)


def record(
    conn: Connection[Any],
    citizen: Citizen,
    acting: Acting | None,
    action: str,
    resource: str,
    outcome: str,
    *,
    patient_id: UUID | None = None,
    addr: str | None = None,
) -> None:
    audit.record_citizen(
        conn,
        citizen.id,
        acting.role if acting else "citizen",
        action,
        resource,
        outcome,
        patient_id=acting.patient_id if acting else patient_id,
        proxy_id=acting.proxy_id if acting else None,
        client_addr=addr,
    )


SESSION_ENDED_HEADER = "X-Varde-Session-Ended"


def current_citizen(
    conn: Conn, settings: SettingsDep, request: Request, session: Annotated[str | None, Cookie(alias=COOKIE)] = None
) -> Citizen:
    """The signed-in citizen (401 without a live session); writes also need the app's header and this origin."""
    citizen = session_citizen(conn, settings, session)
    conn.commit()
    if citizen is None:
        # A cookie that no longer opens a session (idle, expired, ended elsewhere) is told apart from no cookie at
        # all, so the sign-in page says "you were signed out" only to someone who was signed in.
        ended = {SESSION_ENDED_HEADER: "1"} if session else None
        raise HTTPException(401, "sign in to Min oppfølging first", headers=ended)
    if request.method not in ("GET", "HEAD"):
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.url.netloc}"
        if request.headers.get(CSRF_HEADER) != "1" or (origin is not None and origin != own):
            raise HTTPException(403, "this request must come from the Min oppfølging page")
    return citizen


CurrentCitizen = Annotated[Citizen, Depends(current_citizen)]


@dataclass
class CitizenScope:
    citizen: Citizen
    acting: Acting
    conn: Connection[Any]
    action: str
    resource: str
    addr: str | None
    outcome: str = "ok"

    @property
    def patient_id(self) -> UUID:
        return self.acting.patient_id

    def has(self, right: str) -> bool:
        return right in self.acting.rights


def scope_needing(right: str) -> Callable[..., Iterator[CitizenScope]]:
    """The dependency of a patient-app route on `/…/patients/{patient_id}/…` that needs `right`."""
    if right not in (*RIGHTS, OWN):
        raise ValueError(f"unknown right {right!r}")

    def dependency(patient_id: UUID, conn: Conn, citizen: CurrentCitizen, request: Request) -> Iterator[CitizenScope]:
        action = _ACTIONS.get(request.method, request.method.lower())
        addr = client_addr(request)
        acting = acting_one(conn, citizen, patient_id)
        if acting is None or right not in acting.rights:
            record(conn, citizen, acting, action, request.url.path, "denied", patient_id=patient_id, addr=addr)
            conn.commit()
            if acting is None:
                raise HTTPException(404, NOT_FOUND)
            raise HTTPException(403, f"your proxy does not include this ({right})")
        scope = CitizenScope(citizen, acting, conn, action, request.url.path, addr)
        try:
            yield scope
        except Exception as exc:
            status = exc.status_code if isinstance(exc, HTTPException) else 500
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
                record(conn, citizen, acting, scope.action, scope.resource, f"refused:{status}", addr=addr)
                conn.commit()
            raise
        else:
            record(conn, citizen, acting, scope.action, scope.resource, scope.outcome, addr=addr)

    return dependency
