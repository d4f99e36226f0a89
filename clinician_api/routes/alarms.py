"""The alarm queue: list, detail, live stream, and the nurse's actions (acknowledge, assign, note, resolve, bulk
acknowledge with a receipt to the patient's gateway). Every change writes an alarm event and a NOTIFY."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from psycopg import Connection

from clinician_api import problems, queue
from clinician_api.access import Principal, emergency_patient_ids, user_has_duty_of_care, visible_patients_clause
from clinician_api.deps import AlarmDep, AlarmScope, Clinician, Conn, CurrentPrincipal, GatewayLink, client_addr
from clinician_api.events import AlarmEventHub, Resync, Subscriber
from clinician_api.gateway_link import GatewayPublisher, send_receipts
from clinician_api.journal import enqueue_alarm_document
from clinician_api.problems import ProblemError
from clinician_api.schemas import (
    AlarmDetail,
    AlarmEvent,
    AlarmPage,
    AlarmState,
    AssignRequest,
    BulkAcknowledgeRequest,
    BulkAcknowledgeResult,
    GroupActionRequest,
    GroupActionResult,
    NoteRequest,
    ReceiptDelivery,
    ResolveRequest,
    Severity,
)
from store import alarms, audit
from store.alarm_queue import QueueFilter
from vitals.vocabulary import ALARM_STATES, UNRESOLVED_STATES

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"], responses=problems.responses(401))

Lang = Annotated[Literal["nb", "en"], Query(description="Language of `explanation`")]
_NOT_FOUND = problems.responses(404)
RECEIPT_NB = "Målingene dine er sett av helsepersonell."
RECEIPT_EN = "Your readings have been seen by your care team."


@router.get("", response_model=AlarmPage, responses=problems.responses(400))
def list_alarms(
    conn: Conn,
    principal: CurrentPrincipal,
    request: Request,
    state: Annotated[list[AlarmState] | None, Query(description="Default: open and acknowledged")] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    team: Annotated[list[UUID] | None, Query(description="Care team ids")] = None,
    patient_id: Annotated[list[UUID] | None, Query()] = None,
    assignee: Annotated[UUID | Literal["me"] | None, Query()] = None,
    lang: Lang = "nb",
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AlarmPage:
    """The queue: worst severity first, then the longest waiting. Only patients in the caller's care teams (or under
    an emergency access) appear."""
    flt = QueueFilter(
        states=state or UNRESOLVED_STATES,
        severities=severity,
        team_ids=team,
        patient_ids=patient_id,
        assignee_id=principal.user_id if assignee == "me" else assignee if isinstance(assignee, UUID) else None,
    )
    items, next_cursor = queue.page(conn, principal, flt, cursor=cursor, limit=limit, lang=lang)
    audit.record_patients(
        conn, principal, "list", request.url.path, [a.patient_id for a in items], client_addr=client_addr(request)
    )
    return AlarmPage(items=items, next=next_cursor)


def _hub(request: Request) -> AlarmEventHub:
    hub: AlarmEventHub = request.app.state.event_hub
    return hub


def _stream_subscriber(conn: Conn, principal: CurrentPrincipal, request: Request, lang: Lang = "nb") -> Subscriber:
    """Opening the stream is audited once; the stream then carries only alarms of patients the user may see."""
    emergency = emergency_patient_ids(conn, principal)
    audit.record(conn, principal, "subscribe", request.url.path, "ok", client_addr=client_addr(request))
    return Subscriber(principal=principal, emergency=emergency, lang=lang)


@router.get("/stream", response_class=EventSourceResponse, responses={200: {"description": "text/event-stream"}})
async def stream(
    request: Request,
    subscriber: Annotated[Subscriber, Depends(_stream_subscriber)],
    hub: Annotated[AlarmEventHub, Depends(_hub)],
    heartbeat: Annotated[float, Query(ge=0.5, le=60, description="Seconds between heartbeat comments")] = 15.0,
) -> AsyncIterator[ServerSentEvent]:
    """Server-Sent Events: `alarm` events (the queue item as JSON) whenever an alarm the caller may see changes;
    `resync` when the client fell behind, or a patient of the caller's team was handed over, and should reload the
    queue; `: heartbeat` comments in between."""
    await hub.subscribe(subscriber)
    try:
        yield ServerSentEvent(comment="connected", retry=3000)
        while True:
            if subscriber.overflowed:
                subscriber.overflowed = False
                while not subscriber.queue.empty():
                    subscriber.queue.get_nowait()
                yield ServerSentEvent(event="resync", data={"reason": "too many changes; reload the queue"})
            try:
                alarm = await asyncio.wait_for(subscriber.queue.get(), timeout=heartbeat)
            except TimeoutError:
                yield ServerSentEvent(comment="heartbeat")
                continue
            if alarm is None:
                return
            if isinstance(alarm, Resync):
                yield ServerSentEvent(event="resync", data={"reason": "a patient was handed over; reload the queue"})
                continue
            yield ServerSentEvent(
                event="alarm", id=f"{alarm.id}@{alarm.updated_at.isoformat()}", data=alarm.model_dump(mode="json")
            )
    finally:
        hub.unsubscribe(subscriber)


@router.post(
    "/bulk-acknowledge", response_model=BulkAcknowledgeResult, responses=problems.responses(403, 404, 409, 422)
)
def bulk_acknowledge(
    body: BulkAcknowledgeRequest,
    conn: Conn,
    principal: Clinician,
    request: Request,
    publisher: GatewayLink,
) -> BulkAcknowledgeResult:
    """Acknowledge many non-red alarms at once. Red alarms must be handled one by one: a request naming a red alarm
    changes nothing (409). Optionally sends each patient's gateway a receipt that the readings were seen."""
    rows = alarms.lock(conn, body.alarm_ids, *visible_patients_clause(principal))
    wanted = set(body.alarm_ids)
    if len(rows) != len(wanted):
        audit.record(conn, principal, "update", request.url.path, "denied", client_addr=client_addr(request))
        conn.commit()
        missing = len(wanted) - len(rows)
        raise HTTPException(404, f"{missing} of the alarms are not in your care teams or do not exist")
    red = [r.id for r in rows if r.severity == "red"]
    if red:
        raise ProblemError(
            409,
            f"{len(red)} red alarm(s) in the selection; red alarms are acknowledged one at a time",
            red_alarm_ids=[str(a) for a in red],
        )
    opened = [r for r in rows if r.state == "open"]
    to_ack = [r.id for r in opened]
    unchanged = [r.id for r in rows if r.state != "open"]
    alarms.acknowledge(conn, to_ack, principal.user_id, {"bulk": True})
    if body.note:
        alarms.add_note(conn, to_ack, principal.user_id, body.note, {"bulk": True})
    patients = sorted({r.patient_id for r in opened}, key=str)
    audit.record_patients(
        conn, principal, "update", request.url.path, [r.patient_id for r in rows], client_addr=client_addr(request)
    )
    conn.commit()
    acked = [(r.id, r.patient_id) for r in opened]
    receipts = _send_receipts(conn, publisher, patients, acked, principal) if body.send_receipt else []
    return BulkAcknowledgeResult(acknowledged=to_ack, unchanged=unchanged, receipts=receipts)


