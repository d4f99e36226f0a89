"""The dashboard's pages over plain HTTP: frames without patient data, strict content security policy, language
by cookie. A page naming a patient outside the caller's care reveals nothing: its data comes only through the
API's duty-of-care checks (exercised in a real browser in test_dashboard.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.stack_plugin import Tenant

pytestmark = pytest.mark.integration


def test_patient_page_is_the_same_frame_for_any_id_and_holds_no_patient_data(
    make_tenant: Callable[..., Tenant], api_url: str
) -> None:
    tenant = make_tenant()
    patient = tenant.patients[0]
    other = uuid.uuid4()
    for suffix in ("", "/edit"):
        real = httpx.get(f"{api_url}/dashboard/patients/{patient}{suffix}")
        made_up = httpx.get(f"{api_url}/dashboard/patients/{other}{suffix}")
        assert real.status_code == made_up.status_code == 200
        assert real.text.replace(str(patient), "ID") == made_up.text.replace(str(other), "ID")
        name = f"Pasient {tenant.team.removeprefix('team-')}-0"
        assert name not in real.text and tenant.team not in real.text


def test_pages_allow_only_their_own_scripts_and_styles(api_url: str) -> None:
    for path in ("/dashboard/", "/dashboard/login", "/dashboard/patients", f"/dashboard/patients/{uuid.uuid4()}"):
        response = httpx.get(f"{api_url}{path}")
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "unsafe" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["cache-control"] == "no-store"
        assert "http://" not in response.text and "https://" not in response.text, "no outside assets"


def test_language_cookie_chooses_the_strings_and_bokmal_is_the_default(api_url: str) -> None:
    assert "<h1>Alarmkø</h1>" in httpx.get(f"{api_url}/dashboard/").text
    switched = httpx.get(f"{api_url}/dashboard/lang/en", params={"next": "/dashboard/patients"})
    assert switched.status_code == 303 and switched.headers["location"] == "/dashboard/patients"
    english = httpx.get(f"{api_url}/dashboard/", cookies={"varde_lang": switched.cookies["varde_lang"]})
    assert '<html lang="en">' in english.text and "<h1>Alarm queue</h1>" in english.text


def test_malformed_patient_id_gets_a_not_found_page(api_url: str) -> None:
    response = httpx.get(f"{api_url}/dashboard/patients/not-a-uuid")
    assert response.status_code == 404
    assert "Fant ikke siden" in response.text
