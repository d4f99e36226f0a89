"""Episodes of follow-up and their hand-overs: the one reader and writer of `care_episodes`, `care_episode_events`,
`care_handovers` and `care_episode_consultants`, as typed rows.

Each function is one statement in the caller's transaction; which steps an episode allows, and in what order they
run, is `clinician_api.episodes`'. A database trigger copies the active episode's `team_id` to `patients.team_id`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import class_row, scalar_row
from psycopg.types.json import Jsonb

EPISODE_FROM = (
    "care_episodes e JOIN care_teams t ON t.id = e.team_id LEFT JOIN organisations o ON o.id = t.organisation_id"
)
"""The episode with its team (t) and organisation (o): what `Episode` reads."""
EPISODE_COLUMNS = sql.SQL(
    "e.id, e.patient_id, e.status, e.team_id, t.name AS team_name, t.organisation_id, "
    "o.name AS organisation_name, e.reason, e.conditions, e.protocol, e.plan, e.care_manager_id, e.started_at, "
    "e.started_by, e.ended_at, e.ended_by, e.discharge_reason, e.discharge_summary, e.updated_at"
)
"""The columns of `Episode`, over `EPISODE_FROM`."""
_EPISODE = sql.SQL("SELECT {} FROM {}").format(EPISODE_COLUMNS, sql.SQL(EPISODE_FROM))
_HANDOVER = sql.SQL(
    "SELECT h.id, h.episode_id, h.patient_id, p.display_name AS patient_name, h.from_team_id, "
    "ft.name AS from_team_name, fo.name AS from_organisation_name, h.to_team_id, tt.name AS to_team_name, "
    "too.name AS to_organisation_name, h.state, h.situation, h.plan, h.open_alarms, h.open_alarm_ids, h.watch, "
    "h.consult_days, h.proposed_by, h.proposed_at, h.decided_by, h.decided_at, h.decline_reason "
    "FROM care_handovers h JOIN patients p ON p.id = h.patient_id "
    "JOIN care_teams ft ON ft.id = h.from_team_id LEFT JOIN organisations fo ON fo.id = ft.organisation_id "
    "JOIN care_teams tt ON tt.id = h.to_team_id LEFT JOIN organisations too ON too.id = tt.organisation_id"
)
EPISODE_FIELDS = frozenset({"reason", "conditions", "protocol", "plan"})
"""What a change of the active episode may set."""


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
class ReceivingTeam:
    """A team an episode may be handed over to."""

    id: UUID
    name: str
    organisation_name: str | None


@dataclass(frozen=True, slots=True)
class OpenAlarm:
    """An unresolved alarm of the patient, as a hand-over note lists it."""

    id: UUID
    severity: str
    rule: str
    state: str
    opened_at: datetime
    explanation: str
    """Bokmål, else English, else empty."""


# --- reading ------------------------------------------------------------------------------------------------------


def current_episode(conn: Connection[Any], patient_id: UUID) -> Episode | None:
    with conn.cursor(row_factory=class_row(Episode)) as cur:
        query = sql.SQL("{} WHERE e.patient_id = %s AND e.status = 'active'").format(_EPISODE)
        return cur.execute(query, (patient_id,)).fetchone()


def episode(conn: Connection[Any], episode_id: UUID) -> Episode | None:
    with conn.cursor(row_factory=class_row(Episode)) as cur:
        return cur.execute(sql.SQL("{} WHERE e.id = %s").format(_EPISODE), (episode_id,)).fetchone()


def episodes_of(conn: Connection[Any], patient_ids: Sequence[UUID]) -> list[Episode]:
    """Every episode of the patients, newest first (the history)."""
    with conn.cursor(row_factory=class_row(Episode)) as cur:
        query = sql.SQL("{} WHERE e.patient_id = ANY(%s) ORDER BY e.started_at DESC, e.id").format(_EPISODE)
        return cur.execute(query, (list(patient_ids),)).fetchall()


def events_of(conn: Connection[Any], episode_ids: Sequence[UUID]) -> list[EpisodeEvent]:
    with conn.cursor(row_factory=class_row(EpisodeEvent)) as cur:
        return cur.execute(
            "SELECT v.id, v.episode_id, v.at, v.kind, v.user_id, u.username, v.team_id, t.name AS team_name, "
            "v.handover_id, v.detail FROM care_episode_events v JOIN care_teams t ON t.id = v.team_id "
            "LEFT JOIN users u ON u.id = v.user_id WHERE v.episode_id = ANY(%s) ORDER BY v.at, v.id",
            (list(episode_ids),),
        ).fetchall()


def handover(conn: Connection[Any], handover_id: UUID) -> Handover | None:
    with conn.cursor(row_factory=class_row(Handover)) as cur:
        return cur.execute(sql.SQL("{} WHERE h.id = %s").format(_HANDOVER), (handover_id,)).fetchone()


def handovers_of_episodes(conn: Connection[Any], episode_ids: Sequence[UUID]) -> list[Handover]:
    with conn.cursor(row_factory=class_row(Handover)) as cur:
        query = sql.SQL("{} WHERE h.episode_id = ANY(%s) ORDER BY h.proposed_at, h.id").format(_HANDOVER)
        return cur.execute(query, (list(episode_ids),)).fetchall()


def handovers_for_teams(
    conn: Connection[Any], team_ids: Sequence[UUID], *, states: Sequence[str] = ("proposed",), limit: int = 200
) -> list[Handover]:
    """Hand-overs the teams sent or received, in the given states, oldest proposal first."""
    query = sql.SQL(
        "{} WHERE h.state = ANY(%s) AND (h.to_team_id = ANY(%s::uuid[]) OR h.from_team_id = ANY(%s::uuid[])) "
        "ORDER BY h.proposed_at, h.id LIMIT %s"
    ).format(_HANDOVER)
    with conn.cursor(row_factory=class_row(Handover)) as cur:
        return cur.execute(query, (list(states), list(team_ids), list(team_ids), limit)).fetchall()


def pending_handovers(conn: Connection[Any], team_ids: Sequence[UUID]) -> list[Handover]:
    """Hand-overs waiting for one of the teams to accept or decline (the worklist's item), oldest first."""
    query = sql.SQL(
        "{} WHERE h.state = 'proposed' AND h.to_team_id = ANY(%s::uuid[]) ORDER BY h.proposed_at, h.id"
    ).format(_HANDOVER)
    with conn.cursor(row_factory=class_row(Handover)) as cur:
        return cur.execute(query, (list(team_ids),)).fetchall()


def open_alarms(conn: Connection[Any], patient_id: UUID) -> list[OpenAlarm]:
    """The patient's unresolved alarms, worst first, then oldest first."""
    with conn.cursor(row_factory=class_row(OpenAlarm)) as cur:
        return cur.execute(
            "SELECT id, severity, rule, state, opened_at, coalesce(explanation_nb, explanation_en, '') AS explanation "
            "FROM alarms WHERE patient_id = %s AND state <> 'resolved' ORDER BY severity_rank, opened_at",
            (patient_id,),
        ).fetchall()


def receiving_teams(conn: Connection[Any], team_id: UUID) -> list[ReceivingTeam]:
    """Every team but `team_id`, by organisation (teams without one last), then name."""
    with conn.cursor(row_factory=class_row(ReceivingTeam)) as cur:
        return cur.execute(
            "SELECT t.id, t.name, o.name AS organisation_name FROM care_teams t "
            "LEFT JOIN organisations o ON o.id = t.organisation_id WHERE t.id <> %s ORDER BY o.name NULLS LAST, t.name",
            (team_id,),
        ).fetchall()


def team_exists(conn: Connection[Any], team_id: UUID) -> bool:
    return conn.execute("SELECT 1 FROM care_teams WHERE id = %s", (team_id,)).fetchone() is not None


def lock_handover_state(conn: Connection[Any], handover_id: UUID) -> str | None:
    """The hand-over's state, its row locked until the transaction ends; None when there is no such hand-over."""
    with conn.cursor(row_factory=scalar_row) as cur:
        state: str | None = cur.execute(
            "SELECT state FROM care_handovers WHERE id = %s FOR UPDATE", (handover_id,)
        ).fetchone()
        return state


# --- writing ------------------------------------------------------------------------------------------------------


def record_event(
    conn: Connection[Any],
    episode_id: UUID,
    kind: str,
    user_id: UUID | None,
    team_id: UUID,
    *,
    handover_id: UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """One step of the episode; returns the event's id."""
    with conn.cursor(row_factory=scalar_row) as cur:
        event_id = cur.execute(
            "INSERT INTO care_episode_events (episode_id, kind, user_id, team_id, handover_id, detail) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (episode_id, kind, user_id, team_id, handover_id, Jsonb(detail or {})),
        ).fetchone()
    assert event_id is not None
    return int(event_id)


def insert_episode(
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
) -> UUID:
    """A new active episode with `user_id` as care manager; `psycopg.errors.UniqueViolation` while another episode
    of the patient is active."""
    with conn.cursor(row_factory=scalar_row) as cur:
        episode_id: UUID | None = cur.execute(
            "INSERT INTO care_episodes (patient_id, team_id, reason, conditions, protocol, plan, care_manager_id, "
            "started_by, started_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now())) RETURNING id",
            (patient_id, team_id, reason, list(conditions), protocol, plan, user_id, user_id, started_at),
        ).fetchone()
    assert episode_id is not None
    return episode_id


def update_episode(conn: Connection[Any], episode_id: UUID, changes: Mapping[str, Any]) -> None:
    """Set some of `EPISODE_FIELDS` of the episode while it is active."""
    unknown = set(changes) - EPISODE_FIELDS
    if unknown or not changes:
        raise ValueError(f"an episode change sets some of {sorted(EPISODE_FIELDS)}, not {sorted(unknown)}")
    sets = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in changes)
    conn.execute(
        sql.SQL("UPDATE care_episodes SET {}, updated_at = now() WHERE id = %(id)s AND status = 'active'").format(sets),
        {**changes, "id": episode_id},
    )


def finish_episode(conn: Connection[Any], episode_id: UUID, user_id: UUID, *, reason: str, summary: str) -> None:
    conn.execute(
        "UPDATE care_episodes SET status = 'finished', ended_at = now(), ended_by = %s, discharge_reason = %s, "
        "discharge_summary = %s, updated_at = now() WHERE id = %s",
        (user_id, reason, summary, episode_id),
    )


def move_episode(conn: Connection[Any], episode_id: UUID, team_id: UUID, care_manager_id: UUID) -> None:
    """Make `team_id` responsible for the episode (and, by the trigger, for the patient)."""
    conn.execute(
        "UPDATE care_episodes SET team_id = %s, care_manager_id = %s, updated_at = now() WHERE id = %s",
        (team_id, care_manager_id, episode_id),
    )


def insert_handover(
    conn: Connection[Any],
    episode: Episode,
    user_id: UUID,
    to_team_id: UUID,
    *,
    situation: str,
    plan: str,
    open_alarms: str,
    open_alarm_ids: Sequence[UUID],
    watch: str,
    consult_days: int | None,
) -> UUID:
    """A proposal to hand `episode` from its team to `to_team_id`; `psycopg.errors.UniqueViolation` while another
    proposal of the episode waits."""
    with conn.cursor(row_factory=scalar_row) as cur:
        handover_id: UUID | None = cur.execute(
            "INSERT INTO care_handovers (episode_id, patient_id, from_team_id, to_team_id, situation, plan, "
            "open_alarms, open_alarm_ids, watch, consult_days, proposed_by) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                episode.id,
                episode.patient_id,
                episode.team_id,
                to_team_id,
                situation,
                plan,
                open_alarms,
                list(open_alarm_ids),
                watch,
                consult_days,
                user_id,
            ),
        ).fetchone()
    assert handover_id is not None
    return handover_id


