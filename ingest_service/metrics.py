"""Prometheus metrics of an ingest worker and the state its readiness check reads."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from store.observability import REGISTRY

MESSAGES = Counter("varde_ingest_messages_total", "MQTT messages handled", registry=REGISTRY)
READINGS_STORED = Counter("varde_ingest_readings_stored_total", "Readings newly stored", registry=REGISTRY)
DUPLICATES = Counter(
    "varde_ingest_duplicates_total", "Readings already stored (redelivery or replay)", registry=REGISTRY
)
DEAD_LETTERED = Counter(
    "varde_ingest_dead_lettered_total", "Messages or readings dead-lettered", ["reason"], registry=REGISTRY
)
BATCH_SECONDS = Histogram(
    "varde_ingest_batch_seconds",
    "Time to write and commit one batch",
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LAG_SECONDS = Gauge(
    "varde_ingest_lag_seconds", "Age of the newest committed envelope at commit (sent_at → commit)", registry=REGISTRY
)
PENDING = Gauge("varde_ingest_pending_messages", "Messages received but not yet committed", registry=REGISTRY)
DB_ERRORS = Counter("varde_ingest_db_errors_total", "Batches retried after a database error", registry=REGISTRY)
MQTT_CONNECTED = Gauge("varde_ingest_mqtt_connected", "1 while the worker's broker session is up", registry=REGISTRY)


class HealthState:
    """What the worker knows of its connections; `/readyz` also checks PostgreSQL itself."""

    def __init__(self) -> None:
        self._mqtt_connected = False
        self.db_ok = True

    @property
    def mqtt_connected(self) -> bool:
        return self._mqtt_connected

    @mqtt_connected.setter
    def mqtt_connected(self, value: bool) -> None:
        self._mqtt_connected = value
        MQTT_CONNECTED.set(1 if value else 0)

    def healthy(self) -> bool:
        return self.mqtt_connected and self.db_ok
