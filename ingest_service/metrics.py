"""Prometheus metrics of an ingest worker and its health endpoint."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry()
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


class HealthState:
    def __init__(self) -> None:
        self.mqtt_connected = False
        self.last_commit = time.monotonic()
        self.db_ok = True

    def healthy(self) -> bool:
        return self.mqtt_connected and self.db_ok


def serve(port: int, health: HealthState) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, ctype, code = generate_latest(REGISTRY), CONTENT_TYPE_LATEST, 200
            elif self.path in ("/healthz", "/readyz"):
                ok = health.healthy()
                body, ctype, code = (
                    (b'{"status":"ok"}' if ok else b'{"status":"degraded"}'),
                    "application/json",
                    (200 if ok else 503),
                )
            else:
                body, ctype, code = b"not found", "text/plain", 404
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
