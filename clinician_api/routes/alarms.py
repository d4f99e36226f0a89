"""The alarm queue: list, detail, live stream, and the nurse's actions (acknowledge, assign, note, resolve, bulk
acknowledge with a receipt to the patient's gateway). Every change writes an alarm event and a NOTIFY."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from psycopg import Connection, sql

from clinician_api import audit, problems, queue
from clinician_api.access import Principal, emergency_patient_ids, user_has_duty_of_care, visible_patients_clause
from clinician_api.deps import AlarmDep, Clinician, Conn, CurrentPrincipal, GatewayLink, client_addr
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
from store.events import notify_changes
from vitals.vocabulary import UNRESOLVED_STATES

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"], responses=problems.responses(401))

Lang = Annotated[Literal["nb", "en"], Query(description="Language of `explanation`")]
_NOT_FOUND = problems.responses(404)
RECEIPT_NB = "Målingene dine er sett av helsepersonell."
RECEIPT_EN = "Your readings have been seen by your care team."


def notify(conn: Connection[Any], alarm_ids: Iterable[UUID]) -> None:
    """Tell every API process (SSE) that these alarms changed; delivered when the transaction commits."""
    notify_changes(conn, "api", alarm_ids)


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
    flt = queue.QueueFilter(
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
    wanted = sorted(set(body.alarm_ids), key=str)
    clause, params = visible_patients_clause(principal)
    rows = conn.execute(
        sql.SQL(
            "SELECT a.id, a.patient_id, a.severity, a.state FROM alarms a JOIN patients p ON p.id = "
            "a.patient_id WHERE a.id = ANY(%s::uuid[]) AND {} ORDER BY a.id FOR UPDATE OF a"
        ).format(clause),
        [wanted, *params],
    ).fetchall()
    if len(rows) != len(wanted):
        audit.record(conn, principal, "update", request.url.path, "denied", client_addr=client_addr(request))
        conn.commit()
        missing = len(wanted) - len(rows)
        raise HTTPException(404, f"{missing} of the alarms are not in your care teams or do not exist")
    red = [r[0] for r in rows if r[2] == "red"]
    if red:
        raise ProblemError(
            409,
            f"{len(red)} red alarm(s) in the selection; red alarms are acknowledged one at a time",
            red_alarm_ids=[str(a) for a in red],
        )
    to_ack = [r[0] for r in rows if r[3] == "open"]
    unchanged = [r[0] for r in rows if r[3] != "open"]
    if to_ack:
        conn.execute(
            "UPDATE alarms SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = %s, "
            "updated_at = now() WHERE id = ANY(%s::uuid[])",
            (principal.user_id, to_ack),
        )
        events: list[tuple[UUID, UUID, str, str]] = [
            (a, principal.user_id, "acknowledged", json.dumps({"bulk": True})) for a in to_ack
        ]
        if body.note:
            events += [(a, principal.user_id, "note", json.dumps({"text": body.note, "bulk": True})) for a in to_ack]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO alarm_events (alarm_id, actor_id, event, data) VALUES (%s, %s, %s, %s)", events
            )
        notify(conn, to_ack)
    patients = sorted({r[1] for r in rows if r[0] in set(to_ack)}, key=str)
    audit.record_patients(
        conn, principal, "update", request.url.path, [r[1] for r in rows], client_addr=client_addr(request)
    )
    conn.commit()
    receipts = _send_receipts(conn, publisher, patients, to_ack, principal) if body.send_receipt else []
    return BulkAcknowledgeResult(acknowledged=to_ack, unchanged=unchanged, receipts=receipts)


GroupAction = Literal["acknowledge", "note", "escalate", "resolve"]
_GROUP_CHANGE: dict[str, tuple[str, str, str]] = {
    # action → (states it applies to, the fixed UPDATE of the alarms, alarm event)
    "acknowledge": (
        "open",
        "UPDATE alarms SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = %(user)s, "
        "updated_at = now() WHERE id = ANY(%(ids)s)",
        "acknowledged",
    ),
    "escalate": (
        "open,acknowledged",
        "UPDATE alarms SET escalated_at = now(), updated_at = now() WHERE id = ANY(%(ids)s)",
        "escalated",
    ),
    "resolve": (
        "open,acknowledged",
        "UPDATE alarms SET state = 'resolved', resolved_at = now(), resolved_by = %(user)s, resolution = %(text)s, "
        "updated_at = now() WHERE id = ANY(%(ids)s)",
        "resolved",
    ),
    "note": ("open,acknowledged,resolved", "UPDATE alarms SET updated_at = now() WHERE id = ANY(%(ids)s)", "note"),
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
    clause, params = visible_patients_clause(principal)
    rows = conn.execute(
        sql.SQL(
            "SELECT a.id, a.patient_id, a.state, a.escalated_at IS NOT NULL FROM alarms a JOIN "
            "patients p ON p.id = a.patient_id WHERE a.id = ANY(%s::uuid[]) AND {} ORDER BY a.id FOR "
            "UPDATE OF a"
        ).format(clause),
        [wanted, *params],
    ).fetchall()
    if len(rows) != len(wanted):
        audit.record(conn, principal, action, request.url.path, "denied", client_addr=client_addr(request))
        conn.commit()
        raise HTTPException(404, f"{len(wanted) - len(rows)} of the alarms are not in your care teams or do not exist")
    if len({r[1] for r in rows}) != 1:
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
    states, update, event = _GROUP_CHANGE[action]
    applies = [r[0] for r in rows if r[2] in states.split(",") and not (action == "escalate" and r[3])]
    unchanged = [r[0] for r in rows if r[0] not in set(applies)]
    if applies:
        values = {"user": principal.user_id, "text": text, "ids": applies}
        conn.execute(update, values)
        data: dict[str, Any] = {}
        if action in ("note", "resolve"):
            data = {"text" if action == "note" else "resolution": text}
        elif action == "escalate":
            data = {"manual": True}
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO alarm_events (alarm_id, actor_id, event, data) VALUES (%s, %s, %s, %s)",
                [(a, principal.user_id, event, json.dumps({**data, "group": len(applies)})) for a in applies],
            )
        if action == "resolve":
            for alarm_id in applies:
                enqueue_alarm_document(conn, alarm_id)
        notify(conn, applies)
    audit.record_patients(
        conn, principal, action, request.url.path, [r[1] for r in rows], client_addr=client_addr(request)
    )
    items = [queue.to_alarm(r, lang) for r in queue.by_ids(conn, wanted)]
    return GroupActionResult(changed=applies, unchanged=unchanged, items=items)


def _send_receipts(
    conn: Connection[Any],
    publisher: GatewayPublisher,
    patient_ids: Sequence[UUID],
    alarm_ids: Sequence[UUID],
    principal: Principal,
) -> list[ReceiptDelivery]:
    """After the acknowledgements are committed: one receipt per gateway of each patient; failures are reported,
    and every attempt is an alarm event."""
    sent = send_receipts(conn, publisher, patient_ids, "readings_seen", RECEIPT_NB, RECEIPT_EN)
    deliveries = [ReceiptDelivery(gateway_id=d.gateway_id, published=d.published, error=d.error) for d in sent]
    patient_of = {d.gateway_id: d.patient_id for d in sent}
    alarms_of = conn.execute(
        "SELECT id, patient_id FROM alarms WHERE id = ANY(%s::uuid[])", (list(alarm_ids),)
    ).fetchall()
    events = [
        (
            alarm_id,
            principal.user_id,
            "receipt_sent",
            json.dumps({"gateway_id": d.gateway_id, "published": d.published}),
        )
        for d in deliveries
        for alarm_id, patient_id in alarms_of
        if patient_of[d.gateway_id] == patient_id
    ]
    if events:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO alarm_events (alarm_id, actor_id, event, data) VALUES (%s, %s, %s, %s)", events
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
    events = conn.execute(
        "SELECT e.id, e.at, e.event, e.actor_id, u.display_name, e.data FROM alarm_events e "
        "LEFT JOIN users u ON u.id = e.actor_id WHERE e.alarm_id = %s ORDER BY e.at, e.id",
        (alarm_id,),
    ).fetchall()
    return AlarmDetail(
        **alarm.model_dump(),
        events=[
            AlarmEvent(id=e[0], at=e[1], event=e[2], actor_id=e[3], actor_name=e[4], data=e[5] or {}) for e in events
        ],
    )


def _lock(conn: Connection[Any], alarm_id: UUID | None) -> str:
    """The alarm's state, with the row locked until the transaction ends (two nurses cannot both resolve it)."""
    row = conn.execute("SELECT state FROM alarms WHERE id = %s FOR UPDATE", (alarm_id,)).fetchone()
    assert row is not None
    return str(row[0])


