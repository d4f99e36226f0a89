"""The OpenAPI document against the running API: schemathesis generates requests for every operation (as a nurse)
and checks that none is a server error and every response matches its documented schema and content type."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.stack_plugin import login

pytestmark = pytest.mark.integration

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def nurse_headers(request: pytest.FixtureRequest, api_url: str) -> dict[str, str]:
    import secrets

    from store.settings import Settings
    from varde.admin import add_gateways, add_patient, add_team, add_user

    config = Settings()
    suffix = secrets.token_hex(4)
    team = f"fuzz-{suffix}"
    add_team(config, team)
    password = secrets.token_urlsafe(12)
    add_user(config, f"fuzz-{suffix}", "nurse", [team], password)
    add_gateways(config, [add_patient(config, f"Pasient fuzz-{suffix}", team, "copd")])
    return login(api_url, f"fuzz-{suffix}", password)


def test_api_matches_its_openapi_document(nurse_headers: dict[str, str], api_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/api/v1/alarms/stream":
            continue  # never ends by itself; it has its own tests

        @given(case=operation.as_strategy())
        @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def exercise(case: Any) -> None:
            case.call_and_validate(base_url=api_url, headers=nurse_headers, checks=CHECKS)

        try:
            exercise()
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
        tested += 1
    assert tested >= 30
    assert not failures, "\n\n".join(failures)


def test_every_error_response_is_documented_as_problem_details(api_url: str) -> None:
    document = httpx.get(f"{api_url}/openapi.json").json()
    assert "Problem" in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            errors = {code: r for code, r in operation["responses"].items() if int(code) >= 400}
            if path != "/healthz" and path != "/fhir/metadata":
                assert errors, f"{method.upper()} {path} documents no error response"
            expected = ["application/fhir+json"] if path.startswith("/fhir/") else ["application/problem+json"]
            for code, response in errors.items():
                assert list(response["content"]) == expected, f"{method} {path} {code}"
            if "{patient_id}" in path or "{alarm_id}" in path or "{observation_id}" in path:
                assert "404" in errors, f"{method.upper()} {path} does not document 404"
            if path not in ("/healthz", "/fhir/metadata", "/api/v1/auth/token", "/api/v1/gateways/enrol"):
                assert "401" in errors, f"{method.upper()} {path} does not document 401"
    assert "429" in document["paths"]["/api/v1/auth/token"]["post"]["responses"]
    assert "429" in document["paths"]["/api/v1/gateways/enrol"]["post"]["responses"]
