"""The durable outbox: every decoded reading is committed here before anything is published.

SQLite in WAL mode with `synchronous=FULL`: when `put` returns, the readings survive a power cut. Rows leave only
through `ack`, which the publisher calls after the broker's PUBACK for the envelope that carried them. Replay is in
insertion order (`seq`). Each row holds the reading's wire JSON, so replay never re-validates or re-serialises.

Bounds and the `full` policy:
- rows older than `max_age` (time queued) are expired oldest-first, with a logged warning and a running count;
- at `max_rows` new readings are *refused*, never silently dropped: `put` reports them as refused, the agent logs
  an error and the gateway status says `outbox_full`. Refusing keeps the device handler able to leave the
  record in the device's own memory (most BLE health devices store records), while dropping the oldest would
  destroy readings that exist nowhere else.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vitals import Reading

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    reading_id TEXT    NOT NULL UNIQUE,
    body       BLOB    NOT NULL,
    queued_at  REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_queued_at ON outbox (queued_at);
"""


@dataclass(frozen=True, slots=True)
class PutResult:
    added: int
    duplicates: int
    """Readings whose id was already in the outbox: a re-put is a no-op."""
    refused: int
    """Readings not stored because the outbox is full."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    body: bytes
    """The reading as wire JSON, ready to be placed in an envelope."""


@dataclass(frozen=True, slots=True)
class Batch:
    rows: list[OutboxRow]
    more: bool
    """Rows beyond this batch were already waiting (a backlog exists)."""


class Outbox:
    """A bounded, durable FIFO of readings awaiting the broker's acknowledgement. Thread-safe."""

    def __init__(self, path: Path, *, max_rows: int = 1_000_000, max_age_s: float = 30 * 86400.0) -> None:
        self.path = path
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.expired_total = 0
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._depth: int = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def depth(self) -> int:
        """Readings waiting for an acknowledgement (cached; exact under the outbox's own writes)."""
        return self._depth

    @property
    def full(self) -> bool:
        return self._depth >= self.max_rows

    def put(self, readings: Sequence[Reading], *, now: float | None = None) -> PutResult:
        """Commit readings durably; returns once they are on disk. Known ids are skipped."""
        if not readings:
            return PutResult(0, 0, 0)
        now = time.time() if now is None else now
        rows = [(str(r.id), r.model_dump_json().encode(), now) for r in readings]
        return self.put_raw(rows)

    def put_raw(self, rows: Sequence[tuple[str, bytes, float]]) -> PutResult:
        """Commit `(reading_id, wire_json, queued_at)` rows; for callers that already hold the wire JSON."""
        with self._lock:
            room = self.max_rows - self._depth
            if room < len(rows):
                self._expire_locked(time.time())
                room = self.max_rows - self._depth
            accepted = rows[: max(room, 0)]
            refused = len(rows) - len(accepted)
            added = 0
            if accepted:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    before = self._db.total_changes
                    self._db.executemany(
                        "INSERT OR IGNORE INTO outbox (reading_id, body, queued_at) VALUES (?, ?, ?)", accepted
                    )
                    added = self._db.total_changes - before
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._depth += added
        return PutResult(added=added, duplicates=len(accepted) - added, refused=refused)

    def fetch(self, after_seq: int, limit: int, max_bytes: int | None = None) -> Batch:
        """The oldest rows with `seq > after_seq`: at most `limit` rows and, beyond the first, `max_bytes`."""
        with self._lock:
            raw = self._db.execute(
                "SELECT seq, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit + 1)
            ).fetchall()
        rows: list[OutboxRow] = []
        size = 0
        for seq, body in raw[:limit]:
            size += len(body) + 1
            if rows and max_bytes is not None and size > max_bytes:
                return Batch(rows, more=True)
            rows.append(OutboxRow(seq, body))
        return Batch(rows, more=len(raw) > limit)

    def fetch_range(self, first_seq: int, last_seq: int) -> list[OutboxRow]:
        with self._lock:
            cur = self._db.execute(
                "SELECT seq, body FROM outbox WHERE seq BETWEEN ? AND ? ORDER BY seq", (first_seq, last_seq)
            )
            return [OutboxRow(seq, body) for seq, body in cur.fetchall()]

    def ack(self, ranges: Iterable[tuple[int, int]]) -> int:
        """Remove the rows of acknowledged envelopes, given as inclusive `(first_seq, last_seq)` ranges.

        An envelope carries every row of its range: rows are fetched in `seq` order and new rows always get a
        higher `seq`, so a range never covers a row that was not in the envelope.
        """
        spans = list(ranges)
        if not spans:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                before = self._db.total_changes
                self._db.executemany("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", spans)
                removed = self._db.total_changes - before
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._depth -= removed
        return removed

    def expire(self, now: float | None = None) -> int:
        """Remove rows queued longer than `max_age_s` ago; returns how many (logged as a warning)."""
        with self._lock:
            return self._expire_locked(time.time() if now is None else now)

    def _expire_locked(self, now: float) -> int:
        cutoff = now - self.max_age_s
        self._db.execute("BEGIN IMMEDIATE")
        try:
            before = self._db.total_changes
            self._db.execute("DELETE FROM outbox WHERE queued_at < ?", (cutoff,))
            removed = self._db.total_changes - before
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        if removed:
            self._depth -= removed
            self.expired_total += removed
            log.warning("outbox_expired removed=%d max_age_s=%.0f depth=%d", removed, self.max_age_s, self._depth)
        return removed