_UPDATE: dict[str, str] = {
    # alarm event → the fixed UPDATE of the alarm row (its parameters, then the alarm id)
    "acknowledged": "UPDATE alarms SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = %s, "
    "updated_at = now() WHERE id = %s",
    "assigned": "UPDATE alarms SET assignee_id = %s, updated_at = now() WHERE id = %s",
    "note": "UPDATE alarms SET updated_at = now() WHERE id = %s",
    "resolved": "UPDATE alarms SET state = 'resolved', resolved_at = now(), resolved_by = %s, resolution = %s, "
    "updated_at = now() WHERE id = %s",
    "escalated": "UPDATE alarms SET escalated_at = now(), updated_at = now() WHERE id = %s",
}


def _change(
    conn: Connection[Any],
    alarm_id: UUID | None,
    actor: Principal,
    event: str,
    data: dict[str, Any],
    params: Sequence[Any],
) -> None:
    conn.execute(_UPDATE[event], [*params, alarm_id])
    conn.execute(
        "INSERT INTO alarm_events (alarm_id, actor_id, event, data) VALUES (%s, %s, %s, %s)",
        (alarm_id, actor.user_id, event, json.dumps(data)),
    )
    assert alarm_id is not None
    notify(conn, [alarm_id])


_ACTION_RESPONSES = problems.responses(403, 404, 409)


