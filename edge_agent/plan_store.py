"""The last self-management plan received on the gateway's retained `plan` topic, kept on disk.

The patient's advice must be available while the gateway is offline, so the payload is stored as received (bytes
plus receipt time). Judging the plan's content belongs to the plan advice module; an empty retained message (the
cloud clearing the topic) never erases the last good plan.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plan (
    slot        INTEGER PRIMARY KEY CHECK (slot = 1),
    topic       TEXT NOT NULL,
    payload     BLOB NOT NULL,
    received_at TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class StoredPlan:
    topic: str
    payload: bytes
    received_at: datetime


class PlanStore:
    """One row: the newest non-empty plan payload. Thread-safe."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def save(self, topic: str, payload: bytes | bytearray, received_at: datetime | None = None) -> bool:
        """Keep `payload` as the current plan; returns False (and keeps the old one) for an empty payload."""
        if not payload:
            return False
        when = (received_at or datetime.now(UTC)).isoformat()
        with self._lock:
            self._db.execute(
                "INSERT INTO plan (slot, topic, payload, received_at) VALUES (1, ?, ?, ?) "
                "ON CONFLICT (slot) DO UPDATE SET topic = excluded.topic, payload = excluded.payload, "
                "received_at = excluded.received_at",
                (topic, bytes(payload), when),
            )
        return True

    def latest(self) -> StoredPlan | None:
        with self._lock:
            row = self._db.execute("SELECT topic, payload, received_at FROM plan WHERE slot = 1").fetchone()
        if row is None:
            return None
        return StoredPlan(row[0], bytes(row[1]), datetime.fromisoformat(row[2]))

    def close(self) -> None:
        with self._lock:
            self._db.close()
