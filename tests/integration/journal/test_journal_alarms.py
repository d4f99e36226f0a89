"""Resolved alarms journaled to the patient's record: the document Bundle that arrives, the dead letter when the
record system refuses it (with its reason in the API), and the manual retry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.composition import Composition
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner

from tests.integration.api.support import add_user, audit_rows, headers_for, insert_alarm, insert_readings
from tests.integration.journal.receiver import RecordSystem
from tests.integration.journal.support import Journaled, outbox_rows
from tests.stack_plugin import login, publish, wait_for
from vitals import DeviceRef, Envelope, Reading, readings_topic

pytestmark = pytest.mark.integration

MODELS: dict[str, Any] = {
    "Composition": Composition,
    "DetectedIssue": DetectedIssue,
    "Observation": Observation,
    "Patient": Patient,
    "Practitioner": Practitioner,
    "Organization": Organization,
}


def _resolve(api_url: str, headers: dict[str, str], alarm_id: str, text: str) -> None:
    response = httpx.post(f"{api_url}/api/v1/alarms/{alarm_id}/resolve", headers=headers, json={"resolution": text})
    assert response.status_code == 200, response.text


def test_reading_to_alarm_to_resolution_arrives_as_a_document_in_the_record(
    journaled_tenant: Any, record_system: RecordSystem, api_url: str, db: psycopg.Connection[Any]
) -> None:
    journaled: Journaled = journaled_tenant(protocol="copd")
    tenant, gateway = journaled.tenant, journaled.tenant.gateways[0]
    now = datetime.now(UTC).replace(microsecond=0)
    device = DeviceRef(address="A4:C1:38:00:00:07", type="pulse_oximeter", model="PO-60")
    reading_id = uuid.uuid4()
    envelope = Envelope(
        gateway_id=gateway.gateway_id,
        sent_at=now,
        readings=(Reading(id=reading_id, kind="spo2", value=80.0, unit="%", measured_at=now, device=device),),
    )
    assert publish(gateway, readings_topic(gateway.gateway_id), envelope.to_json()) < 128
    headers = login(api_url, tenant.nurse, tenant.nurse_password)

    def red_alarm() -> dict[str, Any] | None:
        items = httpx.get(f"{api_url}/api/v1/alarms", headers=headers).json()["items"]
        return next((a for a in items if a["rule"] == "threshold.spo2.low"), None)

    alarm = wait_for(red_alarm, what="the SpO2 alarm from ingest")
    note = "Ringte pasienten, økte O2 til 2 l/min; ny måling om 2 t."
    _resolve(api_url, headers, alarm["id"], note)

    doc = wait_for(lambda: next(iter(record_system.state.documents.values()), None), 20, what="the document")
    Bundle.model_validate(doc)
    assert record_system.state.invalid == []
    resources = {e["fullUrl"]: e["resource"] for e in doc["entry"]}
    for resource in resources.values():
        if resource["resourceType"] in MODELS:
            MODELS[resource["resourceType"]].model_validate(resource)
    composition = doc["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition" and doc["type"] == "document"
    assert note in composition["section"][0]["text"]["div"]
    issue = resources[composition["section"][0]["entry"][0]["reference"]]
    assert issue["identifier"] == [{"system": "urn:varde:alarm", "value": alarm["id"]}]
    assert issue["status"] == "final" and issue["severity"] == "high"
    observation = resources[issue["implicated"][0]["reference"]]
    assert observation["id"] == str(reading_id) and observation["valueQuantity"]["value"] == 80.0
    assert {c["code"] for c in observation["code"]["coding"]} >= {"59408-5", "150456"}
    patient = resources[composition["subject"]["reference"]]
    assert patient["identifier"][0] == {
        "use": "official",
        "system": "urn:oid:2.16.578.1.12.4.1.4.1",
        "value": journaled.national_ids[0],
    }
    assert composition["language"] == "nb" and issue["language"] == "nb"
    organisation = resources[composition["custodian"]["reference"]]
    assert organisation["identifier"] == [{"system": "urn:oid:2.16.578.1.12.4.1.4.101", "value": journaled.org_number}]
    practitioner = resources[composition["author"][0]["reference"]]
    assert {"system": "urn:varde:user", "value": tenant.nurse} in practitioner["identifier"]

    (row,) = wait_for(
        lambda: [r for r in outbox_rows(db, journaled.endpoint_id) if r["state"] == "delivered"] or None,
        what="the outbox entry marked delivered",
    )
    assert row["kind"] == "alarm_document" and str(row["alarm_id"]) == alarm["id"] and row["last_status"] == 201
    listed = httpx.get(f"{api_url}/api/v1/journal/entries", headers=headers, params={"state": "delivered"}).json()
    assert [e["id"] for e in listed["items"]] == [str(row["id"])]


def test_alarm_of_a_team_without_record_system_is_not_journaled(
    make_tenant: Any, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant()
    alarm_id = insert_alarm(db, tenant.patients[0])
    _resolve(api_url, headers_for(api_url, tenant), str(alarm_id), "Sett og vurdert.")
    assert db.execute("SELECT count(*) FROM journal_outbox WHERE alarm_id = %s", (alarm_id,)).fetchone() == (0,)


def test_refused_document_is_dead_lettered_with_the_reason_in_the_api_and_a_manual_retry_delivers_it(
    journaled_tenant: Any,
    record_system: RecordSystem,
    make_tenant: Any,
    settings: Any,
    api_url: str,
    db: psycopg.Connection[Any],
) -> None:
    journaled: Journaled = journaled_tenant()
    tenant = journaled.tenant
    national_id = journaled.national_ids[0]
    record_system.state.reject_message = f"Pasient {national_id} er ikke registrert i journalen"
    record_system.set_mode("reject")
    gateway = tenant.gateways[0]
    insert_readings(db, gateway.patient_id, gateway.gateway_id, "spo2", [84.0], [datetime.now(UTC)])
    alarm_id = insert_alarm(db, tenant.patients[0], severity="red", value=84.0)
    headers = headers_for(api_url, tenant)
    _resolve(api_url, headers, str(alarm_id), "Vurdert, ingen tiltak.")

    def failed() -> list[dict[str, Any]] | None:
        response = httpx.get(f"{api_url}/api/v1/journal/entries", headers=headers, params={"state": "failed"})
        assert response.status_code == 200, response.text
        return response.json()["items"] or None

    (entry,) = wait_for(failed, 20, what="the refused entry to be dead-lettered")
    assert entry["alarm_id"] == str(alarm_id) and entry["attempts"] == 1 and entry["last_status"] == 422
    assert "er ikke registrert i journalen" in entry["last_error"]
    assert national_id not in entry["last_error"]
    assert entry["patients"] == [
        {
            "id": str(tenant.patients[0]),
            "display_name": f"Pasient {tenant.team.removeprefix('team-')}-0",
            "team_id": str(tenant.team_id),
        }
    ]
    assert record_system.state.documents == {}
    assert audit_rows(db, user_id=_user_id(db, tenant.nurse), action="list", patient_id=tenant.patients[0])

    other = make_tenant()
    other_headers = headers_for(api_url, other)
    hidden = httpx.get(f"{api_url}/api/v1/journal/entries/{entry['id']}", headers=other_headers)
    assert hidden.status_code == 404
    assert httpx.get(f"{api_url}/api/v1/journal/entries", headers=other_headers).json()["items"] == []
    assert httpx.post(f"{api_url}/api/v1/journal/entries/{entry['id']}/retry", headers=other_headers).status_code == 404
    admin, password, _ = add_user(settings, "admin", [tenant.team])
    admin_view = httpx.get(
        f"{api_url}/api/v1/journal/entries/{entry['id']}", headers=login(api_url, admin, password)
    ).json()
    assert admin_view["state"] == "failed" and admin_view["patients"] == []

    record_system.set_mode("up")
    retried = httpx.post(f"{api_url}/api/v1/journal/entries/{entry['id']}/retry", headers=headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["state"] == "pending"
    wait_for(lambda: len(record_system.state.documents) == 1, 20, what="the retried document")
    done = httpx.get(f"{api_url}/api/v1/journal/entries/{entry['id']}", headers=headers).json()
    assert done["state"] == "delivered" and done["last_error"] is None
    again = httpx.post(f"{api_url}/api/v1/journal/entries/{entry['id']}/retry", headers=headers)
    assert again.status_code == 409
    assert audit_rows(db, action="journal_retry", patient_id=tenant.patients[0])


def _user_id(db: psycopg.Connection[Any], username: str) -> Any:
    row = db.execute("SELECT id FROM users WHERE username = %s", (username,)).fetchone()
    assert row is not None
    return row[0]
