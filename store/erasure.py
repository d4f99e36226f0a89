"""Erasing whole patients: every row that hangs on them — messages and their threads, questionnaire answers,
proxies, reservations, readings, repeat requests, worklist assignments, alarms with their record documents,
gateways — then the patients, in an order the foreign keys allow, in the caller's transaction. Like
`store.retention`, it deletes across aggregates; each aggregate's own module stays the writer of everything else.
Used by the demo to forget its earlier patients (`varde.demo`); where a table refuses (a reservation's append-only
history) the statement fails and the caller's transaction rolls back whole."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import Connection

_ERASE = (
    "DELETE FROM messages m USING message_threads t WHERE m.thread_id = t.id AND t.patient_id = ANY(%s)",
    "DELETE FROM message_threads WHERE patient_id = ANY(%s)",
    "DELETE FROM questionnaire_responses WHERE patient_id = ANY(%s)",
    "DELETE FROM proxies WHERE patient_id = ANY(%s)",
    "DELETE FROM patient_reservations WHERE patient_id = ANY(%s)",
    "DELETE FROM readings WHERE patient_id = ANY(%s)",
    "DELETE FROM repeat_requests WHERE patient_id = ANY(%s)",
    "DELETE FROM work_assignments WHERE patient_id = ANY(%s)",
    "DELETE FROM journal_outbox o USING alarms a WHERE o.alarm_id = a.id AND a.patient_id = ANY(%s)",
    "DELETE FROM alarms WHERE patient_id = ANY(%s)",
    "DELETE FROM gateways WHERE patient_id = ANY(%s)",
    "DELETE FROM patients WHERE id = ANY(%s)",
)


def erase_patients(conn: Connection[Any], patient_ids: Sequence[UUID]) -> None:
    """Delete the patients and everything that hangs on them (raises `psycopg.Error` where a table refuses)."""
    for statement in _ERASE:
        conn.execute(statement, (list(patient_ids),))


__all__ = ["erase_patients"]
