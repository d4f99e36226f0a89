"""Secure messages between a patient (or a relative with the right) and the patient's care team: threads,
messages signed with the author's name and role as shown when written, and read state per side.

A patient-side message leaves its thread "awaiting the team" from the oldest unanswered one; a team reply clears
it. The nurse queue lists awaiting threads with their age (`awaiting`). Notification texts never carry patient data:
the queue item names only that a message waits (the dashboard shows the patient by duty of care). The rows are
`store.messages`'.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from psycopg import Connection

from clinician_api.access import Principal, visible_patients_named
from store import messages as store
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


def _other_side(viewer: Side) -> tuple[str, ...]:
    return CARE_STAFF_ROLES if viewer == "patient" else CITIZEN_ROLES


def threads(conn: Connection[Any], patient_id: UUID, viewer: Side) -> list[dict[str, Any]]:
    """The patient's threads, newest activity first, with how many messages from the other side are unread."""
    return [asdict(t) for t in store.threads_of(conn, patient_id, _other_side(viewer))]


def thread(conn: Connection[Any], patient_id: UUID, thread_id: UUID, viewer: Side) -> dict[str, Any] | None:
    """One thread of this patient with its messages; marks the other side's messages read. None for a thread of
    another patient, or none at all (the caller answers 404 for both)."""
    head = store.thread_head(conn, patient_id, thread_id)
    if head is None:
        return None
    store.mark_read(conn, thread_id, _other_side(viewer))
    return {
        **asdict(head),
        "messages": [
            {**asdict(m), "from_team": m.author_role not in PATIENT_ROLES} for m in store.messages_of(conn, thread_id)
        ],
    }


def start_thread(conn: Connection[Any], patient_id: UUID, subject: str, body: str, author: Author) -> UUID:
    thread_id = store.insert_thread(conn, patient_id, subject)
    post(conn, patient_id, thread_id, body, author)
    return thread_id


def post(conn: Connection[Any], patient_id: UUID, thread_id: UUID, body: str, author: Author) -> UUID | None:
    """Add a message to a thread of this patient; None when the thread is not this patient's."""
    if not store.lock_thread(conn, patient_id, thread_id):
        return None
    posted = store.insert_message(
        conn,
        thread_id,
        body,
        author_name=author.name,
        author_role=author.role,
        citizen_id=author.citizen_id,
        proxy_id=author.proxy_id,
        user_id=author.user_id,
    )
    if author.side == "patient":
        store.awaiting_team(conn, thread_id, posted.sent_at)
    else:
        # A team reply answers the thread, and whatever the patient wrote before it counts as read.
        store.answered_by_team(conn, thread_id, posted.sent_at, PATIENT_ROLES)
    return posted.id


def awaiting(conn: Connection[Any], principal: Principal, limit: int = 200) -> list[dict[str, Any]]:
    """Threads waiting for an answer from the care team, oldest first: the message work items of the nurse queue,
    limited to patients the principal has a duty of care for."""
    clause, params = visible_patients_named(principal)
    return [asdict(t) for t in store.awaiting(conn, clause, params, limit)]


def templates(conn: Connection[Any], team_ids: tuple[UUID, ...], lang: str) -> list[dict[str, Any]]:
    return [asdict(t) for t in store.templates(conn, team_ids, lang)]


def latest_at(items: list[dict[str, Any]]) -> datetime | None:
    return max((i["last_message_at"] for i in items), default=None)