GroupAction = Literal["acknowledge", "note", "escalate", "resolve"]
_GROUP_STATES: dict[str, tuple[str, ...]] = {
    # action → the states it changes (an alarm in another state is left as it is)
    "acknowledge": ("open",),
    "escalate": UNRESOLVED_STATES,
    "resolve": UNRESOLVED_STATES,
    "note": ALARM_STATES,
}


@router.post("/group/{action}", response_model=GroupActionResult, responses=problems.responses(403, 404, 409, 422))
def group_action(
    action: GroupAction,
    body: GroupActionRequest,
    conn: Conn,
    principal: Clinician,
    request: Request,
    lang: Lang = "nb",
) -> GroupActionResult:
    """Act on a group of one patient's alarms at once: the components of one measurement act (a blood-pressure
    panel's systolic, diastolic and mean), or every alarm of the patient. Red alarms may be in the group: the nurse
    handles the patient's event as a whole. Alarms already in the state asked for are left as they are."""
    wanted = sorted(set(body.alarm_ids), key=str)
    rows = alarms.lock(conn, wanted, *visible_patients_clause(principal))
    if len(rows) != len(wanted):
        audit.record(conn, principal, action, request.url.path, "denied", client_addr=client_addr(request))
        conn.commit()
        raise HTTPException(404, f"{len(wanted) - len(rows)} of the alarms are not in your care teams or do not exist")
    if len({r.patient_id for r in rows}) != 1:
        raise ProblemError(
            422,
            "a group holds the alarms of one patient",
            errors=[
                {
                    "loc": ["body", "alarm_ids"],
                    "msg": "alarms of several patients",
                    "message_nb": "alarmer for flere pasienter",
                }
            ],
        )
    text = (body.text or "").strip()
    if action in ("note", "resolve") and len(text) < (3 if action == "resolve" else 1):
        raise ProblemError(
            422,
            "the text is missing or too short",
            errors=[
                {
                    "loc": ["body", "text"],
                    "msg": "at least 3 characters" if action == "resolve" else "the note is empty",
                    "message_nb": "Skriv minst 3 tegn om hva som ble gjort."
                    if action == "resolve"
                    else "Notatet er tomt.",
                }
            ],
        )
    applies = [r.id for r in rows if r.state in _GROUP_STATES[action] and not (action == "escalate" and r.escalated_at)]
    unchanged = [r.id for r in rows if r.id not in set(applies)]
    group = {"group": len(applies)}
    if action == "acknowledge":
        alarms.acknowledge(conn, applies, principal.user_id, group)
    elif action == "escalate":
        alarms.escalate(conn, applies, principal.user_id, group)
    elif action == "resolve":
        alarms.resolve(conn, applies, principal.user_id, text, enqueue_alarm_document, group)
    else:
        alarms.add_note(conn, applies, principal.user_id, text, group)
    audit.record_patients(
        conn, principal, action, request.url.path, [r.patient_id for r in rows], client_addr=client_addr(request)
    )
    items = queue.by_ids(conn, wanted, lang)
    return GroupActionResult(changed=applies, unchanged=unchanged, items=items)


