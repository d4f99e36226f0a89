"""The one connection pool of a cloud process (psycopg_pool), opened lazily from the settings."""

from __future__ import annotations

import logging
import threading

from psycopg import Connection
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from store.settings import Settings, get_settings

RECONNECT_SECONDS = 10.0
"""How long one background attempt to replace a lost connection keeps retrying (psycopg_pool's back-off doubles
from 1 s without a cap, so over its default 5 minutes a connection lost in a 40-s outage was retried only ~60 s
after it began and every request waited out the pool's 30 s in between, the database long back). Within 10 s the
waits are 1, 2, 4 and ~3 s; then the attempt gives up and the next request that finds the pool empty starts a
fresh one at once, so a pool is serving again within a few seconds of the database's return."""

_log = logging.getLogger("varde.db")
_lock = threading.Lock()
_pool: ConnectionPool[Connection[TupleRow]] | None = None


def open_pool(
    settings: Settings | None = None, *, min_size: int | None = None, max_size: int | None = None, name: str = "varde"
) -> ConnectionPool[Connection[TupleRow]]:
    settings = settings or get_settings()
    pool: ConnectionPool[Connection[TupleRow]] = ConnectionPool(
        settings.require_database_url(),
        min_size=min_size if min_size is not None else settings.database_pool_min,
        max_size=max_size if max_size is not None else settings.database_pool_max,
        name=name,
        open=False,
        # A connection broken by a database restart or failover is replaced on checkout, not handed to a request.
        check=ConnectionPool.check_connection,
        reconnect_timeout=RECONNECT_SECONDS,
        reconnect_failed=_reconnect_failed,
        kwargs={"application_name": name},
    )
    pool.open(wait=True, timeout=30)
    return pool


def _reconnect_failed(pool: ConnectionPool[Connection[TupleRow]]) -> None:
    _log.warning("database_reconnect_gave_up pool=%s after_s=%.0f", pool.name, RECONNECT_SECONDS)


def get_pool() -> ConnectionPool[Connection[TupleRow]]:
    """The process-wide pool, opened on first use."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = open_pool()
        return _pool


def close_pool() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.close()
            _pool = None
