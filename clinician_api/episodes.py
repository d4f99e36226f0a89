"""Episodes of follow-up and hand-overs between teams: the store functions and the rules they keep.

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
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg import Connection, sql
from psycopg.types.json import Jsonb

EPISODE_COLUMNS = (
    "e.id, e.patient_id, e.status, e.team_id, t.name, t.organisation_id, o.name, e.reason, e.conditions, "
    "e.protocol, e.plan, e.care_manager_id, e.started_at, e.started_by, e.ended_at, e.ended_by, "
    "e.discharge_reason, e.discharge_summary, e.updated_at"
)
EPISODE_FROM = (
    "care_episodes e JOIN care_teams t ON t.id = e.team_id LEFT JOIN organisations o ON o.id = t.organisation_id"
)
"""The episode with its team (t) and organisation (o): what `EPISODE_COLUMNS` and `fhir.EPISODE_COLUMNS` read."""
HANDOVER_COLUMNS = (
    "h.id, h.episode_id, h.patient_id, p.display_name, h.from_team_id, ft.name, fo.name, h.to_team_id, tt.name, "
    "too.name, h.state, h.situation, h.plan, h.open_alarms, h.open_alarm_ids, h.watch, h.consult_days, "
    "h.proposed_by, h.proposed_at, h.decided_by, h.decided_at, h.decline_reason"
)
_HANDOVER_FROM = (
    "care_handovers h JOIN patients p ON p.id = h.patient_id "
    "JOIN care_teams ft ON ft.id = h.from_team_id LEFT JOIN organisations fo ON fo.id = ft.organisation_id "
    "JOIN care_teams tt ON tt.id = h.to_team_id LEFT JOIN organisations too ON too.id = tt.organisation_id"
)


class EpisodeError(Exception):
    """A step the episode's state does not allow; `status` is the HTTP answer (404, 409 or 422)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Episode:
    id: UUID
    patient_id: UUID
    status: str
    team_id: UUID
    team_name: str
    organisation_id: UUID | None
    organisation_name: str | None
    reason: str
    conditions: list[str]
    protocol: str
    plan: str
    care_manager_id: UUID | None
    started_at: datetime
    started_by: UUID | None
    ended_at: datetime | None
    ended_by: UUID | None
    discharge_reason: str | None
    discharge_summary: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Handover:
    id: UUID
    episode_id: UUID
    patient_id: UUID
    patient_name: str
    from_team_id: UUID
    from_team_name: str
    from_organisation_name: str | None
    to_team_id: UUID
    to_team_name: str
    to_organisation_name: str | None
    state: str
    situation: str
    plan: str
    open_alarms: str
    open_alarm_ids: list[UUID]
    watch: str
    consult_days: int | None
    proposed_by: UUID
    proposed_at: datetime
    decided_by: UUID | None
    decided_at: datetime | None
    decline_reason: str | None


@dataclass(frozen=True, slots=True)
class EpisodeEvent:
    id: int
    episode_id: UUID
    at: datetime
    kind: str
    user_id: UUID | None
    username: str | None
    team_id: UUID
    team_name: str
    handover_id: UUID | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class HandoverNote:
    situation: str
    plan: str
    open_alarms: str
    watch: str


# --- reading ------------------------------------------------------------------------------------------------------


def current_episode(conn: Connection[Any], patient_id: UUID) -> Episode | None:
    row = conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE e.patient_id = %s AND e.status = 'active'").format(
            sql.SQL(EPISODE_COLUMNS), sql.SQL(EPISODE_FROM)
        ),
        (patient_id,),
    ).fetchone()
    return Episode(*row) if row else None


def episode(conn: Connection[Any], episode_id: UUID) -> Episode | None:
    row = conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE e.id = %s").format(sql.SQL(EPISODE_COLUMNS), sql.SQL(EPISODE_FROM)),
        (episode_id,),
    ).fetchone()
    return Episode(*row) if row else None


