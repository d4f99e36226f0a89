"""The operations endpoint of every cloud process: Prometheus metrics, liveness and readiness over plain HTTP.

Each process (ingest worker, rules scheduler, API, journal worker) serves, on its own `--metrics-port` and apart
from any public port, `GET /metrics` (the Prometheus text format of `REGISTRY`), `GET /healthz` (liveness: the
process answers) and `GET /readyz` (readiness: 200 only when every check passes, e.g. PostgreSQL reachable and the
broker connected; the body names each check). It binds `VARDE_METRICS_HOST` (loopback unless set, e.g. to 0.0.0.0
inside a container on a private network). Every metric of the services is registered on `REGISTRY`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

REGISTRY = CollectorRegistry()
"""The one registry of Varde's metrics in a process, with the process's CPU, memory and file descriptors."""
ProcessCollector(registry=REGISTRY)

ReadinessCheck = Callable[[], bool]


class DatabaseCheck:
    """Readiness check: a fresh connection to PostgreSQL answers `SELECT 1` (remembered for `cache_seconds`, so
    frequent probes cost little)."""

    def __init__(self, database_url: str, *, timeout_seconds: int = 2, cache_seconds: float = 1.0) -> None:
        self._url = database_url
        self._timeout = timeout_seconds
        self._cache = cache_seconds
        self._lock = threading.Lock()
        self._checked_at = -1e9
        self._ok = False

    def __call__(self) -> bool:
        with self._lock:
            if time.monotonic() - self._checked_at < self._cache:
                return self._ok
            try:
                with psycopg.connect(
                    self._url, connect_timeout=self._timeout, application_name="varde-readiness"
                ) as conn:
                    self._ok = conn.execute("SELECT 1").fetchone() is not None
            except psycopg.Error:
                self._ok = False
            self._checked_at = time.monotonic()
            return self._ok


class OpsServer:
    """The HTTP server of `/metrics`, `/healthz` and `/readyz`, run in a daemon thread."""

    def __init__(self, host: str, port: int, checks: Mapping[str, ReadinessCheck], service: str) -> None:
        self.checks = dict(checks)
        self.service = service
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="varde-ops", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> OpsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def readiness(self) -> tuple[bool, dict[str, bool]]:
        results: dict[str, bool] = {}
        for name, check in self.checks.items():
            try:
                results[name] = bool(check())
            except Exception:
                results[name] = False
        return all(results.values()), results


def _handler_for(ops: OpsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
            elif path == "/healthz":
                self._send_json(200, {"status": "ok", "service": ops.service})
            elif path == "/readyz":
                ready, checks = ops.readiness()
                doc = {"status": "ready" if ready else "not_ready", "service": ops.service, "checks": checks}
                self._send_json(200 if ready else 503, doc)
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found: /metrics, /healthz, /readyz\n")

        def _send_json(self, code: int, doc: dict[str, Any]) -> None:
            self._send(code, "application/json", json.dumps(doc).encode())

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def serve_ops(
    port: int, checks: Mapping[str, ReadinessCheck], *, service: str, host: str | None = None
) -> OpsServer | None:
    """Start the operations endpoint on `port` (0: none). `host` defaults to the settings' `metrics_host`."""
    if not port:
        return None
    if host is None:
        from store.settings import get_settings

        host = get_settings().metrics_host
    return OpsServer(host, port, checks, service).start()


__all__ = ["REGISTRY", "DatabaseCheck", "OpsServer", "ReadinessCheck", "serve_ops"]
