"""Repeat requests on their way to the gateways: the sending side of `repeat_requests` (`send_attempts`,
`next_send_at`, `sent_at`), which the API's repeat sender claims and marks. A claim is a 30 s lease taken with FOR
UPDATE SKIP LOCKED, so a replica that dies mid-send leaves the request to another; each claim counts as an attempt.

The requests themselves (written in the ingest transaction, settled by a repeat, expired by the rules) are the
rules' (`rules_engine.repeat_store`); what goes on the wire is `clinician_api.repeat_sender`'s. Transactions are the
caller's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import class_row

_CLAIM = (
    "WITH due AS (SELECT id FROM repeat_requests WHERE state = 'requested' AND sent_at IS NULL "
    "AND next_send_at <= now() AND due_at > now() AND send_attempts < %s "
    "ORDER BY next_send_at FOR UPDATE SKIP LOCKED LIMIT %s) "
    "UPDATE repeat_requests r SET send_attempts = r.send_attempts + 1, "
    "next_send_at = now() + interval '30 seconds' FROM due WHERE r.id = due.id "
    "RETURNING r.id, r.kind, r.measured_at, r.requested_at, r.due_at, "
    "ARRAY(SELECT g.id FROM gateways g WHERE g.patient_id = r.patient_id AND g.enabled ORDER BY g.id) AS gateway_ids"
)
_SENT = "UPDATE repeat_requests SET sent_at = now() WHERE id = ANY(%s::uuid[])"


@dataclass(frozen=True, slots=True)
class ClaimedRepeat:
    """A request leased to this replica, with the gateways of its patient to send it to."""

    id: UUID
    kind: str
    measured_at: datetime
    """When the reading that asked for a repeat was measured."""
    requested_at: datetime
    due_at: datetime
    """The repeat is awaited until then."""
    gateway_ids: list[str]
    """The patient's enabled gateways, in order."""


def claim_unsent(conn: Connection[Any], max_attempts: int, limit: int) -> list[ClaimedRepeat]:
    """Up to `limit` requests still waiting for their repeat and not yet sent, tried fewer than `max_attempts` times
    and not leased to another replica, the longest waiting first; each is leased for 30 s."""
    with conn.cursor(row_factory=class_row(ClaimedRepeat)) as cur:
        return cur.execute(_CLAIM, (max_attempts, limit)).fetchall()


def mark_sent(conn: Connection[Any], request_ids: Sequence[UUID]) -> None:
    """These requests reached at least one gateway."""
    conn.execute(_SENT, (list(request_ids),))


__all__ = ["ClaimedRepeat", "claim_unsent", "mark_sent"]
