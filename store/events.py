"""The platform's PostgreSQL NOTIFY channels, named here only, and its change notices: one channel, one payload
shape, written and read here only.

Ingest, the rules' timed jobs and the API announce changed alarms (and stored readings) on `Channel.CHANGES`
(`varde_events`); the API's event hub (SSE) and the journal worker listen. The other channels only wake a worker
(their payload, where there is one, is informative): every sender and listener names them through `Channel`, and a
test checks the migrations' notifying triggers against it. A notice is delivered when its transaction commits, so
a listener never sees an alarm that could still roll back. PostgreSQL caps a payload at 8000 bytes, so the ids of a
large change go out in several notices of at most `IDS_PER_NOTICE` ids each — none is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from psycopg import AsyncConnection, Connection, sql


class Channel(StrEnum):
    """Every NOTIFY channel of the platform."""

    CHANGES = "varde_events"
    """Changed alarms and stored readings: the payload is a `ChangeNotice`."""
    JOURNAL = "varde_journal"
    """A journal outbox entry was written: wakes the journal workers."""
    REPEATS = "varde_repeats"
    """A repeat measurement was requested: wakes the API's repeat sender."""
    SCHEDULES = "varde_schedules"
    """A measurement schedule changed (payload `{"revision": n}`): wakes the API's plan courier."""
    ESCALATIONS = "varde_escalations"
    """An escalation notice was queued (by a trigger of migration 0100; payload its id): wakes the notifier."""
    GATEWAYS = "varde_gateways"
    """A gateway row changed (by a trigger of migration 0020; payload its id): ingest reloads its registry."""


CHANNEL = Channel.CHANGES
IDS_PER_NOTICE = 100
"""37 bytes a quoted uuid: 100 ids are ~3.8 kB, well inside the 8000-byte payload limit."""

Source = Literal["ingest", "questionnaire", "missed", "escalation", "api", "rules", "handover"]


@dataclass(frozen=True, slots=True)
class ChangeNotice:
    """What one notice says: which alarms changed, and how many readings a batch stored."""

    source: str
    alarms: list[UUID] = field(default_factory=list)
    readings: int = 0
    handed_over_from: list[UUID] = field(default_factory=list)
    """Teams whose patients' alarms moved to another team: their live queues must reload."""

    def payload(self) -> str:
        doc: dict[str, Any] = {
            "source": self.source,
            "alarms": [str(a) for a in self.alarms],
            "readings": self.readings,
        }
        if self.handed_over_from:
            doc["handed_over_from"] = [str(t) for t in self.handed_over_from]
        return json.dumps(doc)

    @classmethod
    def parse(cls, payload: str) -> ChangeNotice:
        """A notice from its payload; what cannot be read names nothing (a listener must never fail on a notice)."""
        try:
            doc = json.loads(payload)
        except ValueError:
            return cls("unknown")
        if not isinstance(doc, dict):
            return cls("unknown")
        readings = doc.get("readings")
        return cls(
            str(doc.get("source", "unknown")),
            _uuids(doc.get("alarms")),
            readings if isinstance(readings, int) else 0,
            _uuids(doc.get("handed_over_from")),
        )


def _uuids(raw: Any) -> list[UUID]:
    out: list[UUID] = []
    for item in raw if isinstance(raw, list) else []:
        try:
            out.append(UUID(str(item)))
        except ValueError:
            continue
    return out


def notices(
    source: Source, alarm_ids: Iterable[UUID], readings: int = 0, handed_over_from: Iterable[UUID] = ()
) -> Iterator[ChangeNotice]:
    """The notices announcing these changes: the ids split into chunks, the reading count and the teams handed
    over from on the first."""
    ids = list(dict.fromkeys(alarm_ids))
    former = list(dict.fromkeys(handed_over_from))
    if not ids:
        if readings or former:
            yield ChangeNotice(source, [], readings, former)
        return
    for start in range(0, len(ids), IDS_PER_NOTICE):
        first = start == 0
        yield ChangeNotice(
            source, ids[start : start + IDS_PER_NOTICE], readings if first else 0, former if first else []
        )


def notify_changes(
    conn: Connection[Any],
    source: Source,
    alarm_ids: Iterable[UUID],
    readings: int = 0,
    handed_over_from: Iterable[UUID] = (),
) -> None:
    """Announce changed alarms (and stored readings) to every listener, on commit of `conn`'s transaction."""
    for notice in notices(source, alarm_ids, readings, handed_over_from):
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL.value, notice.payload()))


def wake(conn: Connection[Any], channel: Channel, payload: str = "") -> None:
    """Wake the listeners of `channel` when `conn`'s transaction commits."""
    conn.execute("SELECT pg_notify(%s, %s)", (channel.value, payload))


def listen_statement(channel: Channel) -> sql.Composed:
    """`LISTEN` on a channel, for a sync or an async connection."""
    return sql.SQL("LISTEN {}").format(sql.Identifier(channel.value))


def listen(conn: Connection[Any], *channels: Channel) -> None:
    for channel in channels:
        conn.execute(listen_statement(channel))


async def listen_async(conn: AsyncConnection[Any], *channels: Channel) -> None:
    for channel in channels:
        await conn.execute(listen_statement(channel))


__all__ = [
    "CHANNEL",
    "IDS_PER_NOTICE",
    "ChangeNotice",
    "Channel",
    "listen",
    "listen_async",
    "listen_statement",
    "notices",
    "notify_changes",
    "wake",
]