def episodes_of(conn: Connection[Any], patient_ids: Sequence[UUID]) -> list[Episode]:
    """Every episode of the patients, newest first (the history)."""
    rows = conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE e.patient_id = ANY(%s) ORDER BY e.started_at DESC, e.id").format(
            sql.SQL(EPISODE_COLUMNS), sql.SQL(EPISODE_FROM)
        ),
        (list(patient_ids),),
    ).fetchall()
    return [Episode(*r) for r in rows]


def events_of(conn: Connection[Any], episode_ids: Sequence[UUID]) -> list[EpisodeEvent]:
    rows = conn.execute(
        "SELECT v.id, v.episode_id, v.at, v.kind, v.user_id, u.username, v.team_id, t.name, v.handover_id, v.detail "
        "FROM care_episode_events v JOIN care_teams t ON t.id = v.team_id LEFT JOIN users u ON u.id = v.user_id "
        "WHERE v.episode_id = ANY(%s) ORDER BY v.at, v.id",
        (list(episode_ids),),
    ).fetchall()
    return [EpisodeEvent(*r) for r in rows]


def handover(conn: Connection[Any], handover_id: UUID) -> Handover | None:
    row = conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE h.id = %s").format(sql.SQL(HANDOVER_COLUMNS), sql.SQL(_HANDOVER_FROM)),
        (handover_id,),
    ).fetchone()
    return Handover(*row) if row else None


def handovers_of_episodes(conn: Connection[Any], episode_ids: Sequence[UUID]) -> list[Handover]:
    rows = conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE h.episode_id = ANY(%s) ORDER BY h.proposed_at, h.id").format(
            sql.SQL(HANDOVER_COLUMNS), sql.SQL(_HANDOVER_FROM)
        ),
        (list(episode_ids),),
    ).fetchall()
    return [Handover(*r) for r in rows]


def handovers_for_teams(
    conn: Connection[Any], team_ids: Sequence[UUID], *, states: Sequence[str] = ("proposed",), limit: int = 200
) -> list[Handover]:
    """Hand-overs the teams sent or received, in the given states, oldest proposal first."""
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM {} WHERE h.state = ANY(%s) AND (h.to_team_id = ANY(%s::uuid[]) OR "
            "h.from_team_id = ANY(%s::uuid[])) ORDER BY h.proposed_at, h.id LIMIT %s"
        ).format(sql.SQL(HANDOVER_COLUMNS), sql.SQL(_HANDOVER_FROM)),
        (list(states), list(team_ids), list(team_ids), limit),
    ).fetchall()
    return [Handover(*r) for r in rows]


def pending_handovers(conn: Connection[Any], team_ids: Sequence[UUID]) -> list[Handover]:
    """Hand-overs waiting for one of the teams to accept or decline (the worklist's item), oldest first."""
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM {} WHERE h.state = 'proposed' AND h.to_team_id = ANY(%s::uuid[]) ORDER BY "
            "h.proposed_at, h.id"
        ).format(sql.SQL(HANDOVER_COLUMNS), sql.SQL(_HANDOVER_FROM)),
        (list(team_ids),),
    ).fetchall()
    return [Handover(*r) for r in rows]


def open_alarm_summary(conn: Connection[Any], patient_id: UUID) -> tuple[str, list[UUID]]:
    """The patient's unresolved alarms as the note's prefilled text (one line each, worst first) and their ids."""
    rows = conn.execute(
        "SELECT id, severity, rule, state, opened_at, coalesce(explanation_nb, explanation_en, '') FROM alarms "
        "WHERE patient_id = %s AND state <> 'resolved' ORDER BY severity_rank, opened_at",
        (patient_id,),
    ).fetchall()
    lines = [f"{r[1]} {r[2]} ({r[3]}, {r[4]:%Y-%m-%d %H:%M}): {r[5]}".rstrip(": ") for r in rows]
    return "\n".join(lines), [r[0] for r in rows]


def handover_draft(conn: Connection[Any], current: Episode) -> HandoverNote:
    """The note as the form opens it: the episode's reason and plan, and the open alarms."""
    alarms, _ = open_alarm_summary(conn, current.patient_id)
    return HandoverNote(situation=current.reason, plan=current.plan, open_alarms=alarms, watch="")


