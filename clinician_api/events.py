"""Live alarm changes for the dashboard: one LISTEN connection per API process, fanned out to SSE subscribers.

Ingest, the scheduler and the API itself announce changed alarms on `store.events.CHANNEL`. The hub collects
notifications for a moment, loads the changed alarms in one query and hands each subscriber the ones its user may
see (care teams, or an unexpired emergency access). A subscriber that cannot keep up is told to resynchronise
instead of holding the others back, and so is one of a team that just handed its patient's alarms over (a
notification with `handed_over_from`: the alarms left that team's queue, which a change event cannot say).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg

from clinician_api import queue
from clinician_api.access import Principal
from clinician_api.metrics import SSE_CLIENTS
from clinician_api.schemas import Alarm
from store.alarm_queue import QueueRow, by_ids_async
from store.events import CHANNEL, ChangeNotice, listen_async

log = logging.getLogger("varde.api.events")

_COALESCE_SECONDS = 0.05


class Resync:
    """Put in a subscriber's queue: the client should reload its queue."""


RESYNC = Resync()


@dataclass(eq=False)
class Subscriber:
    principal: Principal
    emergency: dict[UUID, datetime]
    lang: str = "nb"
    queue: asyncio.Queue[Alarm | Resync | None] = field(default_factory=lambda: asyncio.Queue(maxsize=256))
    overflowed: bool = False

    def may_see(self, alarm: Alarm) -> bool:
        if alarm.team_id in self.principal.team_ids:
            return True
        until = self.emergency.get(alarm.patient_id)
        return until is not None and until > datetime.now(UTC)


class AlarmEventHub:
    def __init__(self, database_url: Callable[[], str]) -> None:
        self._url = database_url
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._sent: OrderedDict[tuple[UUID, datetime, UUID], None] = OrderedDict()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def subscribe(self, subscriber: Subscriber, *, wait: float = 5.0) -> Subscriber:
        """Register a subscriber; returns once the LISTEN is in place, so no change after this call is missed."""
        if subscriber not in self._subscribers:
            self._subscribers.add(subscriber)
            SSE_CLIENTS.inc()
        if self._task is None or self._task.done():
            self._listening.clear()
            self._task = asyncio.create_task(self._run(), name="varde-alarm-events")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), wait)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.discard(subscriber)
            SSE_CLIENTS.dec()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url(), autocommit=True, application_name="varde-api-events"
                ) as conn:
                    await listen_async(conn, CHANNEL)
                    self._listening.set()
                    backoff = 0.5
                    await self._listen(conn)
            except asyncio.CancelledError:
                raise
            except psycopg.Error as exc:
                self._listening.clear()
                log.warning("event_listener_lost error=%s retry_in=%.1f", type(exc).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            payloads = [n.payload async for n in conn.notifies(timeout=5.0, stop_after=1)]
            if not payloads:
                continue
            payloads += [n.payload async for n in conn.notifies(timeout=_COALESCE_SECONDS)]
            ids: set[UUID] = set()
            former: set[UUID] = set()
            for payload in payloads:
                notice = ChangeNotice.parse(payload)
                ids.update(notice.alarms)
                former.update(notice.handed_over_from)
            rows = await by_ids_async(conn, sorted(ids, key=str))
            self._fan_out(rows)
            self._resync_teams(former)

    def _resync_teams(self, teams: set[UUID]) -> None:
        for sub in list(self._subscribers):
            if teams & set(sub.principal.team_ids):
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.put_nowait(RESYNC)

    def _fan_out(self, rows: list[QueueRow]) -> None:
        for row in rows:
            # The team is part of the key: an alarm handed over to another team is news to that team's streams.
            key = (row.id, row.updated_at, row.team_id)
            if key in self._sent:
                continue
            self._sent[key] = None
            if len(self._sent) > 10_000:
                self._sent.popitem(last=False)
            by_lang = {lang: queue.to_alarm(row, lang) for lang in ("nb", "en")}
            for sub in list(self._subscribers):
                alarm = by_lang[sub.lang]
                if not sub.may_see(alarm):
                    continue
                try:
                    sub.queue.put_nowait(alarm)
                except asyncio.QueueFull:
                    sub.overflowed = True