@router.post("/{alarm_id}/acknowledge", response_model=AlarmDetail, responses=_ACTION_RESPONSES)
def acknowledge(scope: AlarmDep, principal: Clinician, lang: Lang = "nb") -> AlarmDetail:
    """Mark an open alarm as seen and being handled."""
    state = _lock(scope.conn, scope.alarm_id)
    if state != "open":
        raise HTTPException(409, f"the alarm is {state}, not open")
    scope.action = "acknowledge"
    _change(
        scope.conn,
        scope.alarm_id,
        principal,
        "acknowledged",
        {},
        [principal.user_id],
    )
    return _detail(scope.conn, scope.alarm_id, lang)


@router.post(
    "/{alarm_id}/assign", response_model=AlarmDetail, responses={**_ACTION_RESPONSES, **problems.responses(422)}
)
def assign(scope: AlarmDep, body: AssignRequest, principal: Clinician, lang: Lang = "nb") -> AlarmDetail:
    """Assign the alarm to the caller ("me"), to another user of the patient's care team, or to nobody (null)."""
    state = _lock(scope.conn, scope.alarm_id)
    if state == "resolved":
        raise HTTPException(409, "the alarm is resolved")
    assignee = principal.user_id if body.assignee == "me" else body.assignee
    if isinstance(assignee, UUID) and not user_has_duty_of_care(scope.conn, assignee, scope.patient_id):
        raise ProblemError(
            422,
            "the assignee must be an active user in the patient's care team",
            errors=[{"loc": ["body", "assignee"], "msg": "not a member of the patient's care team"}],
        )
    scope.action = "assign"
    _change(
        scope.conn,
        scope.alarm_id,
        principal,
        "assigned",
        {"assignee_id": str(assignee) if assignee else None},
        [assignee],
    )
    return _detail(scope.conn, scope.alarm_id, lang)


@router.post("/{alarm_id}/notes", response_model=AlarmDetail, responses=_ACTION_RESPONSES)
def add_note(scope: AlarmDep, body: NoteRequest, principal: Clinician, lang: Lang = "nb") -> AlarmDetail:
    """Add a note to the alarm's history (also on a resolved alarm)."""
    scope.action = "note"
    _change(scope.conn, scope.alarm_id, principal, "note", {"text": body.text}, [])
    return _detail(scope.conn, scope.alarm_id, lang)


@router.post("/{alarm_id}/resolve", response_model=AlarmDetail, responses=_ACTION_RESPONSES)
def resolve(scope: AlarmDep, body: ResolveRequest, principal: Clinician, lang: Lang = "nb") -> AlarmDetail:
    """Close the alarm with what was done. A later breach of the same rule opens a new alarm. Where the patient's
    organisation has a record system, the alarm's document is queued for it in the same transaction."""
    state = _lock(scope.conn, scope.alarm_id)
    if state == "resolved":
        raise HTTPException(409, "the alarm is already resolved")
    scope.action = "resolve"
    _change(
        scope.conn,
        scope.alarm_id,
        principal,
        "resolved",
        {"resolution": body.resolution},
        [principal.user_id, body.resolution],
    )
    assert scope.alarm_id is not None
    enqueue_alarm_document(scope.conn, scope.alarm_id)
    return _detail(scope.conn, scope.alarm_id, lang)


@router.post("/{alarm_id}/escalate", response_model=AlarmDetail, responses=_ACTION_RESPONSES)
def escalate(scope: AlarmDep, principal: Clinician, lang: Lang = "nb") -> AlarmDetail:
    """Escalate now: the patient's team's escalation targets (on-call nurse) are notified (409 when the alarm is
    resolved or already escalated)."""
    state = _lock(scope.conn, scope.alarm_id)
    row = scope.conn.execute("SELECT escalated_at FROM alarms WHERE id = %s", (scope.alarm_id,)).fetchone()
    if state == "resolved" or (row is not None and row[0] is not None):
        raise HTTPException(409, "the alarm is resolved or already escalated")
    scope.action = "escalate"
    _change(scope.conn, scope.alarm_id, principal, "escalated", {"manual": True}, [])
    return _detail(scope.conn, scope.alarm_id, lang)
