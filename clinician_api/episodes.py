"""Episodes of follow-up and hand-overs between teams: the steps and the rules they keep (the rows are
`store.episodes`').

An episode runs from enrolment (reason, conditions, protocol, plan, responsible team) through changes to discharge
(reason, summary); a patient has at most one active episode and keeps the finished ones. The active episode's
`team_id` is the responsible team: a database trigger copies it to `patients.team_id`, which every access check,
the alarm queue and the escalation targets read, so responsibility is one column with one writer.

A hand-over is proposed by the responsible team to another team with a structured note; until the receiving team
accepts, the sender stays responsible (no gap). Acceptance moves the episode (and with it duty of care, alarms and
escalation) in one transaction, and may leave the former team read-only consultative access for agreed days.
Every step is a row in `care_episode_events`; routes add the audit row and the journal entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import Connection

from store import episodes as episode_store
from store.episodes import EPISODE_FIELDS, Episode, Handover, OpenAlarm


class EpisodeError(Exception):
    """A step the episode's state does not allow; `status` is the HTTP answer (404, 409 or 422)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class HandoverNote:
    situation: str
    plan: str
    open_alarms: str
    watch: str


def _summary_line(a: OpenAlarm) -> str:
    return f"{a.severity} {a.rule} ({a.state}, {a.opened_at:%Y-%m-%d %H:%M}): {a.explanation}".rstrip(": ")


def open_alarm_summary(conn: Connection[Any], patient_id: UUID) -> tuple[str, list[UUID]]:
    """The patient's unresolved alarms as the note's prefilled text (one line each, worst first) and their ids."""
    found = episode_store.open_alarms(conn, patient_id)
    return "\n".join(_summary_line(a) for a in found), [a.id for a in found]


def handover_draft(conn: Connection[Any], current: Episode) -> HandoverNote:
    """The note as the form opens it: the episode's reason and plan, and the open alarms."""
    alarms, _ = open_alarm_summary(conn, current.patient_id)
    return HandoverNote(situation=current.reason, plan=current.plan, open_alarms=alarms, watch="")


def _reread(conn: Connection[Any], episode_id: UUID) -> Episode:
    found = episode_store.episode(conn, episode_id)
    assert found is not None
    return found


def _reread_handover(conn: Connection[Any], handover_id: UUID) -> Handover:
    found = episode_store.handover(conn, handover_id)
    assert found is not None
    return found


# --- steps --------------------------------------------------------------------------------------------------------


def enrol(
    conn: Connection[Any],
    patient_id: UUID,
    user_id: UUID | None,
    team_id: UUID,
    *,
    reason: str,
    conditions: Sequence[str],
    protocol: str,
    plan: str,
    started_at: datetime | None = None,
) -> tuple[Episode, int]:
    """Open an episode with `team_id` responsible; 409 while another episode of the patient is active. `user_id`
    None: enrolled by an administrator's tool (the demo), not by a clinician."""
    try:
        with conn.transaction():
            episode_id = episode_store.insert_episode(
                conn,
                patient_id,
                user_id,
                team_id,
                reason=reason,
                conditions=conditions,
                protocol=protocol,
                plan=plan,
                started_at=started_at,
            )
    except psycopg.errors.UniqueViolation:
        raise EpisodeError(409, "the patient already has an active episode; discharge it first") from None
    event_id = episode_store.record_event(conn, episode_id, "enrolled", user_id, team_id, detail={"reason": reason})
    return _reread(conn, episode_id), event_id


def change(conn: Connection[Any], current: Episode, user_id: UUID, changes: dict[str, Any]) -> tuple[Episode, int]:
    """Change reason, conditions, protocol or plan of the active episode; the event keeps what was before."""
    changes = {k: v for k, v in changes.items() if k in EPISODE_FIELDS and v is not None}
    if not changes:
        raise EpisodeError(422, "nothing to change: give reason, conditions, protocol or plan")
    before = {k: getattr(current, k) for k in changes}
    episode_store.update_episode(conn, current.id, changes)
    event_id = episode_store.record_event(
        conn, current.id, "changed", user_id, current.team_id, detail={"before": before, "after": changes}
    )
    return _reread(conn, current.id), event_id


