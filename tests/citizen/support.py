"""Fixtures of the patient-app tests: the test stack, a real OpenID provider with an API process as its relying
party, and a home-monitored patient (national id, plan, readings) with a nurse, a relative and a stranger."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from tests.citizen.stack import OidcStack, oidc_stack
from tests.integration.api.support import insert_readings
from tests.patient.plans import BODY
from tests.stack_plugin import Tenant, login

pytestmark = pytest.mark.integration


def national_id() -> str:
    return f"{secrets.randbelow(28) + 1:02d}{secrets.randbelow(12) + 1:02d}{secrets.randbelow(10**7):07d}"


@dataclass
class People:
    """Logins at the OpenID provider are the people's national ids; `accounts` is the provider's account list."""

    patient_nid: str
    relative_nid: str
    stranger_nid: str
    other_patient_nid: str
    nurse_hpr: str

    @property
    def accounts(self) -> dict[str, dict[str, str]]:
        return {
            self.patient_nid: {"pid": self.patient_nid, "name": "Kari Pasient"},
            self.relative_nid: {"pid": self.relative_nid, "name": "Ola Pårørende"},
            self.stranger_nid: {"pid": self.stranger_nid, "name": "Per Fremmed"},
            self.other_patient_nid: {"pid": self.other_patient_nid, "name": "Anne Annenpasient"},
            f"hpr-{self.nurse_hpr}": {"hpr_number": self.nurse_hpr, "name": "Sykepleier Siri"},
        }


@pytest.fixture(scope="module")
def people() -> People:
    return People(national_id(), national_id(), national_id(), national_id(), str(secrets.randbelow(10**8) + 10**7))


# Module scope: its API process is a second replica on the stack's database (with its own event listener), which
# other modules' tests that count the API's connections must not see.
@pytest.fixture(scope="module")
def oidc(stack: dict[str, Any], people: People, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcStack]:
    with oidc_stack(tmp_path_factory.mktemp("oidc"), people.accounts) as running:
        yield running


@dataclass
class Home:
    tenant: Tenant
    patient_id: UUID
    other_patient_id: UUID
    nurse_headers: dict[str, str]


def activate_plan(db: psycopg.Connection[Any], patient_id: UUID) -> None:
    db.execute(
        "INSERT INTO self_management_plans (patient_id, version, status, body, activated_at) "
        "VALUES (%s, 1, 'active', %s, now())",
        (patient_id, json.dumps(BODY)),
    )


@pytest.fixture
def home(make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], people: People, oidc: OidcStack) -> Home:
    """A care team with two patients: ours (national id, plan, a yellow weight today and a month of readings) and
    another one. The people's national ids are fresh per test, so each test's patient is its own."""
    for nid in (people.patient_nid, people.other_patient_nid):
        db.execute("UPDATE patients SET national_id = NULL WHERE national_id = %s", (nid,))
    tenant = make_tenant(patients=2)
    ours, other = tenant.patients
    db.execute("UPDATE patients SET national_id = %s WHERE id = %s", (people.patient_nid, ours))
    db.execute("UPDATE patients SET national_id = %s WHERE id = %s", (people.other_patient_nid, other))
    db.execute("UPDATE users SET hpr_number = NULL WHERE hpr_number = %s", (people.nurse_hpr,))
    db.execute(
        "UPDATE users SET hpr_number = %s, display_name = 'Kari Sykepleier' WHERE username = %s",
        (people.nurse_hpr, tenant.nurse),
    )
    activate_plan(db, ours)
    activate_plan(db, other)
    now = datetime.now(UTC)
    gateway = tenant.gateways[0]
    days = [now - timedelta(days=d, minutes=5) for d in range(10, 0, -1)]
    insert_readings(
        db,
        ours,
        gateway.gateway_id,
        "body_weight",
        [80.0 + d * 0.1 for d in range(10)],
        days,
        device_type="weight_scale",
    )
    insert_readings(
        db, ours, gateway.gateway_id, "body_weight", [83.1], [now - timedelta(minutes=1)], device_type="weight_scale"
    )
    other_gw = tenant.gateways[1]
    insert_readings(
        db, other, other_gw.gateway_id, "body_weight", [99.9], [now - timedelta(minutes=2)], device_type="weight_scale"
    )
    return Home(tenant, ours, other, login(oidc.api_url, tenant.nurse, tenant.nurse_password))


_FORM = re.compile(r'<form[^>]*action="([^"]+)"', re.I)
_HIDDEN = re.compile(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', re.I)


def provider_callback(client: httpx.Client, login_name: str, audience: str = "patient") -> httpx.URL:
    """Walk the real provider's pages as a browser would (its development login form, any password) and return
    the URL it sends the browser back to, without calling it."""
    response = client.get(f"/auth/oidc/{audience}/start", follow_redirects=False)
    for _ in range(12):
        if response.is_redirect:
            target = response.url.join(response.headers["location"])
            if target.path == f"/auth/oidc/{audience}/callback":
                return target
            response = client.get(target, follow_redirects=False)
            continue
        assert response.status_code == 200, f"{response.status_code} from {response.url}: {response.text[:300]}"
        match = _FORM.search(response.text)
        assert match, f"no form on the provider's page {response.url}: {response.text[:300]}"
        fields = dict(_HIDDEN.findall(response.text))
        if 'name="login"' in response.text:
            fields.update({"login": login_name, "password": "any"})
        response = client.post(response.url.join(match.group(1)), data=fields, follow_redirects=False)
    raise AssertionError("the provider did not send the browser back")


def national_sign_in(api_url: str, login_name: str) -> httpx.Client:
    """A client holding the patient app's session of `login_name` (a national id at the provider)."""
    client = httpx.Client(base_url=api_url, timeout=30.0)
    callback = provider_callback(client, login_name)
    done = client.get(callback, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/min/"), done.headers.get("location")
    return client


MIN = {"X-Varde-Min": "1"}


def grant_proxy(client: httpx.Client, patient_id: Any, nid: str, rights: list[str], days: float = 30) -> dict[str, Any]:
    """The patient (signed in on `client`) gives the relative with national id `nid` a proxy for `days`."""
    answer = client.post(
        f"/api/v1/min/patients/{patient_id}/proxies",
        headers=MIN,
        json={
            "relative_national_id": nid,
            "relative_name": "Ola Pårørende",
            "relation": "sønn",
            "rights": rights,
            "valid_until": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
        },
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())
