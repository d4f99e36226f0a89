"""The FastAPI application: routers, problem details, security headers, the SSE hub and the gateway publisher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinician_api import dashboard, docs_ui, problems
from clinician_api.citizen import pages as citizen_pages
from clinician_api.citizen import routes as citizen_routes
from clinician_api.escalation import Notifier
from clinician_api.events import AlarmEventHub
from clinician_api.gateway_link import GatewayPublisher
from clinician_api.hygiene import InputHygiene
from clinician_api.metrics import RequestMetrics
from clinician_api.repeat_sender import RepeatSender
from clinician_api.routes import (
    alarms,
    audit,
    auth,
    episodes,
    fhir,
    fhir_export,
    journal,
    latest,
    patients,
    plans,
    population,
    questionnaires,
    reports,
    schedules,
    thresholds,
    worklist,
)
from clinician_api.routes import contact as patient_contact
from clinician_api.routes.attention import router as attention_router
from clinician_api.routes.burden import router as burden_router
from clinician_api.routes.enrolment import router as enrolment_router
from clinician_api.schedule_courier import PlanCourier
from store.db import LazyPool
from store.settings import Settings, get_settings

VERSION = "0.2.0"

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (
        b"permissions-policy",
        b"accelerometer=(), bluetooth=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), hid=(), "
        b"magnetometer=(), microphone=(), payment=(), serial=(), usb=()",
    ),
]
# Only over TLS (RFC 6797 §7.2: a browser ignores it on plain HTTP): uvicorn with TLS, or a proxy it trusts.
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_NO_STORE = (b"cache-control", b"no-store")
_CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
_CORS_HEADERS = ["Authorization", "Content-Type", "Accept", "Accept-Language"]


class SecurityHeaders:
    """Adds security headers to every response; patient data is never cached. A page or route that sets its own
    content security policy (the dashboard, the interactive docs in docs_ui.py) keeps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [*_SECURITY_HEADERS, *([_HSTS] if tls else []), _API_CSP, _NO_STORE]
                headers += [(name, value) for name, value in extra if name not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    def current_settings() -> Settings:
        return settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        notifier = sender = courier = None
        if current_settings().database_url:
            notifier = Notifier(lambda: current_settings().require_database_url(), current_settings())
            notifier.start()
            sender = RepeatSender(lambda: current_settings().require_database_url(), app.state.gateway_publisher)
            sender.start()
            courier = PlanCourier(lambda: current_settings().require_database_url(), app.state.gateway_publisher)
            courier.start()
        yield
        for worker in (notifier, sender, courier):
            if worker is not None:
                worker.stop()
        await app.state.event_hub.close()
        app.state.gateway_publisher.close()
        app.state.pool.close()

    app = FastAPI(
        title="Varde clinician API",
        version=VERSION,
        description=(
            "Alarm queue, patients, measurements and trends, threshold profiles, self-management plans, audit and "
            "FHIR R4 for digital home monitoring. Every patient route is limited to the caller's care teams (or an "
            "emergency access) and audited; errors are RFC 9457 problem details."
        ),
        lifespan=lifespan,
        docs_url=None,  # /docs comes from docs_ui, with a package's own files instead of a CDN
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    app.state.pool = LazyPool(current_settings)
    app.state.event_hub = AlarmEventHub(lambda: current_settings().require_database_url())
    app.state.gateway_publisher = GatewayPublisher(current_settings())
    problems.install(app)
    # fhir_export before fhir: `/fhir/Patient/$export` must be matched before `/fhir/Patient/{patient_id}`.
    for module in (
        auth,
        alarms,
        patients,
        latest,
        thresholds,
        plans,
        schedules,
        questionnaires,
        audit,
        fhir_export,
        fhir,
        journal,
        episodes,
        worklist,
        population,
        reports,
    ):
        app.include_router(module.router)
    app.include_router(dashboard.router)
    app.include_router(enrolment_router)
    app.include_router(attention_router)
    app.include_router(burden_router)
    app.include_router(docs_ui.router)
    app.mount(docs_ui.ASSETS_URL, docs_ui.assets(), name="docs-assets")
    for router in (patient_contact.router, citizen_routes.router, citizen_routes.signin, citizen_pages.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")
    origins = (settings or get_settings()).cors_origins
    if origins:  # off unless VARDE_CORS_ALLOW_ORIGINS names the web apps that may call the API (bearer, no cookies)
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=_CORS_METHODS,
            allow_headers=_CORS_HEADERS,
            expose_headers=["Retry-After", "Location"],
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(InputHygiene)  # NUL, control characters, NaN/Infinity, oversize: refused before any route
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestMetrics)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = problems.rewrite_openapi(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
