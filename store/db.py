"""Connection pools of the cloud processes (psycopg_pool), opened from the settings a process was given: the API's
is `create_app(settings)`'s `LazyPool`, a service's its constructor's `open_pool(settings)`. Nothing here reads the
environment behind the caller's back."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from psycopg import Connection
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from store.settings import Settings

RECONNECT_SECONDS = 10.0
"""How long one background attempt to replace a lost connection keeps retrying. psycopg_pool's back-off doubles
from 1 s without a cap over its default 5 minutes: a connection lost at the start of a 20-s outage was retried at
1, 3, 7, 15 and then only 31 s, 11 s after the database was back. Within 10 s the waits are 1, 2, 4 and ~3 s; then
the attempt gives up and the next request that finds the pool empty starts a fresh one at once."""

_log = logging.getLogger("varde.db")


def open_pool(
    settings: Settings, *, min_size: int | None = None, max_size: int | None = None, name: str = "varde"
) -> ConnectionPool[Connection[TupleRow]]:
    made: list[ConnectionPool[Connection[TupleRow]]] = []

    def check(conn: Connection[TupleRow]) -> None:
        # A connection found broken on checkout means the database restarted or failed over: every idle connection
        # is broken alike. Drop them all at once (they are replaced in the background) instead of letting the
        # request try them one by one, psycopg_pool sleeping 1, 2, 4, 8, 16 s between tries: with five or more
        # idle connections the request outwaited its 30 s, the database long back.
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            if made:
                made[0].drain()
            raise

    pool: ConnectionPool[Connection[TupleRow]] = ConnectionPool(
        settings.require_database_url(),
        min_size=min_size if min_size is not None else settings.database_pool_min,
        max_size=max_size if max_size is not None else settings.database_pool_max,
        name=name,
        open=False,
        # A connection broken by a database restart or failover is replaced on checkout, not handed to a request.
        check=check,
        reconnect_timeout=RECONNECT_SECONDS,
        reconnect_failed=_reconnect_failed,
        kwargs={"application_name": name},
    )
    made.append(pool)
    pool.open(wait=True, timeout=30)
    return pool


def _reconnect_failed(pool: ConnectionPool[Connection[TupleRow]]) -> None:
    _log.warning("database_reconnect_gave_up pool=%s after_s=%.0f", pool.name, RECONNECT_SECONDS)


class LazyPool:
    """A pool opened from `settings` on first use (an app that never touches the database opens none), closed once.
    `settings` may be a function giving them, asked on first use."""

    def __init__(self, settings: Settings | Callable[[], Settings], *, name: str = "varde") -> None:
        self._settings = settings
        self._name = name
        self._lock = threading.Lock()
        self._pool: ConnectionPool[Connection[TupleRow]] | None = None

    def get(self) -> ConnectionPool[Connection[TupleRow]]:
        with self._lock:
            if self._pool is None:
                settings = self._settings if isinstance(self._settings, Settings) else self._settings()
                self._pool = open_pool(settings, name=self._name)
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
