"""Self-management plans: validated drafts, versions, activation that becomes the rules' thresholds and reaches the
gateway as a retained message, and retirement."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest

from tests.integration.api.support import a_plan, headers_for
from tests.stack_plugin import Gateway, Tenant, publish, wait_for
from vitals import DeviceRef, Envelope, Reading, SelfManagementPlan, plan_topic, readings_topic

pytestmark = pytest.mark.integration


def _retained(gateway: Gateway, timeout: float = 10.0) -> list[mqtt.MQTTMessage]:
    """Connect as the gateway (its own login), subscribe to its plan topic and collect what the broker hands over."""
    got: list[mqtt.MQTTMessage] = []
    subscribed = threading.Event()
    client = gateway.client()
    client.on_message = lambda c, u, m: got.append(m)
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(plan_topic(gateway.gateway_id), qos=1)
    client.connect(gateway.host, gateway.port)
    client.loop_start()
    try:
        assert subscribed.wait(timeout)
        time.sleep(0.5)
        return got
    finally:
        client.disconnect()
        client.loop_stop()


def test_plan_drafts_are_validated_and_versioned(make_tenant: Any, api: httpx.Client, api_url: str) -> None:
    tenant: Tenant = make_tenant(protocol="copd")
    headers = headers_for(api_url, tenant)
    url = f"/api/v1/patients/{tenant.patients[0]}/plans"
    bad_order = a_plan(zones=[{"kind": "spo2", "unit": "%", "red_low": 92, "yellow_low": 90}])
    assert api.post(url, headers=headers, json=bad_order).status_code == 422
    bad_unit = a_plan(zones=[{"kind": "body_weight", "unit": "lb", "red_high": 200}])
    assert api.post(url, headers=headers, json=bad_unit).status_code == 422
    no_red_advice = a_plan(advice=[a for a in a_plan()["advice"] if a["zone"] != "red" or a.get("kind")])
    refused = api.post(url, headers=headers, json=no_red_advice)
    assert refused.status_code == 422 and "red" in refused.text
    stringly = a_plan(zones=[{"kind": "spo2", "unit": "%", "red_low": "86"}])
    assert api.post(url, headers=headers, json=stringly).status_code == 422
    identity = {**a_plan(), "patient_name": "Kari Nordmann"}
    assert api.post(url, headers=headers, json=identity).status_code == 422

    first = api.post(url, headers=headers, json=a_plan())
    assert first.status_code == 201, first.text
    second = api.post(url, headers=headers, json=a_plan(diagnosis="J44.9"))
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    assert first.json()["status"] == "draft"
    versions = api.get(url, headers=headers).json()["items"]
    assert [v["version"] for v in versions] == [2, 1]
    assert api.get(f"{url}/2", headers=headers).json()["body"]["diagnosis"] == "J44.9"
    assert api.get(f"{url}/9", headers=headers).status_code == 404


def _spo2(gateway_id: str, value: float) -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    device = DeviceRef(address="A4:C1:38:00:00:09", type="pulse_oximeter")
    reading = Reading(id=uuid.uuid4(), kind="spo2", value=value, unit="%", measured_at=now, device=device)
    return Envelope(gateway_id=gateway_id, sent_at=now, readings=(reading,)).to_json()


def test_activated_plan_reaches_the_gateway_retained_and_its_zones_drive_the_rules(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(protocol="copd")
    gateway = tenant.gateways[0]
    patient = tenant.patients[0]
    headers = headers_for(api_url, tenant)
    url = f"/api/v1/patients/{patient}/plans"
    api.post(url, headers=headers, json=a_plan())
    activated = api.post(f"{url}/1/activate", headers=headers)
    assert activated.status_code == 200, activated.text
    assert activated.json()["status"] == "active" and activated.json()["published_to"] == [gateway.gateway_id]

    messages = _retained(gateway)
    assert len(messages) == 1 and messages[0].retain
    plan = SelfManagementPlan.model_validate_json(messages[0].payload)
    assert plan.version == 1 and plan.zones_of("spo2") is not None
    assert str(patient) not in messages[0].payload.decode() and "Pasient" not in messages[0].payload.decode()

    overrides = db.execute(
        "SELECT kind, red_low, yellow_low, source FROM threshold_overrides WHERE patient_id = %s", (patient,)
    ).fetchall()
    assert overrides == [("spo2", 86.0, 90.0, "plan")]
    profile = api.get(f"/api/v1/patients/{patient}/thresholds", headers=headers).json()
    spo2 = next(k for k in profile["kinds"] if k["kind"] == "spo2")
    assert spo2["red_low"] == {"value": 86.0, "source": "plan", "condition": None}

    # 85 % is yellow by the COPD protocol (red below 84) but red by this plan (red below 86).
    assert publish(gateway, readings_topic(gateway.gateway_id), _spo2(gateway.gateway_id, 85.0)) < 128

    def alarm() -> Any:
        return db.execute(
            "SELECT severity, limit_value FROM alarms WHERE patient_id = %s AND rule = 'threshold.spo2.low'",
            (patient,),
        ).fetchone()

    assert wait_for(alarm, what="the plan-driven alarm") == ("red", 86.0)

    api.post(url, headers=headers, json=a_plan(zones=[{"kind": "spo2", "unit": "%", "red_low": 85, "yellow_low": 89}]))
    assert api.post(f"{url}/2/activate", headers=headers).status_code == 200
    assert api.post(f"{url}/1/activate", headers=headers).status_code == 409
    statuses = {v["version"]: v["status"] for v in api.get(url, headers=headers).json()["items"]}
    assert statuses == {1: "retired", 2: "active"}
    assert SelfManagementPlan.model_validate_json(_retained(gateway)[0].payload).version == 2
    assert db.execute("SELECT red_low FROM threshold_overrides WHERE patient_id = %s", (patient,)).fetchone() == (85.0,)

    retired = api.post(f"{url}/2/retire", headers=headers)
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    assert db.execute("SELECT count(*) FROM threshold_overrides WHERE patient_id = %s", (patient,)).fetchone() == (0,)
    assert _retained(gateway) == []
    assert api.post(f"{url}/2/retire", headers=headers).status_code == 409


def test_activation_keeps_manual_overrides_of_other_kinds(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(protocol="copd")
    patient = tenant.patients[0]
    headers = headers_for(api_url, tenant)
    api.put(
        f"/api/v1/patients/{patient}/thresholds",
        headers=headers,
        json={"limits": {"body_weight": {"unit": "kg", "red_high": 110}}},
    )
    api.post(f"/api/v1/patients/{patient}/plans", headers=headers, json=a_plan())
    assert api.post(f"/api/v1/patients/{patient}/plans/1/activate", headers=headers).status_code == 200
    rows = db.execute(
        "SELECT kind, source FROM threshold_overrides WHERE patient_id = %s ORDER BY kind", (patient,)
    ).fetchall()
    assert rows == [("body_weight", "manual"), ("spo2", "plan")]