# --- steps --------------------------------------------------------------------------------------------------------


def _event(
    conn: Connection[Any],
    episode_id: UUID,
    kind: str,
    user_id: UUID | None,
    team_id: UUID,
    *,
    handover_id: UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    row = conn.execute(
        "INSERT INTO care_episode_events (episode_id, kind, user_id, team_id, handover_id, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (episode_id, kind, user_id, team_id, handover_id, Jsonb(detail or {})),
    ).fetchone()
    assert row is not None
    return int(row[0])


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
            row = conn.execute(
                "INSERT INTO care_episodes (patient_id, team_id, reason, conditions, protocol, plan, care_manager_id, "
                "started_by, started_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now())) RETURNING id",
                (patient_id, team_id, reason, list(conditions), protocol, plan, user_id, user_id, started_at),
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise EpisodeError(409, "the patient already has an active episode; discharge it first") from None
    assert row is not None
    event_id = _event(conn, row[0], "enrolled", user_id, team_id, detail={"reason": reason})
    found = episode(conn, row[0])
    assert found is not None
    return found, event_id


def change(conn: Connection[Any], current: Episode, user_id: UUID, changes: dict[str, Any]) -> tuple[Episode, int]:
    """Change reason, conditions, protocol or plan of the active episode; the event keeps what was before."""
    allowed = {"reason", "conditions", "protocol", "plan"}
    changes = {k: v for k, v in changes.items() if k in allowed and v is not None}
    if not changes:
        raise EpisodeError(422, "nothing to change: give reason, conditions, protocol or plan")
    before = {k: getattr(current, k) for k in changes}
    sets = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in changes)
    conn.execute(
        sql.SQL("UPDATE care_episodes SET {}, updated_at = now() WHERE id = %(id)s AND status = 'active'").format(sets),
        {**changes, "id": current.id},
    )
    event_id = _event(
        conn, current.id, "changed", user_id, current.team_id, detail={"before": before, "after": changes}
    )
    found = episode(conn, current.id)
    assert found is not None
    return found, event_id


def discharge(
    conn: Connection[Any], current: Episode, user_id: UUID, *, reason: str, summary: str
) -> tuple[Episode, int]:
    """Finish the episode (a proposal still waiting is withdrawn); the patient stays with the last team."""
    pending = conn.execute(
        "UPDATE care_handovers SET state = 'withdrawn', decided_by = %s, decided_at = now() "
        "WHERE episode_id = %s AND state = 'proposed' RETURNING id",
        (user_id, current.id),
    ).fetchall()
    for (handover_id,) in pending:
        _event(conn, current.id, "handover_withdrawn", user_id, current.team_id, handover_id=handover_id)
    conn.execute(
        "UPDATE care_episodes SET status = 'finished', ended_at = now(), ended_by = %s, discharge_reason = %s, "
        "discharge_summary = %s, updated_at = now() WHERE id = %s",
        (user_id, reason, summary, current.id),
    )
    event_id = _event(conn, current.id, "discharged", user_id, current.team_id, detail={"reason": reason})
    found = episode(conn, current.id)
    assert found is not None
    return found, event_id


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
    if conn.execute("SELECT 1 FROM care_teams WHERE id = %s", (to_team_id,)).fetchone() is None:
        raise EpisodeError(422, "no such receiving team")
    _, alarm_ids = open_alarm_summary(conn, current.patient_id)
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO care_handovers (episode_id, patient_id, from_team_id, to_team_id, situation, plan, "
                "open_alarms, open_alarm_ids, watch, consult_days, proposed_by) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    current.id,
                    current.patient_id,
                    current.team_id,
                    to_team_id,
                    note.situation,
                    note.plan,
                    note.open_alarms,
                    alarm_ids,
                    note.watch,
                    consult_days,
                    user_id,
                ),
            ).fetchone()
    except psycopg.errors.UniqueViolation:
        raise EpisodeError(409, "a hand-over of this episode is already waiting for an answer") from None
    assert row is not None
    event_id = _event(
        conn,
        current.id,
        "handover_proposed",
        user_id,
        current.team_id,
        handover_id=row[0],
        detail={"to_team_id": str(to_team_id), "consult_days": consult_days},
    )
    found = handover(conn, row[0])
    assert found is not None
    return found, event_id


