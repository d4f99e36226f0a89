"""The API process's operations endpoint: `/metrics`, `/healthz` and `/readyz` on their own port, so metrics never
reach the public port behind the proxy. Readiness: PostgreSQL answers."""

from __future__ import annotations

from store.observability import DatabaseCheck, OpsServer, serve_ops
from store.settings import get_settings


def serve_api_ops(metrics_port: int | None) -> OpsServer | None:
    settings = get_settings()
    return serve_ops(
        settings.metrics_port if metrics_port is None else metrics_port,
        {"database": DatabaseCheck(settings.require_database_url())},
        service="api",
        host=settings.metrics_host,
    )
