"""What the patient's screen must remember across a restart: the latest measurement, when each kind was measured
in the last days, the latest answer of each questionnaire, the latest receipt and the requests to measure again.
SQLite beside the outbox.

The journal is for the screen only; the readings and responses themselves travel through the durable outboxes.
Measurement times are kept to the minute, so a 1 Hz oximeter adds at most one row a minute.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vitals import Kind, QuestionnaireResponse, Receipt, RepeatRequest
from vitals.plan import Zone
from vitals.receipt import ReceiptEvent

KEEP = timedelta(days=8)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS measured (
    kind        TEXT NOT NULL,
    minute      TEXT NOT NULL,
    measured_at TEXT NOT NULL,
    PRIMARY KEY (kind, minute)
);
CREATE TABLE IF NOT EXISTS answered (
    questionnaire TEXT PRIMARY KEY,
    response_id   TEXT NOT NULL,
    answered_at   TEXT NOT NULL,
    score         INTEGER NOT NULL,
    zone          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS latest (
    slot  TEXT PRIMARY KEY,
    body  TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measurement act as the screen shows it: its parts (kind, value) and when it was taken."""

    measured_at: datetime
    parts: tuple[tuple[Kind, float], ...]


@dataclass(frozen=True, slots=True)
class LastAnswer:
    response_id: str
    answered_at: datetime
    score: int
    zone: Zone


class PatientJournal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._minutes: set[tuple[str, str]] = set()
        self.prune()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- measurements --------------------------------------------------------------------------------------

    def record_measurement(self, measurement: Measurement) -> None:
        body = json.dumps(
            {
                "measured_at": measurement.measured_at.isoformat(),
                "parts": [[kind.value, value] for kind, value in measurement.parts],
            }
        )
        with self._lock:
            self._db.execute(
                "INSERT INTO latest (slot, body) VALUES ('measurement', ?) "
                "ON CONFLICT (slot) DO UPDATE SET body = excluded.body",
                (body,),
            )

    def record_times(self, times: Sequence[tuple[Kind, datetime]]) -> None:
        """Note that `kind` was measured at a time (one row per kind and minute)."""
        rows = []
        for kind, at in times:
            minute = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
            if (kind.value, minute) not in self._minutes:
                self._minutes.add((kind.value, minute))
                rows.append((kind.value, minute, at.isoformat()))
        if rows:
            with self._lock:
                self._db.executemany(
                    "INSERT OR IGNORE INTO measured (kind, minute, measured_at) VALUES (?, ?, ?)", rows
                )

    def latest_measurement(self) -> Measurement | None:
        doc = self._latest("measurement")
        if doc is None:
            return None
        parts = tuple((Kind(kind), float(value)) for kind, value in doc["parts"])
        return Measurement(datetime.fromisoformat(doc["measured_at"]), parts)

    def measured_since(self, since: datetime) -> dict[Kind, list[datetime]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, measured_at FROM measured WHERE minute >= ? ORDER BY measured_at",
                (since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"),),
            ).fetchall()
        out: dict[Kind, list[datetime]] = {}
        for kind, at in rows:
            if kind in Kind.__members__.values():
                out.setdefault(Kind(kind), []).append(datetime.fromisoformat(at))
        return out

    # ---- questionnaires and receipts -----------------------------------------------------------------------

    def record_answer(self, response: QuestionnaireResponse) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO answered (questionnaire, response_id, answered_at, score, zone) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (questionnaire) DO UPDATE SET response_id = excluded.response_id, "
                "answered_at = excluded.answered_at, score = excluded.score, zone = excluded.zone",
                (
                    response.questionnaire,
                    str(response.id),
                    response.answered_at.isoformat(),
                    response.score,
                    response.zone,
                ),
            )

    def last_answers(self) -> dict[str, LastAnswer]:
        with self._lock:
            rows = self._db.execute(
                "SELECT questionnaire, response_id, answered_at, score, zone FROM answered"
            ).fetchall()
        return {q: LastAnswer(rid, datetime.fromisoformat(at), score, zone) for q, rid, at, score, zone in rows}

    def record_receipt(self, receipt: Receipt) -> None:
        """Keep the latest receipt of its kind (readings seen, a message answered)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO latest (slot, body) VALUES (?, ?) ON CONFLICT (slot) DO UPDATE SET body = excluded.body",
                (_receipt_slot(receipt.event), receipt.to_json().decode()),
            )

    def last_receipt(self, event: ReceiptEvent = "readings_seen") -> Receipt | None:
        doc = self._latest(_receipt_slot(event))
        return Receipt.model_validate(doc) if doc is not None else None

    def record_repeat(self, request: RepeatRequest) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO latest (slot, body) VALUES (?, ?) ON CONFLICT (slot) DO UPDATE SET body = excluded.body",
                (f"repeat:{request.kind.value}", request.to_json().decode()),
            )

    def drop_repeats(self, kinds: Sequence[Kind]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM latest WHERE slot = ?", [(f"repeat:{k.value}",) for k in kinds])

    def repeat_requests(self) -> dict[Kind, RepeatRequest]:
        """The cloud's requests to measure again, newest per kind."""
        with self._lock:
            rows = self._db.execute("SELECT body FROM latest WHERE slot LIKE 'repeat:%'").fetchall()
        requests = [RepeatRequest.model_validate_json(row[0]) for row in rows]
        return {r.kind: r for r in requests}

    # ---- upkeep --------------------------------------------------------------------------------------------

    def prune(self, now: datetime | None = None) -> None:
        cutoff = ((now or datetime.now(UTC)) - KEEP).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        with self._lock:
            self._db.execute("DELETE FROM measured WHERE minute < ?", (cutoff,))
        self._minutes = {m for m in self._minutes if m[1] >= cutoff}

    def _latest(self, slot: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT body FROM latest WHERE slot = ?", (slot,)).fetchone()
        return json.loads(row[0]) if row is not None else None


def _receipt_slot(event: ReceiptEvent) -> str:
    return "receipt" if event == "readings_seen" else f"receipt:{event}"
