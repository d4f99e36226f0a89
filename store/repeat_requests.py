"""Repeat requests (`repeat_requests`, migration 0155): a yellow reading that asks the patient for a repeat
measurement instead of opening an alarm. The one writer and reader for the rules (`rules_engine.repeat_store`:
the waiting ones locked for the ingest transaction, what each batch decided, the link to the alarm that opened,
the requests whose time ran out); the API's sender (`clinician_api.repeat_sender`) reads the new ones to publish.

A request keeps the alarm it would have opened (`candidate`, JSON), so the alarm opened at the timeout is the one
the reading raised."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from psycopg import Connection
from psycopg.rows import class_row, scalar_row

_WAITING = (
    "SELECT id, patient_id, rule, kind, value, extract(epoch FROM measured_at)::bigint AS measured_at_s, "
    "extract(epoch FROM due_at)::bigint AS due_at_s FROM repeat_requests "
    "WHERE patient_id = ANY(%s::uuid[]) AND state = 'requested' ORDER BY patient_id, rule FOR UPDATE"
)
_DECIDE = (
    "UPDATE repeat_requests SET state = %s, decided_at = now(), repeat_reading_id = %s, repeat_value = %s WHERE id = %s"
)
_INSERT = (
    "INSERT INTO repeat_requests (patient_id, rule, kind, reading_id, value, measured_at, due_at, state, "
    "decided_at, repeat_reading_id, repeat_value, candidate) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
    "CASE WHEN %s = 'requested' THEN NULL ELSE now() END, %s, %s, %s) "
    # Two workers asking for the same (patient, rule) at once: the first request stands for both.
    "ON CONFLICT (patient_id, rule) WHERE state = 'requested' DO NOTHING"
)
_LINK_DECIDED = (
    "UPDATE repeat_requests r SET alarm_id = a.id FROM alarms a "
    "WHERE r.patient_id = ANY(%s::uuid[]) AND r.state IN ('confirmed', 'expired') AND r.alarm_id IS NULL "
    "AND r.decided_at = now() AND a.patient_id = r.patient_id AND a.rule = r.rule AND a.state <> 'resolved' "
    "RETURNING a.id AS alarm_id, r.state, r.id AS request_id, r.value, r.repeat_value, r.measured_at, r.due_at"
)
_LINK = (
    "UPDATE repeat_requests r SET alarm_id = a.id FROM alarms a WHERE r.id = ANY(%s::uuid[]) "
    "AND a.patient_id = r.patient_id AND a.rule = r.rule AND a.state <> 'resolved' "
    "RETURNING a.id AS alarm_id, r.state, r.id AS request_id, r.value, r.repeat_value, r.measured_at, r.due_at"
)
_CANDIDATES = (
    "SELECT id, candidate, value, (extract(epoch FROM due_at - measured_at) / 60)::int AS timeout_minutes "
    "FROM repeat_requests WHERE id = ANY(%s::uuid[])"
)
_EXPIRE_DUE = (
    "UPDATE repeat_requests SET state = 'expired', decided_at = now() "
    "WHERE state = 'requested' AND due_at <= COALESCE(%s, now()) RETURNING id"
)


@dataclass(frozen=True, slots=True)
class Waiting:
    """A request still waiting for its repeat (times in Unix seconds)."""

    id: UUID
    patient_id: UUID
    rule: str
    kind: str
    value: float
    measured_at_s: int
    due_at_s: int


class NewRequest(NamedTuple):
    """A batch's decision on a reading that asked for a repeat: `state` 'requested' waits, any other state is decided
    at once (a repeat in the same batch)."""

    patient_id: UUID
    rule: str
    kind: str | None
    reading_id: UUID | None
    value: float | None
    measured_at: datetime
    due_at: datetime
    state: str
    repeat_reading_id: UUID | None
    repeat_value: float | None
    candidate: str
    """The alarm it would open, as JSON (`rules_engine.repeat_store.upsert_doc`)."""


@dataclass(frozen=True, slots=True)
class Linked:
    """A decided request linked to the alarm now open for its rule."""

    alarm_id: UUID
    state: str
    request_id: UUID
    value: float
    repeat_value: float | None
    measured_at: datetime
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Expired:
    """A request whose time ran out: the alarm it keeps (`candidate`, JSON as stored) and what it waited for."""

    id: UUID
    candidate: dict[str, Any]
    value: float
    timeout_minutes: int


def waiting(conn: Connection[Any], patient_ids: Sequence[UUID]) -> list[Waiting]:
    """These patients' waiting requests, locked until the transaction ends (the timeout job waits)."""
    with conn.cursor(row_factory=class_row(Waiting)) as cur:
        return cur.execute(_WAITING, (list(patient_ids),)).fetchall()


def decide(
    conn: Connection[Any], request_id: UUID, state: str, repeat_reading_id: UUID | None, repeat_value: float | None
) -> None:
    """A waiting request decided now ('confirmed', 'cleared', 'expired', …)."""
    conn.execute(_DECIDE, (state, repeat_reading_id, repeat_value, request_id))


def insert(conn: Connection[Any], requests: Iterable[NewRequest]) -> None:
    """Store the batch's new requests and decisions; a (patient, rule) already waiting keeps its request."""
    rows = [
        (
            r.patient_id,
            r.rule,
            r.kind,
            r.reading_id,
            r.value,
            r.measured_at,
            r.due_at,
            r.state,
            r.state,
            r.repeat_reading_id,
            r.repeat_value,
            r.candidate,
        )
        for r in requests
    ]
    if rows:
        with conn.cursor() as cur:
            cur.executemany(_INSERT, rows)


def link_decided(conn: Connection[Any], patient_ids: Sequence[UUID]) -> list[Linked]:
    """Link the requests of these patients decided in this transaction (confirmed, expired) to the alarm open for
    their rule."""
    with conn.cursor(row_factory=class_row(Linked)) as cur:
        return cur.execute(_LINK_DECIDED, (list(patient_ids),)).fetchall()


def link(conn: Connection[Any], request_ids: Sequence[UUID]) -> list[Linked]:
    """Link these requests to the alarm open for their rule."""
    with conn.cursor(row_factory=class_row(Linked)) as cur:
        return cur.execute(_LINK, (list(request_ids),)).fetchall()


def expired(conn: Connection[Any], request_ids: Sequence[UUID]) -> list[Expired]:
    """These requests' kept alarms."""
    with conn.cursor(row_factory=class_row(Expired)) as cur:
        return cur.execute(_CANDIDATES, (list(request_ids),)).fetchall()


def expire_due(conn: Connection[Any], now: datetime | None) -> list[UUID]:
    """Mark expired the waiting requests due by `now` (None: the database's now); returns their ids."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute(_EXPIRE_DUE, (now,)).fetchall()


__all__ = [
    "Expired",
    "Linked",
    "NewRequest",
    "Waiting",
    "decide",
    "expire_due",
    "expired",
    "insert",
    "link",
    "link_decided",
    "waiting",
]
