"""The FastAPI application: routes, problem details, health."""

from __future__ import annotations

from fastapi import FastAPI

from clinician_api import problems
from clinician_api.routes import alarms, auth, patients


def create_app() -> FastAPI:
    app = FastAPI(
        title="Varde clinician API",
        version="0.1.0",
        description="Alarm queue, trends, self-management plans and FHIR R4 for digital home monitoring.",
    )
    problems.install(app)
    app.include_router(auth.router)
    app.include_router(alarms.router)
    app.include_router(patients.router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
