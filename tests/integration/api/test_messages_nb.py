"""Validation errors carry a bokmål message the Norwegian dashboard shows next to the field (never pydantic's
English in the Norwegian interface)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from clinician_api.problems import message_nb
from tests.stack_plugin import Tenant, login

pytestmark = pytest.mark.integration


def test_a_refused_plan_names_each_field_in_bokmal(api_url: str, make_tenant: Callable[..., Tenant]) -> None:
    tenant = make_tenant()
    headers = login(api_url, tenant.nurse, tenant.nurse_password)
    plan = {
        "protocol": "heart_failure",
        "schedule": [{"kind": "body_weight", "deadline": "25:00", "weekdays": ["mon"]}],
        "advice": [{"zone": z, "nb": "x", "en": "x"} for z in ("green", "yellow", "red")],
        "contacts": [],
    }
    answer = httpx.post(f"{api_url}/api/v1/patients/{tenant.patients[0]}/plans", json=plan, headers=headers)
    assert answer.status_code == 422
    by_field = {tuple(e["loc"][-2:]): e["message_nb"] for e in answer.json()["errors"]}
    assert by_field[("body", "contacts")] == "Må ha minst 1."
    assert any("klokkeslett" in text for text in by_field.values()), by_field


def test_unknown_error_types_still_get_a_norwegian_sentence() -> None:
    assert message_nb({"type": "something_new", "msg": "Input should be nice"}) == "Ugyldig verdi."
    assert message_nb({"type": "string_too_long", "ctx": {"max_length": 100}}) == "Kan ha høyst 100 tegn."
