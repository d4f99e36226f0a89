"""Episodes of follow-up and hand-overs: enrol, change, discharge (under the patient), propose a hand-over to
another team, and the receiving team's accept or decline (under `/handovers`, since that team is not yet
responsible). Every step is audited and journaled in the transaction that makes it."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from psycopg import Connection

from clinician_api import episodes, problems
from clinician_api.access import BASIS_TEAM, Principal
from clinician_api.deps import Clinician, Conn, CurrentPrincipal, PatientDep, client_addr
from clinician_api.episode_schemas import (
    Discharge,
    Enrolment,
    EpisodeChange,
    EpisodeEventOut,
    EpisodeHistory,
    EpisodeOut,
    HandoverDecline,
    HandoverDraft,
    HandoverList,
    HandoverOut,
    HandoverProposal,
    HandoverState,
    TeamChoice,
)
from clinician_api.journal import enqueue_episode_step
from store import audit
from store import episodes as episode_store
from store.episodes import Episode, Handover
from store.events import notify_changes

router = APIRouter(prefix="/api/v1", tags=["episodes"], responses=problems.responses(401))
_PATIENT = problems.responses(403, 404, 409, 422)
NOT_RESPONSIBLE = "only the responsible team may do this"


def _fail(exc: episodes.EpisodeError) -> HTTPException:
    return HTTPException(exc.status, exc.detail)


def _responsible(scope: PatientDep) -> None:
    """Writes on an episode are the responsible team's (not an emergency access)."""
    if scope.access.basis != BASIS_TEAM:
        raise HTTPException(403, NOT_RESPONSIBLE)


def _current(scope: PatientDep) -> Episode:
    current = episode_store.current_episode(scope.conn, scope.patient_id)
    if current is None:
        raise HTTPException(409, "the patient has no active episode of follow-up")
    return current


def _receiving_teams(conn: Connection[Any], current: Episode) -> list[TeamChoice]:
    return [
        TeamChoice.model_validate(t, from_attributes=True) for t in episode_store.receiving_teams(conn, current.team_id)
    ]


@router.get("/patients/{patient_id}/episodes", response_model=EpisodeHistory, responses=_PATIENT)
def episode_history(scope: PatientDep) -> EpisodeHistory:
    """The patient's episodes of follow-up (newest first) with their hand-overs and steps."""
    conn = scope.conn
    every = episode_store.episodes_of(conn, [scope.patient_id])
    current = next((e for e in every if e.status == "active"), None)
    ids = [e.id for e in every]
    may_hand_over = current is not None and scope.access.basis == BASIS_TEAM and scope.principal.is_clinician
    return EpisodeHistory(
        access=scope.access.basis,
        current=EpisodeOut.of(current) if current else None,
        episodes=[EpisodeOut.of(e) for e in every],
        handovers=[HandoverOut.of(h) for h in episode_store.handovers_of_episodes(conn, ids)],
        events=[EpisodeEventOut.model_validate(v, from_attributes=True) for v in episode_store.events_of(conn, ids)],
        receiving_teams=_receiving_teams(conn, current) if current and may_hand_over else [],
    )


@router.post("/patients/{patient_id}/episodes", response_model=EpisodeOut, status_code=201, responses=_PATIENT)
def enrol(scope: PatientDep, body: Enrolment, principal: Clinician) -> EpisodeOut:
    """Enrol the patient in follow-up with one of the caller's teams responsible (409 while an episode is active)."""
    _responsible(scope)
    scope.action = "episode_enrol"
    team_id = body.team_id or scope.access.team_id
    if team_id not in principal.team_ids:
        raise HTTPException(422, "the responsible team must be one of your teams")
    try:
        episode, event_id = episodes.enrol(
            scope.conn,
            scope.patient_id,
            principal.user_id,
            team_id,
            reason=body.reason,
            conditions=body.conditions,
            protocol=body.protocol,
            plan=body.plan,
        )
    except episodes.EpisodeError as exc:
        raise _fail(exc) from None
    enqueue_episode_step(scope.conn, event_id)
    return EpisodeOut.of(episode)


