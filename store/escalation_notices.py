"""Escalation notices as the API's notifier sends them, the one writer of `escalation_notices` after the trigger
that queues them (a notice per escalated alarm and active target of the patient's team, written in the transaction
that escalates): claiming the due ones with FOR UPDATE SKIP LOCKED, each claim an attempt that pushes `next_at` back
(30 s, doubling), and recording whether the send went out. The notice's text and the channels are
`clinician_api.escalation`'s; the queue reads the notices in `store.alarm_queue`, and touching the alarm so the
queue shows who was notified is `store.alarms.touch_for_escalation_notice`. Transactions are the caller's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg.rows import class_row

_CLAIM = (
    "WITH due AS (SELECT id FROM escalation_notices WHERE state = 'pending' AND next_at <= now() "
    "ORDER BY id FOR UPDATE SKIP LOCKED LIMIT %s) "
    "UPDATE escalation_notices n SET attempts = n.attempts + 1, "
    "next_at = now() + make_interval(secs => 30 * power(2, n.attempts)) FROM due, alarms a, patients p, "
    "care_teams c, escalation_targets t WHERE n.id = due.id AND a.id = n.alarm_id AND p.id = a.patient_id "
    "AND c.id = p.team_id AND t.id = n.target_id "
    "RETURNING n.id, upper(left(a.id::text, 8)) AS alarm_ref, a.severity, c.name AS team, "
    "(extract(epoch FROM now() - a.opened_at) / 60)::int AS waited_minutes, t.channel, t.address, t.label"
)
_FAILED = (
    "UPDATE escalation_notices SET error = %s, "
    "state = CASE WHEN attempts >= %s THEN 'failed' ELSE 'pending' END WHERE id = %s"
)
_SENT = "UPDATE escalation_notices SET state = 'sent', sent_at = now(), error = NULL WHERE id = %s"


@dataclass(frozen=True, slots=True)
class ClaimedNotice:
    """A due notice with what its text names (never the patient) and where it goes."""

    id: int
    alarm_ref: str
    """The first eight hex digits of the alarm's id, upper case."""
    severity: str
    team: str
    """The name of the patient's care team."""
    waited_minutes: int
    """Minutes since the alarm opened."""
    channel: str
    """'sms', 'email' or 'webhook'."""
    address: str
    label: str


def claim_due(conn: Connection[Any], limit: int) -> list[ClaimedNotice]:
    """Up to `limit` pending notices whose time has come, oldest first, each counted as an attempt with its next
    try pushed back, so another replica does not take it; rows another replica holds are skipped."""
    with conn.cursor(row_factory=class_row(ClaimedNotice)) as cur:
        return cur.execute(_CLAIM, (limit,)).fetchall()


def mark_failed(conn: Connection[Any], notice_id: int, error: str, max_attempts: int) -> None:
    """The send failed with `error`: the notice stays pending for its next try, or fails for good once it has had
    `max_attempts`."""
    conn.execute(_FAILED, (error, max_attempts, notice_id))


def mark_sent(conn: Connection[Any], notice_id: int) -> None:
    conn.execute(_SENT, (notice_id,))


__all__ = ["ClaimedNotice", "claim_due", "mark_failed", "mark_sent"]
