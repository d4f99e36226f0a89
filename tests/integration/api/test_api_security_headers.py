"""Security headers on every kind of response of the running API (JSON patient data, problem details, dashboard
pages, static assets), HSTS only over TLS, and CORS: off by default, an explicit allow-list when configured."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from clinician_api.app import create_app
from clinician_api.dashboard.router import CSP as DASHBOARD_CSP
from store.settings import Settings
from tests.integration.api.support import headers_for, insert_readings

pytestmark = pytest.mark.integration

_COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
}
_DENIED_FEATURES = ("camera=()", "microphone=()", "geolocation=()", "bluetooth=()", "usb=()", "payment=()")
_PORTAL = "https://portal.example.no"


def _assert_common(response: httpx.Response) -> None:
    for name, value in _COMMON.items():
        assert response.headers.get(name) == value, f"{name} on {response.request.url.path}"
    policy = response.headers["permissions-policy"]
    assert all(feature in policy for feature in _DENIED_FEATURES), policy
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_patient_data_responses_carry_every_security_header_and_are_never_cached(
    api: httpx.Client, make_tenant: Any, db: Any
) -> None:
    tenant = make_tenant()
    patient = tenant.patients[0]
    now = datetime.now(UTC)
    insert_readings(db, patient, tenant.gateways[0].gateway_id, "spo2", [95.0], [now - timedelta(minutes=5)])
    headers = headers_for(str(api.base_url), tenant)
    for path in (f"/api/v1/patients/{patient}", f"/api/v1/patients/{patient}/measurements"):
        response = api.get(path, headers=headers)
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        _assert_common(response)
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    problem = api.get(f"/api/v1/patients/{patient}")  # no token: a problem detail, with the same headers
    assert problem.status_code == 401
    _assert_common(problem)


def test_dashboard_pages_keep_their_own_policy_with_the_common_headers(api: httpx.Client) -> None:
    page = api.get("/dashboard/login")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    _assert_common(page)
    assert page.headers["content-security-policy"] == DASHBOARD_CSP
    assert "'unsafe-inline'" not in DASHBOARD_CSP and "script-src 'self'" in DASHBOARD_CSP
    asset = api.get("/static/js/api.js")
    assert asset.status_code == 200
    _assert_common(asset)


def test_no_hsts_over_plain_http_and_no_cors_by_default(api: httpx.Client) -> None:
    response = api.get("/healthz", headers={"Origin": _PORTAL})
    assert "strict-transport-security" not in response.headers
    assert "access-control-allow-origin" not in response.headers
    preflight = api.options(
        "/api/v1/alarms",
        headers={
            "Origin": _PORTAL,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers


@pytest.fixture
def https_client(settings: Settings) -> Iterator[TestClient]:
    configured = settings.model_copy(update={"cors_allow_origins": f"{_PORTAL}, https://other.example.no/"})
    with TestClient(create_app(configured), base_url="https://testserver") as client:
        yield client


def test_hsts_is_sent_over_tls(https_client: TestClient) -> None:
    response = https_client.get("/healthz")
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


def test_cors_answers_only_the_listed_origins_and_never_with_credentials(https_client: TestClient) -> None:
    request_headers = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    allowed = https_client.options("/api/v1/alarms", headers={"Origin": _PORTAL, **request_headers})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == _PORTAL
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers
    assert allowed.headers["x-content-type-options"] == "nosniff"
    second = https_client.get("/healthz", headers={"Origin": "https://other.example.no"})
    assert second.headers["access-control-allow-origin"] == "https://other.example.no"

    foreign = https_client.options("/api/v1/alarms", headers={"Origin": "https://evil.example", **request_headers})
    assert foreign.status_code == 400 and "access-control-allow-origin" not in foreign.headers
    simple = https_client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers
