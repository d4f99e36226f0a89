"""Secure messages, the one reader and writer of `message_threads`, `messages` and `reply_templates`, as typed rows.

Each function is one statement (a team reply two) in the caller's transaction; who may read or write which thread,
and what counts as the patient's side, is `clinician_api.messages`'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import class_row, scalar_row


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    id: UUID
    subject: str
    created_at: datetime
    last_message_at: datetime
    awaiting_team_since: datetime | None
    unread: int
    """Messages from the other side not read yet."""
    messages: int


@dataclass(frozen=True, slots=True)
class ThreadHead:
    id: UUID
    subject: str
    created_at: datetime
    last_message_at: datetime
    awaiting_team_since: datetime | None


@dataclass(frozen=True, slots=True)
class MessageRow:
    id: UUID
    sent_at: datetime
    author_name: str
    author_role: str
    body: str
    read_at: datetime | None
    on_behalf: bool
    """Written by a relative through a proxy."""


@dataclass(frozen=True, slots=True)
class Posted:
    id: UUID
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class AwaitingThread:
    thread_id: UUID
    patient_id: UUID
    patient_name: str
    team_id: UUID
    subject: str
    waiting_since: datetime
    waiting_messages: int
    """Messages since the oldest unanswered one, that one included."""


@dataclass(frozen=True, slots=True)
class ReplyTemplate:
    id: UUID
    title: str
    body: str


def threads_of(conn: Connection[Any], patient_id: UUID, unread_roles: Sequence[str]) -> list[ThreadSummary]:
    """The patient's threads, newest activity first (at most 200), counting unread messages by `unread_roles`."""
    with conn.cursor(row_factory=class_row(ThreadSummary)) as cur:
        return cur.execute(
            "SELECT t.id, t.subject, t.created_at, t.last_message_at, t.awaiting_team_since, "
            "count(m.id) FILTER (WHERE m.read_at IS NULL AND m.author_role = ANY(%s)) AS unread, "
            "count(m.id) AS messages "
            "FROM message_threads t LEFT JOIN messages m ON m.thread_id = t.id WHERE t.patient_id = %s "
            "GROUP BY t.id ORDER BY t.last_message_at DESC, t.id LIMIT 200",
            (list(unread_roles), patient_id),
        ).fetchall()


def thread_head(conn: Connection[Any], patient_id: UUID, thread_id: UUID) -> ThreadHead | None:
    """The thread, if it is this patient's."""
    with conn.cursor(row_factory=class_row(ThreadHead)) as cur:
        return cur.execute(
            "SELECT id, subject, created_at, last_message_at, awaiting_team_since FROM message_threads "
            "WHERE id = %s AND patient_id = %s",
            (thread_id, patient_id),
        ).fetchone()


def lock_thread(conn: Connection[Any], patient_id: UUID, thread_id: UUID) -> bool:
    """Lock the thread for a new message; False when it is not this patient's."""
    with conn.cursor(row_factory=scalar_row) as cur:
        found = cur.execute(
            "SELECT id FROM message_threads WHERE id = %s AND patient_id = %s FOR UPDATE", (thread_id, patient_id)
        ).fetchone()
    return found is not None


def mark_read(conn: Connection[Any], thread_id: UUID, author_roles: Sequence[str]) -> None:
    """The thread's unread messages by `author_roles` read now."""
    conn.execute(
        "UPDATE messages SET read_at = now() WHERE thread_id = %s AND read_at IS NULL AND author_role = ANY(%s)",
        (thread_id, list(author_roles)),
    )


def messages_of(conn: Connection[Any], thread_id: UUID) -> list[MessageRow]:
    """The thread's messages, oldest first."""
    with conn.cursor(row_factory=class_row(MessageRow)) as cur:
        return cur.execute(
            "SELECT id, sent_at, author_name, author_role, body, read_at, proxy_id IS NOT NULL AS on_behalf "
            "FROM messages WHERE thread_id = %s ORDER BY sent_at, id",
            (thread_id,),
        ).fetchall()


