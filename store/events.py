"""The platform's change notices: one PostgreSQL NOTIFY channel, one payload shape, written and read here only.

Ingest, the rules' timed jobs and the API announce changed alarms (and stored readings) on `varde_events`; the API's
event hub (SSE) and the journal worker listen. A notice is delivered when its transaction commits, so a listener
never sees an alarm that could still roll back. PostgreSQL caps a payload at 8000 bytes, so the ids of a large
change go out in several notices of at most `IDS_PER_NOTICE` ids each — none is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

from psycopg import Connection

CHANNEL = "varde_events"
IDS_PER_NOTICE = 100
"""37 bytes a quoted uuid: 100 ids are ~3.8 kB, well inside the 8000-byte payload limit."""

Source = Literal["ingest", "questionnaire", "missed", "escalation", "api", "rules"]


@dataclass(frozen=True, slots=True)
class ChangeNotice:
    """What one notice says: which alarms changed, and how many readings a batch stored."""

    source: str
    alarms: list[UUID] = field(default_factory=list)
    readings: int = 0

    def payload(self) -> str:
        return json.dumps({"source": self.source, "alarms": [str(a) for a in self.alarms], "readings": self.readings})

    @classmethod
    def parse(cls, payload: str) -> ChangeNotice:
        """A notice from its payload; what cannot be read names nothing (a listener must never fail on a notice)."""
        try:
            doc = json.loads(payload)
        except ValueError:
            return cls("unknown")
        if not isinstance(doc, dict):
            return cls("unknown")
        ids: list[UUID] = []
        raw_ids = doc.get("alarms")
        for raw in raw_ids if isinstance(raw_ids, list) else []:
            try:
                ids.append(UUID(str(raw)))
            except ValueError:
                continue
        readings = doc.get("readings")
        return cls(str(doc.get("source", "unknown")), ids, readings if isinstance(readings, int) else 0)


def notices(source: Source, alarm_ids: Iterable[UUID], readings: int = 0) -> Iterator[ChangeNotice]:
    """The notices announcing these changes: the ids split into chunks, the reading count on the first."""
    ids = list(dict.fromkeys(alarm_ids))
    if not ids:
        if readings:
            yield ChangeNotice(source, [], readings)
        return
    for start in range(0, len(ids), IDS_PER_NOTICE):
        yield ChangeNotice(source, ids[start : start + IDS_PER_NOTICE], readings if start == 0 else 0)


def notify_changes(conn: Connection[Any], source: Source, alarm_ids: Iterable[UUID], readings: int = 0) -> None:
    """Announce changed alarms (and stored readings) to every listener, on commit of `conn`'s transaction."""
    for notice in notices(source, alarm_ids, readings):
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, notice.payload()))


__all__ = ["CHANNEL", "IDS_PER_NOTICE", "ChangeNotice", "notices", "notify_changes"]
