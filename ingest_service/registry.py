"""Gateway → patient lookups from a cache that follows changes in the gateways table.

A trigger NOTIFYs `varde_gateways` on every change; a listener thread marks the cache stale, so a disabled or
re-assigned gateway takes effect within one round trip, not after the TTL.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
from psycopg import Connection
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from store.events import Channel, listen
from store.gateways import GatewayInfo, all_gateways

log = logging.getLogger("varde.ingest")


class GatewayRegistry:
    """All gateways in memory, reloaded every `ttl` seconds and at most once a second on a miss."""

    def __init__(
        self, pool: ConnectionPool[Connection[TupleRow]], ttl: float = 60.0, database_url: str | None = None
    ) -> None:
        self._pool = pool
        self._ttl = ttl
        self._lock = threading.Lock()
        self._gateways: dict[str, GatewayInfo] = {}
        self._loaded_at = 0.0
        self._stop = threading.Event()
        if database_url:
            threading.Thread(target=self._listen, args=(database_url,), name="gateway-changes", daemon=True).start()

    def _listen(self, database_url: str) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(database_url, autocommit=True) as conn:
                    listen(conn, Channel.GATEWAYS)
                    self.invalidate()  # changes made while not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.invalidate()
            except psycopg.Error as exc:
                log.warning("gateway_listener_error error=%s", type(exc).__name__)
                self._stop.wait(1.0)

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = 0.0

    def close(self) -> None:
        self._stop.set()

    def _reload(self) -> None:
        with self._pool.connection() as conn:
            gateways = all_gateways(conn)
        self._gateways = {g.gateway_id: g for g in gateways}
        self._loaded_at = time.monotonic()

    def lookup(self, gateway_id: str) -> GatewayInfo | None:
        with self._lock:
            age = time.monotonic() - self._loaded_at
            if self._loaded_at == 0.0 or age > self._ttl or (gateway_id not in self._gateways and age > 1.0):
                try:
                    self._reload()
                except psycopg.Error as exc:
                    if not self._gateways:
                        raise
                    # The database is changing hands: judge by the last copy rather than stop the worker.
                    log.warning("gateway_registry_stale error=%s", type(exc).__name__)
            return self._gateways.get(gateway_id)
