"""A background thread of the API process that does one piece of work on wake-up: when a PostgreSQL notification
arrives on its channel, and at least every `poll_seconds` (a notification sent while it was away is not lost). Used
by the escalation notifier, the repeat-request sender and the plan courier; several API replicas may each run one,
so the work must claim its rows (`FOR UPDATE SKIP LOCKED`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from store.events import Channel
from store.events import listen as listen_on

log = logging.getLogger("varde.api.background")

_STOP_CHECK_S = 0.25
"""How often a worker waiting for a notification looks whether it was asked to stop: `stop()` returns within about
this long, not after a whole `poll_seconds` (three workers each finishing a 5 s wait made every API shutdown 6-10 s)."""


class ListeningWorker:
    def __init__(
        self,
        name: str,
        channel: Channel,
        database_url: Callable[[], str],
        work: Callable[[psycopg.Connection[Any]], object],
        poll_seconds: float = 5.0,
        *,
        autocommit: bool = False,
    ) -> None:
        self._name, self._channel, self._database_url = name, channel, database_url
        self._work, self._poll_seconds, self._autocommit = work, poll_seconds, autocommit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with (
                    psycopg.connect(self._database_url(), autocommit=self._autocommit) as conn,
                    psycopg.connect(self._database_url(), autocommit=True) as listen,
                ):
                    listen_on(listen, self._channel)
                    while not self._stop.is_set():
                        self._work(conn)
                        self._wait_for_notification(listen)
            except (psycopg.Error, RuntimeError) as exc:
                log.warning("background_db_error worker=%s error=%s", self._name, type(exc).__name__)
                self._stop.wait(self._poll_seconds)

    def _wait_for_notification(self, listen: psycopg.Connection[Any]) -> None:
        """Until a notification arrives on the channel, `poll_seconds` pass, or `stop()` is called. A notification
        that arrives between two short waits is kept by the connection and read by the next one."""
        deadline = time.monotonic() + self._poll_seconds
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            notified = False
            for _ in listen.notifies(timeout=min(remaining, _STOP_CHECK_S), stop_after=1):
                notified = True
            if notified:
                return