def withdraw_proposals_of(conn: Connection[Any], episode_id: UUID, user_id: UUID) -> list[UUID]:
    """Withdraw the episode's proposals still waiting; returns their ids."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute(
            "UPDATE care_handovers SET state = 'withdrawn', decided_by = %s, decided_at = now() "
            "WHERE episode_id = %s AND state = 'proposed' RETURNING id",
            (user_id, episode_id),
        ).fetchall()


def accept(conn: Connection[Any], handover_id: UUID, user_id: UUID) -> None:
    conn.execute(
        "UPDATE care_handovers SET state = 'accepted', decided_by = %s, decided_at = now() WHERE id = %s",
        (user_id, handover_id),
    )


def decline(conn: Connection[Any], handover_id: UUID, user_id: UUID, reason: str) -> None:
    conn.execute(
        "UPDATE care_handovers SET state = 'declined', decided_by = %s, decided_at = now(), decline_reason = %s "
        "WHERE id = %s",
        (user_id, reason, handover_id),
    )


def withdraw(conn: Connection[Any], handover_id: UUID, user_id: UUID) -> None:
    conn.execute(
        "UPDATE care_handovers SET state = 'withdrawn', decided_by = %s, decided_at = now() WHERE id = %s",
        (user_id, handover_id),
    )


def end_consultation(conn: Connection[Any], episode_id: UUID, team_id: UUID) -> None:
    """The team's consultative access to the episode ends."""
    conn.execute(
        "DELETE FROM care_episode_consultants WHERE episode_id = %s AND team_id = %s",
        (episode_id, team_id),
    )