@router.patch("/patients/{patient_id}/episodes/current", response_model=EpisodeOut, responses=_PATIENT)
def change_episode(scope: PatientDep, body: EpisodeChange, principal: Clinician) -> EpisodeOut:
    """Change the active episode's reason, conditions, protocol or plan (the step keeps what was before)."""
    _responsible(scope)
    scope.action = "episode_change"
    try:
        episode, event_id = episodes.change(
            scope.conn, _current(scope), principal.user_id, body.model_dump(exclude_unset=True)
        )
    except episodes.EpisodeError as exc:
        raise _fail(exc) from None
    enqueue_episode_step(scope.conn, event_id)
    return EpisodeOut.of(episode)


@router.post("/patients/{patient_id}/episodes/current/discharge", response_model=EpisodeOut, responses=_PATIENT)
def discharge(scope: PatientDep, body: Discharge, principal: Clinician) -> EpisodeOut:
    """End the active episode with a reason and a summary; a hand-over still waiting is withdrawn."""
    _responsible(scope)
    scope.action = "episode_discharge"
    episode, event_id = episodes.discharge(
        scope.conn, _current(scope), principal.user_id, reason=body.reason, summary=body.summary
    )
    enqueue_episode_step(scope.conn, event_id)
    return EpisodeOut.of(episode)


@router.get("/patients/{patient_id}/handovers/draft", response_model=HandoverDraft, responses=_PATIENT)
def handover_draft(scope: PatientDep) -> HandoverDraft:
    """The hand-over note as the form opens it: the episode's reason and plan, the open alarms prefilled."""
    _responsible(scope)
    note = episodes.handover_draft(scope.conn, _current(scope))
    return HandoverDraft(situation=note.situation, plan=note.plan, open_alarms=note.open_alarms, watch=note.watch)


@router.post("/patients/{patient_id}/handovers", response_model=HandoverOut, status_code=201, responses=_PATIENT)
def propose_handover(scope: PatientDep, body: HandoverProposal, principal: Clinician) -> HandoverOut:
    """Propose handing the episode to another team with a structured note; the caller's team stays responsible
    until the receiving team accepts. 409 while another proposal of the episode waits."""
    _responsible(scope)
    scope.action = "handover_propose"
    note = episodes.HandoverNote(
        situation=body.situation, plan=body.plan, open_alarms=body.open_alarms, watch=body.watch
    )
    try:
        proposal, event_id = episodes.propose_handover(
            scope.conn, _current(scope), principal.user_id, body.to_team_id, note, body.consult_days
        )
    except episodes.EpisodeError as exc:
        raise _fail(exc) from None
    enqueue_episode_step(scope.conn, event_id)
    return HandoverOut.of(proposal)


# --- the hand-over itself: seen by the sending and the receiving team only ----------------------------------------


def _audit(conn: Connection[Any], principal: Principal, request: Request, action: str, h: Any, outcome: str) -> None:
    audit.record(
        conn,
        principal,
        action,
        request.url.path,
        outcome,
        patient_id=h.patient_id if h else None,
        client_addr=client_addr(request),
    )


def _party(
    conn: Connection[Any], principal: Principal, request: Request, handover_id: UUID, action: str, *, receiver: bool
) -> Handover:
    """The hand-over when the caller's team sends (or, with `receiver`, receives) it; otherwise 404, audited,
    exactly as for a hand-over that does not exist."""
    found = episode_store.handover(conn, handover_id)
    allowed = (
        found is not None
        and principal.reads_records
        and (found.to_team_id in principal.team_ids or (not receiver and found.from_team_id in principal.team_ids))
    )
    if not allowed:
        _audit(conn, principal, request, action, found, "denied")
        conn.commit()
        raise HTTPException(404, "no such hand-over for your teams")
    assert found is not None
    return found