def _lock_proposed(conn: Connection[Any], handover_id: UUID) -> Handover:
    row = conn.execute("SELECT state FROM care_handovers WHERE id = %s FOR UPDATE", (handover_id,)).fetchone()
    if row is None:
        raise EpisodeError(404, "no such hand-over")
    if row[0] != "proposed":
        raise EpisodeError(409, f"the hand-over is already {row[0]}")
    found = handover(conn, handover_id)
    assert found is not None
    return found


def accept_handover(conn: Connection[Any], handover_id: UUID, user_id: UUID) -> tuple[Handover, int]:
    """The receiving team takes over: the episode's team changes (and with it `patients.team_id`), in one step."""
    proposal = _lock_proposed(conn, handover_id)
    conn.execute(
        "UPDATE care_handovers SET state = 'accepted', decided_by = %s, decided_at = now() WHERE id = %s",
        (user_id, handover_id),
    )
    conn.execute(
        "UPDATE care_episodes SET team_id = %s, care_manager_id = %s, updated_at = now() WHERE id = %s",
        (proposal.to_team_id, user_id, proposal.episode_id),
    )
    # The new team's own consultative access of an earlier hand-over ends: it is responsible now.
    conn.execute(
        "DELETE FROM care_episode_consultants WHERE episode_id = %s AND team_id = %s",
        (proposal.episode_id, proposal.to_team_id),
    )
    if proposal.consult_days:
        conn.execute(
            "INSERT INTO care_episode_consultants (episode_id, team_id, handover_id, until) "
            "VALUES (%s, %s, %s, now() + %s) ON CONFLICT (episode_id, team_id) DO UPDATE SET "
            "handover_id = EXCLUDED.handover_id, since = now(), until = EXCLUDED.until",
            (proposal.episode_id, proposal.from_team_id, handover_id, timedelta(days=proposal.consult_days)),
        )
    event_id = _event(
        conn,
        proposal.episode_id,
        "handover_accepted",
        user_id,
        proposal.to_team_id,
        handover_id=handover_id,
        detail={"from_team_id": str(proposal.from_team_id), "consult_days": proposal.consult_days},
    )
    found = handover(conn, handover_id)
    assert found is not None
    return found, event_id


def decline_handover(conn: Connection[Any], handover_id: UUID, user_id: UUID, reason: str) -> tuple[Handover, int]:
    """The receiving team says no (with a reason); the sender stays responsible, as it was all along."""
    proposal = _lock_proposed(conn, handover_id)
    conn.execute(
        "UPDATE care_handovers SET state = 'declined', decided_by = %s, decided_at = now(), decline_reason = %s "
        "WHERE id = %s",
        (user_id, reason, handover_id),
    )
    event_id = _event(
        conn,
        proposal.episode_id,
        "handover_declined",
        user_id,
        proposal.from_team_id,
        handover_id=handover_id,
        detail={"to_team_id": str(proposal.to_team_id), "reason": reason},
    )
    found = handover(conn, handover_id)
    assert found is not None
    return found, event_id


def withdraw_handover(conn: Connection[Any], handover_id: UUID, user_id: UUID) -> tuple[Handover, int]:
    """The sending team takes its proposal back before it is answered."""
    proposal = _lock_proposed(conn, handover_id)
    conn.execute(
        "UPDATE care_handovers SET state = 'withdrawn', decided_by = %s, decided_at = now() WHERE id = %s",
        (user_id, handover_id),
    )
    event_id = _event(
        conn, proposal.episode_id, "handover_withdrawn", user_id, proposal.from_team_id, handover_id=handover_id
    )
    found = handover(conn, handover_id)
    assert found is not None
    return found, event_id
