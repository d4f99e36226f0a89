"""The care team's side of patient contact: secure messages (threads, replies signed with name and role, reply
templates, the queue's awaiting-answer work items), proxies (see who holds which; grant on the patient's
documented wish; revoke), and the patient's reservations (read only: only the patient changes them)."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request

from clinician_api import consent, messages, problems, proxies
from clinician_api.citizen.schemas import NewMessage, NewThread, StaffProxyGrant, end_is_future
from clinician_api.deps import Clinician, Conn, GatewayLink, PatientDep, client_addr
from clinician_api.gateway_link import send_receipts
from store import audit

log = logging.getLogger("varde.api")

router = APIRouter(prefix="/api/v1", tags=["patient contact"], responses=problems.responses(401, 403, 404, 422))
_PATIENT = problems.responses(404)


def _author(principal: Any) -> messages.Author:
    return messages.Author(
        name=principal.display_name or principal.username, role=principal.role, user_id=principal.user_id
    )


@router.get("/patients/{patient_id}/contact", responses=_PATIENT)
def contact(scope: PatientDep) -> dict[str, Any]:
    """The patient's message threads, proxies and reservations, for the patient page."""
    return {
        "threads": messages.threads(scope.conn, scope.patient_id, "team"),
        "proxies": proxies.for_patient(scope.conn, scope.patient_id),
        "reservations": consent.reservations(scope.conn, scope.patient_id),
    }


@router.get("/patients/{patient_id}/threads/{thread_id}", responses=_PATIENT)
def thread(scope: PatientDep, thread_id: UUID) -> dict[str, Any]:
    found = messages.thread(scope.conn, scope.patient_id, thread_id, "team")
    if found is None:
        raise HTTPException(404, "no such thread")
    return found


@router.post("/patients/{patient_id}/threads", status_code=201, responses=_PATIENT)
def start_thread(scope: PatientDep, body: NewThread, principal: Clinician) -> dict[str, Any]:
    thread_id = messages.start_thread(scope.conn, scope.patient_id, body.subject, body.body, _author(principal))
    found = messages.thread(scope.conn, scope.patient_id, thread_id, "team")
    assert found is not None
    return found


# What the gateway's page says when the team has answered: that there is an answer and where, nothing of it.
ANSWERED_NB = "Behandlingsteamet har svart på meldingen din. Les svaret i Min oppfølging."
ANSWERED_EN = "The care team has answered your message. Read the answer in My follow-up."


@router.post("/patients/{patient_id}/threads/{thread_id}/messages", status_code=201, responses=_PATIENT)
def reply(
    scope: PatientDep,
    thread_id: UUID,
    body: NewMessage,
    principal: Clinician,
    publisher: GatewayLink,
) -> dict[str, Any]:
    """Answer in a thread, signed with the caller's name and role; the thread stops waiting in the queue. Once the
    answer is committed, the patient's gateway page is told that there is one (`gateway_notified` per gateway)."""
    if messages.post(scope.conn, scope.patient_id, thread_id, body.body, _author(principal)) is None:
        raise HTTPException(404, "no such thread")
    found = messages.thread(scope.conn, scope.patient_id, thread_id, "team")
    assert found is not None
    scope.conn.commit()
    sent = send_receipts(scope.conn, publisher, [scope.patient_id], "message_answered", ANSWERED_NB, ANSWERED_EN)
    for d in sent:
        if not d.published:
            log.warning("message_notice_not_sent gateway=%s error=%s", d.gateway_id, d.error)
    return {**found, "gateway_notified": {d.gateway_id: d.published for d in sent}}


@router.post("/patients/{patient_id}/proxies", status_code=201, responses={**_PATIENT, **problems.responses(403, 422)})
def grant_proxy(scope: PatientDep, body: StaffProxyGrant, principal: Clinician) -> dict[str, Any]:
    """Register a proxy the patient wants (the basis says where that wish is documented)."""
    problem = end_is_future(body.valid_until)
    if problem:
        raise HTTPException(422, problem)
    scope.action = "grant_proxy"
    return proxies.grant(
        scope.conn,
        scope.patient_id,
        relative_national_id=body.relative_national_id,
        relative_name=body.relative_name,
        relation=body.relation,
        rights=list(body.rights),
        valid_until=body.valid_until,
        user_id=principal.user_id,
        basis=body.basis,
    )


@router.post("/patients/{patient_id}/proxies/{proxy_id}/revoke", responses={**_PATIENT, **problems.responses(403)})
def revoke_proxy(scope: PatientDep, proxy_id: UUID, principal: Clinician) -> dict[str, Any]:
    scope.action = "revoke_proxy"
    found = proxies.revoke(scope.conn, scope.patient_id, proxy_id, user_id=principal.user_id)
    if found is None:
        raise HTTPException(404, "no such proxy")
    return found


@router.get("/messages/awaiting")
def awaiting(conn: Conn, principal: Clinician, request: Request) -> dict[str, Any]:
    """Message threads waiting for the care team's answer, oldest first (the nurse queue's message work items)."""
    items = messages.awaiting(conn, principal)
    audit.record_patients(
        conn, principal, "read", request.url.path, [i["patient_id"] for i in items], client_addr=client_addr(request)
    )
    return {"items": items}


@router.get("/reply-templates")
def reply_templates(
    conn: Conn, principal: Clinician, lang: Annotated[Literal["nb", "en"], Query()] = "nb"
) -> dict[str, Any]:
    return {"items": messages.templates(conn, principal.team_ids, lang)}
