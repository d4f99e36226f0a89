"""A patient's conditions through the API: several at once, the threshold profile composed from them with the
condition each limit came from, and the plan's NEWS2 and trend settings reaching the profile."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from tests.integration.api.support import a_plan, headers_for
from tests.stack_plugin import Tenant

pytestmark = pytest.mark.integration


def _limit(profile: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    return next(k for k in profile["kinds"] if k["kind"] == kind)[name]


def test_several_conditions_compose_the_profile_and_name_their_sources(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(protocol="general")
    patient = tenant.patients[0]
    headers = headers_for(api_url, tenant)
    url = f"/api/v1/patients/{patient}/conditions"

    put = api.put(url, headers=headers, json={"conditions": ["heart_failure", "diabetes", "copd"]})
    assert put.status_code == 200, put.text
    assert put.json()["protocol"] == "heart_failure"
    assert put.json()["conditions"] == ["heart_failure", "copd", "diabetes"]
    assert api.get(f"/api/v1/patients/{patient}", headers=headers).json()["conditions"] == [
        "heart_failure",
        "copd",
        "diabetes",
    ]
    assert db.execute("SELECT protocol FROM patients WHERE id = %s", (patient,)).fetchone() == ("heart_failure",)

    profile = api.get(f"/api/v1/patients/{patient}/thresholds", headers=headers).json()
    assert profile["conditions"] == ["heart_failure", "copd", "diabetes"]
    assert _limit(profile, "glucose", "yellow_high") == {"value": 13.9, "source": "protocol", "condition": "diabetes"}
    assert _limit(profile, "bp_systolic", "red_low") == {  # ESC 2021: < 80 mmHg is the heart-failure red floor
        "value": 80.0,
        "source": "protocol",
        "condition": "heart_failure",
    }
    assert _limit(profile, "spo2", "red_low")["condition"] == "copd"  # BTS 88–92 %, not out-voted by 92/94
    assert {"body_weight", "glucose", "resp_rate"} <= set(profile["followed_kinds"])

    for bad in ({"conditions": ["asthma"]}, {"conditions": ["copd"], "primary": "diabetes"}):
        assert api.put(url, headers=headers, json=bad).status_code == 422
    audit = db.execute(
        "SELECT count(*) FROM audit_log WHERE patient_id = %s AND action = 'update' AND resource LIKE '%%conditions'",
        (patient,),
    ).fetchone()
    assert audit is not None and audit[0] >= 1

    assert api.put(url, headers=headers, json={"conditions": []}).json() == {
        "patient_id": str(patient),
        "protocol": "general",
        "conditions": [],
    }


def test_the_plans_oxygen_scale_and_trends_reach_the_profile_until_it_is_retired(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(protocol="copd")
    patient = tenant.patients[0]
    headers = headers_for(api_url, tenant)
    url = f"/api/v1/patients/{patient}/plans"
    body = a_plan(
        zones=[],
        oxygen={"litres_per_minute": 2},
        spo2_scale=2,
        trends=[{"setting": "spo2_drop", "value": 6}, {"setting": "pulse_drift", "value": None}],
    )
    assert (
        api.post(url, headers=headers, json={**body, "trends": [{"setting": "spo2_drop", "value": 50}]}).status_code
        == 422
    )
    assert api.post(url, headers=headers, json=body).status_code == 201
    assert api.post(f"{url}/1/activate", headers=headers).status_code == 200

    profile = api.get(f"/api/v1/patients/{patient}/thresholds", headers=headers).json()
    assert (profile["spo2_scale"], profile["on_oxygen"]) == (2, True)
    assert _limit(profile, "spo2", "yellow_low") == {"value": 88.0, "source": "protocol", "condition": "spo2_scale2"}
    trends = {t["setting"]: t for t in profile["trends"]}
    assert trends["spo2_drop"] == {"setting": "spo2_drop", "value": 6.0, "source": "plan", "condition": None}
    assert trends["pulse_drift"]["value"] is None and trends["pulse_drift"]["source"] == "plan"

    assert api.post(f"{url}/1/retire", headers=headers).status_code == 200
    profile = api.get(f"/api/v1/patients/{patient}/thresholds", headers=headers).json()
    assert (profile["spo2_scale"], profile["on_oxygen"]) == (1, False)
    assert {t["setting"]: t["source"] for t in profile["trends"]}["spo2_drop"] == "protocol"
