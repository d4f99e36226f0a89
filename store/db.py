"""The one connection pool of a cloud process (psycopg_pool), opened lazily from the settings."""

from __future__ import annotations

import threading

from psycopg import Connection
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from store.settings import Settings, get_settings

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
        kwargs={"application_name": name},
    )
    pool.open(wait=True, timeout=30)
    return pool


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
