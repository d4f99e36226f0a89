"""A background thread of the API process that does one round of work whenever a PostgreSQL channel is notified,
and every `poll_seconds` anyway (a notification missed while reconnecting is never work lost): the escalation
notifier and the plan courier. A database error ends the round; the thread waits and connects again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg

log = logging.getLogger("varde.api")


class NotifiedWorker:
    def __init__(
        self,
        name: str,
        channel: str,
        database_url: Callable[[], str],
        work: Callable[[psycopg.Connection[Any]], object],
        *,
        poll_seconds: float = 5.0,
        autocommit: bool = False,
    ) -> None:
        self._name, self._channel, self._database_url, self._work = name, channel, database_url, work
        self._poll, self._autocommit = poll_seconds, autocommit
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
                    listen.execute(f"LISTEN {self._channel}")
                    while not self._stop.is_set():
                        self._work(conn)
                        for _ in listen.notifies(timeout=self._poll, stop_after=1):
                            pass
            except (psycopg.Error, RuntimeError) as exc:
                log.warning("%s_db_error error=%s", self._name.replace("-", "_"), type(exc).__name__)
                self._stop.wait(self._poll)
