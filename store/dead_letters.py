"""The dead-letter table (`rejected_messages`): a message, or one reading of it, that could not be stored, with the
reason and the payload kept as it came, so nothing refused is lost. Written once per dedupe key: a redelivered
message that is refused again adds no second row. Deciding what is refused is ingest's (`ingest_service.judge`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import astuple, dataclass
from typing import Any
from uuid import UUID

import psycopg

_INSERT = (
    "INSERT INTO rejected_messages (topic, gateway_id, reason, detail, reading_index, reading_id, "
    "reading_count, dedupe_key, payload) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A `rejected_messages` row, in column order."""

    topic: str
    gateway_id: str | None
    reason: str
    detail: str
    reading_index: int | None
    reading_id: UUID | None
    reading_count: int
    dedupe_key: bytes
    payload: bytes


def insert(conn: psycopg.Connection[Any], dead: Sequence[DeadLetter]) -> int:
    """Store the dead letters not stored before (by dedupe key); returns how many rows this call added."""
    with conn.cursor() as cur:
        cur.executemany(_INSERT, [astuple(d) for d in dead], returning=True)
        return sum(1 for _ in _results(cur))


def _results(cur: psycopg.Cursor[Any]) -> Iterator[Any]:
    while True:
        if cur.pgresult is not None and cur.rowcount > 0:
            yield from cur.fetchall()
        if not cur.nextset():
            break


__all__ = ["DeadLetter", "insert"]
