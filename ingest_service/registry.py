"""Gateway → patient lookups from a cache that follows changes in the gateways table."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from uuid import UUID

from psycopg import Connection
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    gateway_id: str
    patient_id: UUID | None
    enabled: bool


class GatewayRegistry:
    """All gateways in memory, reloaded every `ttl` seconds and at most once a second on a miss."""

    def __init__(self, pool: ConnectionPool[Connection[TupleRow]], ttl: float = 10.0) -> None:
        self._pool = pool
        self._ttl = ttl
        self._lock = threading.Lock()
        self._gateways: dict[str, GatewayInfo] = {}
        self._loaded_at = 0.0

    def _reload(self) -> None:
        with self._pool.connection() as conn:
            rows = conn.execute("SELECT id, patient_id, enabled FROM gateways").fetchall()
        self._gateways = {str(r[0]): GatewayInfo(str(r[0]), r[1], bool(r[2])) for r in rows}
        self._loaded_at = time.monotonic()

    def lookup(self, gateway_id: str) -> GatewayInfo | None:
        with self._lock:
            age = time.monotonic() - self._loaded_at
            if age > self._ttl or (gateway_id not in self._gateways and age > 1.0):
                self._reload()
            return self._gateways.get(gateway_id)
