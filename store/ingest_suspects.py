"""The crash-loop guard's marks (`ingest_suspects`): redelivered messages being processed, and whether each was last
processed alone. What the marks mean, and when they are set, is `ingest_service.guard`'s. Written with asynchronous
commit: the guard protects against a worker dying, not against the database server losing its last transactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg.rows import class_row

_MARKS = "SELECT key, solo FROM ingest_suspects WHERE key = ANY(%s)"
_MARK = (
    "INSERT INTO ingest_suspects (key, solo, worker_id) SELECT k, %s, %s FROM unnest(%s::bytea[]) AS k "
    "ON CONFLICT (key) DO UPDATE SET solo = EXCLUDED.solo, worker_id = EXCLUDED.worker_id, "
    "marked_at = now(), deaths = ingest_suspects.deaths + 1"
)
_CLEAR = "DELETE FROM ingest_suspects WHERE key = ANY(%s)"
_ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"


@dataclass(frozen=True, slots=True)
class _Mark:
    key: bytes
    solo: bool


def marks(conn: Connection[Any], keys: Sequence[bytes]) -> dict[bytes, bool]:
    """The marked messages among `keys`, each with whether it was last processed alone."""
    with conn.cursor(row_factory=class_row(_Mark)) as cur:
        return {bytes(m.key): bool(m.solo) for m in cur.execute(_MARKS, (list(keys),))}


def mark(conn: Connection[Any], keys: Sequence[bytes], *, solo: bool, worker_id: str) -> None:
    """Committed before processing starts; marking a key again counts one more death."""
    with conn.transaction():
        conn.execute(_ASYNC_COMMIT)
        conn.execute(_MARK, (solo, worker_id, list(keys)))


def clear(conn: Connection[Any], keys: Sequence[bytes]) -> None:
    with conn.transaction():
        conn.execute(_ASYNC_COMMIT)
        conn.execute(_CLEAR, (list(keys),))


__all__ = ["clear", "mark", "marks"]