def discharge(
    conn: Connection[Any], current: Episode, user_id: UUID, *, reason: str, summary: str
) -> tuple[Episode, int]:
    """Finish the episode (a proposal still waiting is withdrawn); the patient stays with the last team."""
    for handover_id in episode_store.withdraw_proposals_of(conn, current.id, user_id):
        episode_store.record_event(
            conn, current.id, "handover_withdrawn", user_id, current.team_id, handover_id=handover_id
        )
    episode_store.finish_episode(conn, current.id, user_id, reason=reason, summary=summary)
    event_id = episode_store.record_event(
        conn, current.id, "discharged", user_id, current.team_id, detail={"reason": reason}
    )
    return _reread(conn, current.id), event_id


def propose_handover(
    conn: Connection[Any],
    current: Episode,
    user_id: UUID,
    to_team_id: UUID,
    note: HandoverNote,
    consult_days: int | None,
) -> tuple[Handover, int]:
    """Propose handing the episode to `to_team_id`; 409 when a proposal already waits, 422 for the own team."""
    if to_team_id == current.team_id:
        raise EpisodeError(422, "the receiving team is already responsible")
    if not episode_store.team_exists(conn, to_team_id):
        raise EpisodeError(422, "no such receiving team")
    _, alarm_ids = open_alarm_summary(conn, current.patient_id)
    try:
        with conn.transaction():
            handover_id = episode_store.insert_handover(
                conn,
                current,
                user_id,
                to_team_id,
                situation=note.situation,
                plan=note.plan,
                open_alarms=note.open_alarms,
                open_alarm_ids=alarm_ids,
                watch=note.watch,
                consult_days=consult_days,
            )
    except psycopg.errors.UniqueViolation:
        raise EpisodeError(409, "a hand-over of this episode is already waiting for an answer") from None
    event_id = episode_store.record_event(
        conn,
        current.id,
        "handover_proposed",
        user_id,
        current.team_id,
        handover_id=handover_id,
        detail={"to_team_id": str(to_team_id), "consult_days": consult_days},
    )
    return _reread_handover(conn, handover_id), event_id


def _lock_proposed(conn: Connection[Any], handover_id: UUID) -> Handover:
    state = episode_store.lock_handover_state(conn, handover_id)
    if state is None:
        raise EpisodeError(404, "no such hand-over")
    if state != "proposed":
        raise EpisodeError(409, f"the hand-over is already {state}")
    return _reread_handover(conn, handover_id)


def accept_handover(conn: Connection[Any], handover_id: UUID, user_id: UUID) -> tuple[Handover, int]:
    """The receiving team takes over: the episode's team changes (and with it `patients.team_id`), in one step."""
    proposal = _lock_proposed(conn, handover_id)
    episode_store.accept(conn, handover_id, user_id)
    episode_store.move_episode(conn, proposal.episode_id, proposal.to_team_id, user_id)
    # The new team's own consultative access of an earlier hand-over ends: it is responsible now.
    episode_store.end_consultation(conn, proposal.episode_id, proposal.to_team_id)
    if proposal.consult_days:
        episode_store.grant_consultation(
            conn, proposal.episode_id, proposal.from_team_id, handover_id, proposal.consult_days
        )
    event_id = episode_store.record_event(
        conn,
        proposal.episode_id,
        "handover_accepted",
        user_id,
        proposal.to_team_id,
        handover_id=handover_id,
        detail={"from_team_id": str(proposal.from_team_id), "consult_days": proposal.consult_days},
    )
    return _reread_handover(conn, handover_id), event_id


def decline_handover(conn: Connection[Any], handover_id: UUID, user_id: UUID, reason: str) -> tuple[Handover, int]:
    """The receiving team says no (with a reason); the sender stays responsible, as it was all along."""
    proposal = _lock_proposed(conn, handover_id)
    episode_store.decline(conn, handover_id, user_id, reason)
    event_id = episode_store.record_event(
        conn,
        proposal.episode_id,
        "handover_declined",
        user_id,
        proposal.from_team_id,
        handover_id=handover_id,
        detail={"to_team_id": str(proposal.to_team_id), "reason": reason},
    )
    return _reread_handover(conn, handover_id), event_id


def withdraw_handover(conn: Connection[Any], handover_id: UUID, user_id: UUID) -> tuple[Handover, int]:
    """The sending team takes its proposal back before it is answered."""
    proposal = _lock_proposed(conn, handover_id)
    episode_store.withdraw(conn, handover_id, user_id)
    event_id = episode_store.record_event(
        conn, proposal.episode_id, "handover_withdrawn", user_id, proposal.from_team_id, handover_id=handover_id
    )
    return _reread_handover(conn, handover_id), event_id