def grant_consultation(conn: Connection[Any], episode_id: UUID, team_id: UUID, handover_id: UUID, days: int) -> None:
    """Read-only consultative access to the episode for `team_id`, for `days` from now (renewed if it has one)."""
    conn.execute(
        "INSERT INTO care_episode_consultants (episode_id, team_id, handover_id, until) "
        "VALUES (%s, %s, %s, now() + %s) ON CONFLICT (episode_id, team_id) DO UPDATE SET "
        "handover_id = EXCLUDED.handover_id, since = now(), until = EXCLUDED.until",
        (episode_id, team_id, handover_id, timedelta(days=days)),
    )


__all__ = [
    "EPISODE_COLUMNS",
    "EPISODE_FIELDS",
    "EPISODE_FROM",
    "Episode",
    "EpisodeEvent",
    "Handover",
    "OpenAlarm",
    "ReceivingTeam",
    "accept",
    "current_episode",
    "decline",
    "end_consultation",
    "episode",
    "episodes_of",
    "events_of",
    "finish_episode",
    "grant_consultation",
    "handover",
    "handovers_for_teams",
    "handovers_of_episodes",
    "insert_episode",
    "insert_handover",
    "lock_handover_state",
    "move_episode",
    "open_alarms",
    "pending_handovers",
    "receiving_teams",
    "record_event",
    "team_exists",
    "update_episode",
    "withdraw",
    "withdraw_proposals_of",
]