def insert_thread(conn: Connection[Any], patient_id: UUID, subject: str) -> UUID:
    with conn.cursor(row_factory=scalar_row) as cur:
        thread_id: UUID | None = cur.execute(
            "INSERT INTO message_threads (patient_id, subject) VALUES (%s, %s) RETURNING id", (patient_id, subject)
        ).fetchone()
    assert thread_id is not None
    return thread_id


def insert_message(
    conn: Connection[Any],
    thread_id: UUID,
    body: str,
    *,
    author_name: str,
    author_role: str,
    citizen_id: UUID | None,
    proxy_id: UUID | None,
    user_id: UUID | None,
) -> Posted:
    with conn.cursor(row_factory=class_row(Posted)) as cur:
        posted = cur.execute(
            "INSERT INTO messages (thread_id, author_citizen_id, proxy_id, author_user_id, author_name, "
            "author_role, body) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id, sent_at",
            (thread_id, citizen_id, proxy_id, user_id, author_name, author_role, body),
        ).fetchone()
    assert posted is not None
    return posted


def awaiting_team(conn: Connection[Any], thread_id: UUID, at: datetime) -> None:
    """A patient-side message at `at`: the thread waits for the team from its oldest unanswered message."""
    conn.execute(
        "UPDATE message_threads SET last_message_at = %s, awaiting_team_since = coalesce(awaiting_team_since, %s) "
        "WHERE id = %s",
        (at, at, thread_id),
    )


def answered_by_team(conn: Connection[Any], thread_id: UUID, at: datetime, patient_roles: Sequence[str]) -> None:
    """A team reply at `at`: the thread waits no more, and the patient side's messages count as read."""
    conn.execute(
        "UPDATE message_threads SET last_message_at = %s, awaiting_team_since = NULL WHERE id = %s",
        (at, thread_id),
    )
    conn.execute(
        "UPDATE messages SET read_at = coalesce(read_at, now()) WHERE thread_id = %s AND author_role = ANY(%s)",
        (thread_id, list(patient_roles)),
    )


def awaiting(
    conn: Connection[Any], visible: sql.Composable, visible_params: Mapping[str, Any], limit: int
) -> list[AwaitingThread]:
    """Threads waiting for the team, oldest first, of patients passing `visible` (the caller's duty-of-care clause
    over `p`, with named parameters)."""
    query = sql.SQL(
        "SELECT t.id AS thread_id, t.patient_id, p.display_name AS patient_name, p.team_id, t.subject, "
        "t.awaiting_team_since AS waiting_since, "
        "(SELECT count(*) FROM messages m WHERE m.thread_id = t.id AND m.sent_at >= "
        "t.awaiting_team_since) AS waiting_messages FROM message_threads t JOIN patients p ON p.id = t.patient_id "
        "WHERE t.awaiting_team_since IS NOT NULL AND {} ORDER BY t.awaiting_team_since, t.id LIMIT "
        "%(limit)s"
    ).format(visible)
    with conn.cursor(row_factory=class_row(AwaitingThread)) as cur:
        return cur.execute(query, {**visible_params, "limit": limit}).fetchall()


def templates(conn: Connection[Any], team_ids: Sequence[UUID], lang: str) -> list[ReplyTemplate]:
    """Reply templates in `lang`: these teams' own first, then those for all teams."""
    with conn.cursor(row_factory=class_row(ReplyTemplate)) as cur:
        return cur.execute(
            "SELECT id, title, body FROM reply_templates WHERE lang = %s "
            "AND (team_id IS NULL OR team_id = ANY(%s::uuid[])) "
            "ORDER BY team_id NULLS LAST, title",
            (lang, list(team_ids)),
        ).fetchall()


__all__ = [
    "AwaitingThread",
    "MessageRow",
    "Posted",
    "ReplyTemplate",
    "ThreadHead",
    "ThreadSummary",
    "answered_by_team",
    "awaiting",
    "awaiting_team",
    "insert_message",
    "insert_thread",
    "lock_thread",
    "mark_read",
    "messages_of",
    "templates",
    "thread_head",
    "threads_of",
]
