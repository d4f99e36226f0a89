"""Prometheus metrics of the API process: requests by route template (never the raw path, which holds ids),
open live streams and refused sign-ins. Served on the process's operations port, not on the public API."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from store.observability import REGISTRY

REQUESTS = Counter(
    "varde_api_requests_total",
    "HTTP requests by method, route template and status code",
    ["method", "route", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "varde_api_request_seconds",
    "Time to the end of the response by method and route template (a live stream counts its whole life)",
    ["method", "route"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IN_FLIGHT = Gauge("varde_api_requests_in_flight", "Requests being handled", registry=REGISTRY)
SSE_CLIENTS = Gauge("varde_api_sse_clients", "Open alarm streams (server-sent events)", registry=REGISTRY)
AUTH_FAILURES = Counter(
    "varde_api_auth_failures_total",
    "Refused authentication or access: bad_credentials, rate_limited, missing_token, invalid_token, "
    "unknown_principal, forbidden_role, no_duty_of_care",
    ["reason"],
    registry=REGISTRY,
)

UNMATCHED = "unmatched"
"""The route label of a request no route matched (a 404): one value, whatever the path."""


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request, e.g. `/api/v1/patients/{patient_id}/measurements`."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(path, str) and path:
        return path
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", []):
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            found = getattr(candidate, "path_format", None) or getattr(candidate, "path", None)
            if isinstance(found, str):
                return found or "/"
    return UNMATCHED


class RequestMetrics:
    """ASGI middleware counting every HTTP request once, when its response ends (or the client goes away)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_recording)
        finally:
            IN_FLIGHT.dec()
            method = scope.get("method", "GET")
            route = route_template(scope)
            REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            REQUEST_SECONDS.labels(method=method, route=route).observe(time.perf_counter() - started)


__all__ = ["AUTH_FAILURES", "REQUESTS", "REQUEST_SECONDS", "SSE_CLIENTS", "RequestMetrics", "route_template"]