def _send_receipts(
    conn: Connection[Any],
    publisher: GatewayPublisher,
    patient_ids: Sequence[UUID],
    alarm_patients: Sequence[tuple[UUID, UUID]],
    principal: Principal,
) -> list[ReceiptDelivery]:
    """After the acknowledgements are committed: one receipt per gateway of each patient; failures are reported,
    and every attempt is an alarm event."""
    sent = send_receipts(conn, publisher, patient_ids, "readings_seen", RECEIPT_NB, RECEIPT_EN)
    deliveries = [ReceiptDelivery(gateway_id=d.gateway_id, published=d.published, error=d.error) for d in sent]
    patient_of = {d.gateway_id: d.patient_id for d in sent}
    alarms.record_events(
        conn,
        [
            alarms.NewEvent(
                alarm_id,
                "receipt_sent",
                {"gateway_id": d.gateway_id, "published": d.published},
                principal.user_id,
            )
            for d in deliveries
            for alarm_id, patient_id in alarm_patients
            if patient_of[d.gateway_id] == patient_id
        ],
    )
    return deliveries


@router.get("/{alarm_id}", response_model=AlarmDetail, responses=_NOT_FOUND)
def get_alarm(scope: AlarmDep, lang: Lang = "nb") -> AlarmDetail:
    """One alarm with its history (opened, updated, acknowledged, notes, escalation, resolution)."""
    return _detail(scope.conn, scope.alarm_id, lang)


def _detail(conn: Connection[Any], alarm_id: UUID | None, lang: str) -> AlarmDetail:
    assert alarm_id is not None
    alarm = queue.one(conn, alarm_id, lang)
    assert alarm is not None
    return AlarmDetail(
        **alarm.model_dump(),
        events=[
            AlarmEvent(id=e.id, at=e.at, event=e.event, actor_id=e.actor_id, actor_name=e.actor_name, data=e.data or {})
            for e in alarms.events_of(conn, alarm_id)
        ],
    )


