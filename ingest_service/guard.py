"""The crash-loop guard: a message that kills the worker process outright (a fault no `except` catches — the process
killed for memory, a crash inside a C extension) must not go on to kill every worker it is redelivered to.

Only messages that come back are watched: the broker sets the MQTT DUP flag on a message it delivered before and
never got an acknowledgement for. Such messages are marked in `ingest_suspects` before they are processed and
unmarked once handled (stored or dead-lettered). A returning message that is still marked was in the hands of a
worker that died; it is processed again on its own, marked `solo`. One that returns still marked `solo` killed a
worker by itself: it is dead-lettered as `poison_message`, unparsed, and acknowledged; its mark stays, so a later
redelivery is recognised at once. So one message can stop a worker at most three times, never ingest for good.
Normal traffic (no DUP flag) costs nothing here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from psycopg import Connection


def message_key(topic: str, payload: bytes) -> bytes:
    """A message's identity across redeliveries: sha256 of topic and payload."""
    digest = hashlib.sha256(topic.encode())
    digest.update(b"\0")
    digest.update(payload)
    return digest.digest()


def marks(conn: Connection[Any], keys: Sequence[bytes]) -> dict[bytes, bool]:
    """The marked messages among `keys`, each with whether it was last processed alone."""
    rows = conn.execute("SELECT key, solo FROM ingest_suspects WHERE key = ANY(%s)", (list(keys),)).fetchall()
    return {bytes(r[0]): bool(r[1]) for r in rows}


def mark(conn: Connection[Any], keys: Sequence[bytes], *, solo: bool, worker_id: str) -> None:
    """Committed before processing starts. Asynchronous commit is enough: the guard protects against this worker
    dying, not against the database server losing its last transactions."""
    with conn.transaction():
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute(
            "INSERT INTO ingest_suspects (key, solo, worker_id) SELECT k, %s, %s FROM unnest(%s::bytea[]) AS k "
            "ON CONFLICT (key) DO UPDATE SET solo = EXCLUDED.solo, worker_id = EXCLUDED.worker_id, "
            "marked_at = now(), deaths = ingest_suspects.deaths + 1",
            (solo, worker_id, list(keys)),
        )


def clear(conn: Connection[Any], keys: Sequence[bytes]) -> None:
    with conn.transaction():
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute("DELETE FROM ingest_suspects WHERE key = ANY(%s)", (list(keys),))
