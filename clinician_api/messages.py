"""Secure messages between a patient (or a relative with the right) and the patient's care team: threads,
messages signed with the author's name and role as shown when written, and read state per side.

A patient-side message leaves its thread "awaiting the team" from the oldest unanswered one; a team reply clears
it. The nurse queue lists awaiting threads with their age (`awaiting`). Notification texts never carry patient data:
the queue item names only that a message waits (the dashboard shows the patient by duty of care).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from psycopg import Connection, sql

from clinician_api.access import Principal, visible_patients_named
from vitals.vocabulary import CARE_STAFF_ROLES, CITIZEN_ROLES

Side = Literal["patient", "team"]
PATIENT_ROLES = CITIZEN_ROLES


@dataclass(frozen=True, slots=True)
class Author:
    name: str
    role: str
    citizen_id: UUID | None = None
    user_id: UUID | None = None
    proxy_id: UUID | None = None

    @property
    def side(self) -> Side:
        return "patient" if self.role in PATIENT_ROLES else "team"


def threads(conn: Connection[Any], patient_id: UUID, viewer: Side) -> list[dict[str, Any]]:
    """The patient's threads, newest activity first, with how many messages from the other side are unread."""
    other = CARE_STAFF_ROLES if viewer == "patient" else CITIZEN_ROLES
    rows = conn.execute(
        "SELECT t.id, t.subject, t.created_at, t.last_message_at, t.awaiting_team_since, "
        "count(m.id) FILTER (WHERE m.read_at IS NULL AND m.author_role = ANY(%s)), count(m.id) "
        "FROM message_threads t LEFT JOIN messages m ON m.thread_id = t.id WHERE t.patient_id = %s "
        "GROUP BY t.id ORDER BY t.last_message_at DESC, t.id LIMIT 200",
        (list(other), patient_id),
    ).fetchall()
    return [
        {
            "id": r[0],
            "subject": r[1],
            "created_at": r[2],
            "last_message_at": r[3],
            "awaiting_team_since": r[4],
            "unread": r[5],
            "messages": r[6],
        }
        for r in rows
    ]


def thread(conn: Connection[Any], patient_id: UUID, thread_id: UUID, viewer: Side) -> dict[str, Any] | None:
    """One thread of this patient with its messages; marks the other side's messages read. None for a thread of
    another patient, or none at all (the caller answers 404 for both)."""
    head = conn.execute(
        "SELECT id, subject, created_at, last_message_at, awaiting_team_since FROM message_threads "
        "WHERE id = %s AND patient_id = %s",
        (thread_id, patient_id),
    ).fetchone()
    if head is None:
        return None
    other = CARE_STAFF_ROLES if viewer == "patient" else CITIZEN_ROLES
    conn.execute(
        "UPDATE messages SET read_at = now() WHERE thread_id = %s AND read_at IS NULL AND author_role = ANY(%s)",
        (thread_id, list(other)),
    )
    rows = conn.execute(
        "SELECT id, sent_at, author_name, author_role, body, read_at, proxy_id IS NOT NULL FROM messages "
        "WHERE thread_id = %s ORDER BY sent_at, id",
        (thread_id,),
    ).fetchall()
    return {
        "id": head[0],
        "subject": head[1],
        "created_at": head[2],
        "last_message_at": head[3],
        "awaiting_team_since": head[4],
        "messages": [
            {
                "id": r[0],
                "sent_at": r[1],
                "author_name": r[2],
                "author_role": r[3],
                "body": r[4],
                "read_at": r[5],
                "on_behalf": bool(r[6]),
                "from_team": r[3] not in PATIENT_ROLES,
            }
            for r in rows
        ],
    }


def start_thread(conn: Connection[Any], patient_id: UUID, subject: str, body: str, author: Author) -> UUID:
    row = conn.execute(
        "INSERT INTO message_threads (patient_id, subject) VALUES (%s, %s) RETURNING id", (patient_id, subject)
    ).fetchone()
    assert row is not None
    post(conn, patient_id, row[0], body, author)
    return UUID(str(row[0]))


def post(conn: Connection[Any], patient_id: UUID, thread_id: UUID, body: str, author: Author) -> UUID | None:
    """Add a message to a thread of this patient; None when the thread is not this patient's."""
    head = conn.execute(
        "SELECT id FROM message_threads WHERE id = %s AND patient_id = %s FOR UPDATE", (thread_id, patient_id)
    ).fetchone()
    if head is None:
        return None
    row = conn.execute(
        "INSERT INTO messages (thread_id, author_citizen_id, proxy_id, author_user_id, author_name, author_role, "
        "body) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id, sent_at",
        (thread_id, author.citizen_id, author.proxy_id, author.user_id, author.name, author.role, body),
    ).fetchone()
    assert row is not None
    if author.side == "patient":
        conn.execute(
            "UPDATE message_threads SET last_message_at = %s, awaiting_team_since = coalesce(awaiting_team_since, %s) "
            "WHERE id = %s",
            (row[1], row[1], thread_id),
        )
    else:
        # A team reply answers the thread, and whatever the patient wrote before it counts as read.
        conn.execute(
            "UPDATE message_threads SET last_message_at = %s, awaiting_team_since = NULL WHERE id = %s",
            (row[1], thread_id),
        )
        conn.execute(
            "UPDATE messages SET read_at = coalesce(read_at, now()) WHERE thread_id = %s AND author_role = ANY(%s)",
            (thread_id, list(PATIENT_ROLES)),
        )
    return UUID(str(row[0]))


def awaiting(conn: Connection[Any], principal: Principal, limit: int = 200) -> list[dict[str, Any]]:
    """Threads waiting for an answer from the care team, oldest first: the message work items of the nurse queue,
    limited to patients the principal has a duty of care for."""
    clause, params = visible_patients_named(principal)
    rows = conn.execute(
        sql.SQL(
            "SELECT t.id, t.patient_id, p.display_name, p.team_id, t.subject, t.awaiting_team_since, "
            "(SELECT count(*) FROM messages m WHERE m.thread_id = t.id AND m.sent_at >= "
            "t.awaiting_team_since) FROM message_threads t JOIN patients p ON p.id = t.patient_id "
            "WHERE t.awaiting_team_since IS NOT NULL AND {} ORDER BY t.awaiting_team_since, t.id LIMIT "
            "%(limit)s"
        ).format(clause),
        {**params, "limit": limit},
    ).fetchall()
    return [
        {
            "thread_id": r[0],
            "patient_id": r[1],
            "patient_name": r[2],
            "team_id": r[3],
            "subject": r[4],
            "waiting_since": r[5],
            "waiting_messages": r[6],
        }
        for r in rows
    ]


def templates(conn: Connection[Any], team_ids: tuple[UUID, ...], lang: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, title, body FROM reply_templates WHERE lang = %s "
        "AND (team_id IS NULL OR team_id = ANY(%s::uuid[])) "
        "ORDER BY team_id NULLS LAST, title",
        (lang, list(team_ids)),
    ).fetchall()
    return [{"id": r[0], "title": r[1], "body": r[2]} for r in rows]


def latest_at(items: list[dict[str, Any]]) -> datetime | None:
    return max((i["last_message_at"] for i in items), default=None)