def _locked(scope: AlarmScope) -> alarms.Locked:
    """The alarm, its row locked until the transaction ends (two nurses cannot both resolve it)."""
    assert scope.alarm_id is not None
    (row,) = alarms.lock(scope.conn, [scope.alarm_id])
    return row


_ACTION_RESPONSES = problems.responses(403, 404, 409)


@router.post("/{alarm_id}/acknowledge", response_model=AlarmDetail, responses=_ACTION_RESPONSES)
def acknowledge(scope: AlarmDep, principal: Clinician, lang: Lang = "nb") -> AlarmDetail:
    """Mark an open alarm as seen and being handled."""
    alarm = _locked(scope)
    if alarm.state != "open":
        raise HTTPException(409, f"the alarm is {alarm.state}, not open")
    scope.action = "acknowledge"
    alarms.acknowledge(scope.conn, [alarm.id], principal.user_id)
    return _detail(scope.conn, alarm.id, lang)


@router.post(
    "/{alarm_id}/assign", response_model=AlarmDetail, responses={**_ACTION_RESPONSES, **problems.responses(422)}
)
def assign(scope: AlarmDep, body: AssignRequest, principal: Clinician, lang: Lang = "nb") -> AlarmDetail:
    """Assign the alarm to the caller ("me"), to another user of the patient's care team, or to nobody (null)."""
    alarm = _locked(scope)
    if alarm.state == "resolved":
        raise HTTPException(409, "the alarm is resolved")
    assignee = principal.user_id if body.assignee == "me" else body.assignee
    if isinstance(assignee, UUID) and not user_has_duty_of_care(scope.conn, assignee, scope.patient_id):
        raise ProblemError(
            422,
            "the assignee must be an active user in the patient's care team",
            errors=[{"loc": ["body", "assignee"], "msg": "not a member of the patient's care team"}],
        )
    scope.action = "assign"
    alarms.assign(scope.conn, alarm.id, principal.user_id, assignee)
    return _detail(scope.conn, alarm.id, lang)


@router.post("/{alarm_id}/notes", response_model=AlarmDetail, responses=_ACTION_RESPONSES)
def add_note(scope: AlarmDep, body: NoteRequest, principal: Clinician, lang: Lang = "nb") -> AlarmDetail:
    """Add a note to the alarm's history (also on a resolved alarm)."""
    alarm = _locked(scope)
    scope.action = "note"
    alarms.add_note(scope.conn, [alarm.id], principal.user_id, body.text)
    return _detail(scope.conn, alarm.id, lang)


@router.post("/{alarm_id}/resolve", response_model=AlarmDetail, responses=_ACTION_RESPONSES)
def resolve(scope: AlarmDep, body: ResolveRequest, principal: Clinician, lang: Lang = "nb") -> AlarmDetail:
    """Close the alarm with what was done. A later breach of the same rule opens a new alarm. Where the patient's
    organisation has a record system, the alarm's document is queued for it in the same transaction."""
    alarm = _locked(scope)
    if alarm.state == "resolved":
        raise HTTPException(409, "the alarm is already resolved")
    scope.action = "resolve"
    alarms.resolve(scope.conn, [alarm.id], principal.user_id, body.resolution, enqueue_alarm_document)
    return _detail(scope.conn, alarm.id, lang)


@router.post("/{alarm_id}/escalate", response_model=AlarmDetail, responses=_ACTION_RESPONSES)
def escalate(scope: AlarmDep, principal: Clinician, lang: Lang = "nb") -> AlarmDetail:
    """Escalate now: the patient's team's escalation targets (on-call nurse) are notified (409 when the alarm is
    resolved or already escalated)."""
    alarm = _locked(scope)
    if alarm.state == "resolved" or alarm.escalated_at is not None:
        raise HTTPException(409, "the alarm is resolved or already escalated")
    scope.action = "escalate"
    alarms.escalate(scope.conn, [alarm.id], principal.user_id)
    return _detail(scope.conn, alarm.id, lang)
