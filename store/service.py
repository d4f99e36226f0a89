"""The start every cloud service process shares (ingest worker, rules scheduler, journal worker): logging, the stop
event that SIGTERM and SIGINT set, and the operations endpoint with its database readiness check, all from the
settings the service was given. The API has its own start (uvicorn, `clinician_api.app.create_app`)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from store.observability import DatabaseCheck, OpsServer, ReadinessCheck, serve_ops
from store.settings import Settings
from vitals.logs import setup_logging

log = logging.getLogger("varde.service")


class Service:
    """One service process: `stop` is set on SIGTERM or SIGINT, and every `on_stop` callback is called then (at
    once, if the stop came before it was registered)."""

    def __init__(self, name: str, settings: Settings) -> None:
        setup_logging()
        self.name = name
        self.settings = settings
        self.stop = threading.Event()
        self.ops: OpsServer | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        signal.signal(signal.SIGTERM, self._stopping)
        signal.signal(signal.SIGINT, self._stopping)

    def _stopping(self, *_: Any) -> None:
        self.stop.set()
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    def on_stop(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)
        if self.stop.is_set():
            callback()

    def serve_ops(self, metrics_port: int | None = None, **checks: ReadinessCheck) -> OpsServer | None:
        """The operations endpoint on `metrics_port` (None: the settings' port; 0: none), ready when PostgreSQL
        answers and every further check passes."""
        port = self.settings.metrics_port if metrics_port is None else metrics_port
        every: dict[str, ReadinessCheck] = {"database": DatabaseCheck(self.settings.require_database_url()), **checks}
        self.ops = serve_ops(port, every, service=self.name, host=self.settings.metrics_host)
        return self.ops


__all__ = ["Service"]
