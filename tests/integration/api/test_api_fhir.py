"""FHIR R4 export: every resource validated with fhir.resources (R4B models, which R4 JSON satisfies for these
resources), codings and units checked, same access rules and audit as the rest of the API."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from tests.integration.api.support import TwoTeams, audit_rows, headers_for, insert_alarm, insert_readings
from tests.stack_plugin import Tenant

pytestmark = pytest.mark.integration

MODELS = {
    "Patient": Patient,
    "Observation": Observation,
    "CarePlan": CarePlan,
    "DetectedIssue": DetectedIssue,
    "Device": Device,
    "Bundle": Bundle,
}


def _fhir(api: httpx.Client, url: str, headers: dict[str, str]) -> dict[str, Any]:
    response = api.get(url, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    doc = dict(response.json())
    MODELS[doc["resourceType"]].model_validate(doc)
    return doc


@pytest.fixture
def patient_with_data(
    make_tenant: Any, db: psycopg.Connection[Any], api: httpx.Client, api_url: str
) -> tuple[Tenant, dict[str, Any]]:
    from tests.integration.api.support import a_plan

    tenant: Tenant = make_tenant(protocol="copd")
    gw = tenant.gateways[0]
    pid = gw.patient_id
    national_id = f"0101{secrets.randbelow(10**7):07d}"
    db.execute("UPDATE patients SET national_id = %s, birth_date = '1970-01-01' WHERE id = %s", (national_id, pid))
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    ids = {
        "spo2": insert_readings(db, pid, gw.gateway_id, "spo2", [93.0], [t])[0],
        "weight": insert_readings(
            db, pid, gw.gateway_id, "body_weight", [81.4], [t], device="A4:C1:38:00:00:02", device_type="weight_scale"
        )[0],
        "sys": insert_readings(
            db,
            pid,
            gw.gateway_id,
            "bp_systolic",
            [141.0],
            [t],
            groups=["g1"],
            device="A4:C1:38:00:00:03",
            device_type="blood_pressure_monitor",
        )[0],
        "dia": insert_readings(
            db,
            pid,
            gw.gateway_id,
            "bp_diastolic",
            [88.0],
            [t],
            groups=["g1"],
            device="A4:C1:38:00:00:03",
            device_type="blood_pressure_monitor",
        )[0],
        "glucose": insert_readings(db, pid, gw.gateway_id, "glucose", [6.1], [t - timedelta(hours=1)])[0],
    }
    ids["alarm"] = insert_alarm(db, pid, severity="red")
    ids["national_id"] = national_id
    headers = headers_for(api_url, tenant)
    api.post(f"/api/v1/patients/{pid}/plans", headers=headers, json=a_plan())
    return tenant, ids


def test_patient_and_vital_sign_observations_are_valid_fhir(
    patient_with_data: tuple[Tenant, dict[str, Any]], api: httpx.Client, api_url: str
) -> None:
    tenant, ids = patient_with_data
    pid = tenant.patients[0]
    headers = headers_for(api_url, tenant)
    patient = _fhir(api, f"/fhir/Patient/{pid}", headers)
    assert patient["identifier"][0] == {
        "use": "official",
        "system": "urn:oid:2.16.578.1.12.4.1.4.1",
        "value": ids["national_id"],
    }

    spo2 = _fhir(api, f"/fhir/Observation/{ids['spo2']}", headers)
    assert spo2["category"][0]["coding"][0]["code"] == "vital-signs"
    codes = {(c["system"], c["code"]) for c in spo2["code"]["coding"]}
    assert {
        ("http://loinc.org", "59408-5"),
        ("http://loinc.org", "2708-6"),
        ("urn:iso:std:iso:11073:10101", "150456"),
    } <= codes
    assert spo2["valueQuantity"] == {"value": 93.0, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
    assert spo2["subject"]["reference"] == f"Patient/{pid}"
    assert spo2["device"]["reference"].startswith("Device/dev-")

    bp = _fhir(api, f"/fhir/Observation/{ids['sys']}", headers)
    assert bp["code"]["coding"][0]["code"] == "85354-9"
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in bp["component"]}
    assert components["8480-6"]["value"] == 141.0 and components["8462-4"]["value"] == 88.0
    assert components["8480-6"]["code"] == "mm[Hg]" and components["8480-6"]["system"] == "http://unitsofmeasure.org"
    assert api.get(f"/fhir/Observation/{ids['dia']}", headers=headers).status_code == 404

    glucose = _fhir(api, f"/fhir/Observation/{ids['glucose']}", headers)
    # No sample type reported: "in Blood", not the capillary code a glucose meter would claim by default.
    assert glucose["valueQuantity"]["code"] == "mmol/L" and glucose["code"]["coding"][0]["code"] == "15074-8"

    weights = _fhir(api, f"/fhir/Patient/{pid}/Observation?code=http://loinc.org|29463-7", headers)
    assert [e["resource"]["valueQuantity"]["code"] for e in weights["entry"]] == ["kg"]
    since = (datetime.now(UTC) - timedelta(hours=1, minutes=30)).isoformat().replace("+00:00", "Z")
    recent = _fhir(api, f"/fhir/Patient/{pid}/Observation?date=ge{since}", headers)
    assert recent["total"] == 3  # spo2, weight, one BP panel; glucose is older


def test_everything_bundle_holds_each_resource_type_and_validates(
    patient_with_data: tuple[Tenant, dict[str, Any]], api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant, ids = patient_with_data
    pid = tenant.patients[0]
    headers = headers_for(api_url, tenant)
    bundle = _fhir(api, f"/fhir/Patient/{pid}/$everything", headers)
    assert bundle["type"] == "searchset"
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        MODELS[resource["resourceType"]].model_validate(resource)
        by_type.setdefault(resource["resourceType"], []).append(resource)
    assert set(by_type) == {"Patient", "Observation", "DetectedIssue", "CarePlan", "Device"}
    assert len(by_type["Observation"]) == 4  # spo2, weight, glucose and the BP panel
    issue = by_type["DetectedIssue"][0]
    assert (
        issue["id"] == str(ids["alarm"])
        and issue["severity"] == "high"
        and issue["patient"]["reference"] == f"Patient/{pid}"
    )
    plan = by_type["CarePlan"][0]
    assert plan["status"] == "draft" and plan["activity"][0]["detail"]["scheduledTiming"]["repeat"]["dayOfWeek"]
    devices = {d["id"]: d for d in by_type["Device"]}
    gateway = devices[tenant.gateways[0].gateway_id]
    children = [d for d in devices.values() if d.get("parent") == {"reference": f"Device/{gateway['id']}"}]
    assert len(children) == 3
    referenced = {o["device"]["reference"] for o in by_type["Observation"]}
    assert referenced <= {f"Device/{d}" for d in devices}

    for path in ("DetectedIssue", "CarePlan", "Device"):
        _fhir(api, f"/fhir/Patient/{pid}/{path}", headers)
    _fhir(api, f"/fhir/DetectedIssue/{ids['alarm']}", headers)
    everything_audit = [r for r in audit_rows(db, patient_id=pid) if r["resource"].endswith("$everything")]
    assert everything_audit and everything_audit[-1]["outcome"] == "ok"


def test_fhir_reads_of_another_teams_patient_are_404(two_teams: TwoTeams, api: httpx.Client) -> None:
    t = two_teams
    for url in (
        f"/fhir/Patient/{t.b.patients[0]}",
        f"/fhir/Patient/{t.b.patients[0]}/$everything",
        f"/fhir/Observation/{t.b_reading}",
        f"/fhir/DetectedIssue/{t.b_alarm}",
    ):
        assert api.get(url, headers=t.a_headers).status_code == 404


def test_capability_statement_is_public_and_valid(api: httpx.Client) -> None:
    response = api.get("/fhir/metadata")
    assert response.status_code == 200
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1"