@router.get("/handovers", response_model=HandoverList)
def list_handovers(
    conn: Conn,
    principal: CurrentPrincipal,
    request: Request,
    state: Annotated[list[HandoverState] | None, Query(description="Default: proposed")] = None,
    direction: Annotated[str | None, Query(pattern="^(incoming|outgoing)$")] = None,
) -> HandoverList:
    """Hand-overs the caller's teams sent or received (default: those waiting for an answer), oldest first."""
    found = episode_store.handovers_for_teams(conn, principal.team_ids, states=state or ["proposed"])
    if direction == "incoming":
        found = [h for h in found if h.to_team_id in principal.team_ids]
    elif direction == "outgoing":
        found = [h for h in found if h.from_team_id in principal.team_ids]
    audit.record_patients(
        conn, principal, "list", request.url.path, [h.patient_id for h in found], client_addr=client_addr(request)
    )
    return HandoverList(items=[HandoverOut.of(h) for h in found])


@router.get("/handovers/{handover_id}", response_model=HandoverOut, responses=problems.responses(404))
def get_handover(handover_id: UUID, conn: Conn, principal: CurrentPrincipal, request: Request) -> HandoverOut:
    found = _party(conn, principal, request, handover_id, "read", receiver=False)
    _audit(conn, principal, request, "read", found, "ok")
    return HandoverOut.of(found)


def _decided(
    conn: Connection[Any],
    principal: Principal,
    request: Request,
    action: str,
    step: Any,
) -> HandoverOut:
    try:
        decided, event_id = step()
    except episodes.EpisodeError as exc:
        conn.rollback()
        _audit(
            conn,
            principal,
            request,
            action,
            episode_store.handover(conn, request.path_params["handover_id"]),
            f"refused:{exc.status}",
        )
        conn.commit()
        raise _fail(exc) from None
    _audit(conn, principal, request, action, decided, "ok")
    enqueue_episode_step(conn, event_id)
    return HandoverOut.of(decided)


@router.post("/handovers/{handover_id}/accept", response_model=HandoverOut, responses=problems.responses(404, 409))
def accept_handover(handover_id: UUID, conn: Conn, principal: Clinician, request: Request) -> HandoverOut:
    """The receiving team takes over: from now on it is responsible (access, alarm queue, escalation)."""
    _party(conn, principal, request, handover_id, "handover_accept", receiver=True)
    out = _decided(
        conn,
        principal,
        request,
        "handover_accept",
        lambda: episodes.accept_handover(conn, handover_id, principal.user_id),
    )
    # Open alarms now belong in the receiving team's queue, no longer in the sender's: tell the live streams.
    _, alarm_ids = episodes.open_alarm_summary(conn, out.patient_id)
    notify_changes(conn, "handover", alarm_ids, handed_over_from=[out.from_team_id])
    return out


@router.post("/handovers/{handover_id}/decline", response_model=HandoverOut, responses=problems.responses(404, 409))
def decline_handover(
    handover_id: UUID, body: HandoverDecline, conn: Conn, principal: Clinician, request: Request
) -> HandoverOut:
    """The receiving team declines with a reason; the sending team stays responsible."""
    _party(conn, principal, request, handover_id, "handover_decline", receiver=True)
    return _decided(
        conn,
        principal,
        request,
        "handover_decline",
        lambda: episodes.decline_handover(conn, handover_id, principal.user_id, body.reason),
    )


@router.post("/handovers/{handover_id}/withdraw", response_model=HandoverOut, responses=problems.responses(404, 409))
def withdraw_handover(handover_id: UUID, conn: Conn, principal: Clinician, request: Request) -> HandoverOut:
    """The sending team takes its proposal back before it is answered."""
    found = _party(conn, principal, request, handover_id, "handover_withdraw", receiver=False)
    if found.from_team_id not in principal.team_ids:
        _audit(conn, principal, request, "handover_withdraw", found, "refused:403")
        conn.commit()
        raise HTTPException(403, "only the sending team may withdraw its proposal")
    return _decided(
        conn,
        principal,
        request,
        "handover_withdraw",
        lambda: episodes.withdraw_handover(conn, handover_id, principal.user_id),
    )
