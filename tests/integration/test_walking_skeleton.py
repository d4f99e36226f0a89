"""The thinnest real path through every stage: gateway → broker → ingest → rules → API."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.stack_plugin import Tenant, login, publish, wait_for
from vitals import DeviceRef, Envelope, Reading, readings_topic

pytestmark = pytest.mark.integration


def _envelope(gateway_id: str, spo2: float, pulse: float = 72.0) -> Envelope:
    now = datetime.now(UTC).replace(microsecond=0)
    device = DeviceRef(address="A4:C1:38:00:00:01", type="pulse_oximeter", model="PO-60")
    return Envelope(
        gateway_id=gateway_id,
        sent_at=now,
        readings=(
            Reading(id=uuid.uuid4(), kind="spo2", value=spo2, unit="%", measured_at=now, device=device),
            Reading(id=uuid.uuid4(), kind="pulse_rate", value=pulse, unit="/min", measured_at=now, device=device),
        ),
    )


def test_low_spo2_published_by_gateway_appears_as_red_alarm_in_api(make_tenant: Any, api_url: str) -> None:
    tenant: Tenant = make_tenant(protocol="copd")
    gateway = tenant.gateways[0]
    assert publish(gateway, readings_topic(gateway.gateway_id), _envelope(gateway.gateway_id, 80.0).to_json()) < 128
    headers = login(api_url, tenant.nurse, tenant.nurse_password)

    def alarms() -> list[dict[str, Any]]:
        response = httpx.get(f"{api_url}/api/v1/alarms", headers=headers, params={"lang": "en"})
        response.raise_for_status()
        return [a for a in response.json()["items"] if a["patient_id"] == str(tenant.patients[0])]

    found = wait_for(alarms, what="the SpO2 alarm")
    spo2 = [a for a in found if a["rule"] == "threshold.spo2.low"]
    assert len(spo2) == 1
    assert spo2[0]["severity"] == "red"
    assert spo2[0]["last_value"] == 80.0
    assert "80" in spo2[0]["explanation"]


def test_repeated_breaches_update_one_alarm_instead_of_opening_another(make_tenant: Any, api_url: str) -> None:
    tenant: Tenant = make_tenant(protocol="copd")
    gateway = tenant.gateways[0]
    topic = readings_topic(gateway.gateway_id)
    for value in (84.0, 82.0, 81.0):
        publish(gateway, topic, _envelope(gateway.gateway_id, value).to_json())
    headers = login(api_url, tenant.nurse, tenant.nurse_password)

    def spo2_alarm() -> dict[str, Any] | None:
        items = httpx.get(f"{api_url}/api/v1/alarms", headers=headers).json()["items"]
        mine = [a for a in items if a["rule"] == "threshold.spo2.low" and a["patient_id"] == str(tenant.patients[0])]
        assert len(mine) <= 1
        return mine[0] if mine and mine[0]["count"] == 3 else None

    alarm = wait_for(spo2_alarm, what="three readings counted on one alarm")
    assert alarm["last_value"] == 81.0


def test_envelope_from_mosquitto_pub_is_stored_and_other_gateways_login_is_refused(
    make_tenant: Any, api_url: str, stack: dict[str, Any]
) -> None:
    import subprocess

    tenant: Tenant = make_tenant(patients=2)
    own, other = tenant.gateways
    payload = _envelope(own.gateway_id, 97.0).to_json().decode()
    args = [
        "mosquitto_pub",
        "-V",
        "mqttv5",
        "-h",
        own.host,
        "-p",
        str(own.port),
        "-q",
        "1",
        "-d",
        "-t",
        readings_topic(own.gateway_id),
        "-m",
        payload,
    ]
    accepted = subprocess.run(
        [*args, "-i", own.gateway_id, "-u", own.gateway_id, "-P", own.password],
        capture_output=True,
        text=True,
        timeout=20,
    )
    refused = subprocess.run(
        [*args, "-i", other.gateway_id, "-u", other.gateway_id, "-P", other.password],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert "received PUBACK" in accepted.stdout and "RC:135" not in accepted.stdout
    assert "RC:135" in refused.stdout  # 0x87 Not authorized
    headers = login(api_url, tenant.nurse, tenant.nurse_password)
    expected = {r["id"] for r in json.loads(payload)["readings"]}

    def stored() -> set[str]:
        response = httpx.get(f"{api_url}/api/v1/patients/{own.patient_id}/measurements", headers=headers)
        return {m["id"] for m in response.json()["items"]} if response.status_code == 200 else set()

    assert wait_for(lambda: stored() == expected and stored(), what="the readings through the API") == expected
