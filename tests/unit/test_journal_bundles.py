"""The record integration's pure parts: document and measurement Bundles (valid FHIR, self-contained, stable
across rebuilds), Norwegian identifiers, redaction of national ids, and retry back-off."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.composition import Composition

from clinician_api.fhir import ReadingRow
from clinician_api.journal import bundles, identity
from clinician_api.journal.delivery import Endpoint
from store.fhir_search import DeviceRow, GatewayRow, IssueRow
from store.journal_documents import Organisation, Practitioner

NATIONAL_ID = "01017012345"
T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
PATIENT = bundles.PatientRow(
    uuid.UUID("11111111-2222-4333-8444-555555555555"), "Kari Nordmann", NATIONAL_ID, None, True
)
GATEWAY = GatewayRow("gw-test-1", PATIENT.id, True, "0.3.0", "online")


def _reading(
    kind: str, value: float, minutes: int, group: str | None = None, address: str = "A4:C1:38:00:00:01"
) -> ReadingRow:
    at = T0 + timedelta(minutes=minutes)
    return ReadingRow(
        uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}{minutes}{group}"),
        PATIENT.id,
        "gw-test-1",
        kind,
        value,
        at,
        at + timedelta(seconds=3),
        address,
        "blood_pressure_monitor" if kind.startswith("bp") else "pulse_oximeter",
        "M-1",
        group,
    )


READINGS = [
    _reading("spo2", 86.0, 0),
    _reading("spo2", 85.0, 10),
    _reading("bp_systolic", 151.0, 5, "g1", "A4:C1:38:00:00:03"),
    _reading("bp_diastolic", 95.0, 5, "g1", "A4:C1:38:00:00:03"),
]
DEVICES = [
    DeviceRow("gw-test-1", "A4:C1:38:00:00:01", "pulse_oximeter", "PO-60"),
    DeviceRow("gw-test-1", "A4:C1:38:00:00:03", "blood_pressure_monitor", None),
]
ALARM_ID = uuid.UUID("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee")
RESOLVER = Practitioner(
    uuid.UUID("99999999-8888-4777-8666-555555555555"), "kari.nurse", "Kari Sykepleier", "1234567", "nurse"
)
ORG = Organisation(uuid.UUID("12121212-3434-4565-8787-909090909090"), "Oslo kommune", "974778874")


def _document(resolution: str = "Ringte pasienten; økte oksygen. <ok> & videre") -> dict[str, Any]:
    alarm = IssueRow(
        ALARM_ID,
        PATIENT.id,
        "threshold.spo2.low",
        "red",
        "resolved",
        T0,
        "SpO2 85 % below 86 %",
        READINGS[1].id,
        T0 + timedelta(minutes=20),
        T0 + timedelta(minutes=30),
        resolution,
        "spo2",
    )
    return bundles.alarm_document(
        bundles.AlarmDocument(
            alarm, PATIENT, RESOLVER, ORG, READINGS, DEVICES, [GATEWAY], explanation_nb="SpO2 85 % under 86 %"
        )
    )


def _resources(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return own + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


def test_alarm_document_is_a_valid_document_bundle_with_the_composition_first() -> None:
    doc = _document()
    Bundle.model_validate(doc)
    assert doc["type"] == "document" and doc["timestamp"] == (T0 + timedelta(minutes=30)).isoformat()
    assert doc["identifier"] == {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{doc['id']}"}
    types = [e["resource"]["resourceType"] for e in doc["entry"]]
    assert types[:2] == ["Composition", "DetectedIssue"]
    assert types.count("Observation") == 3  # two SpO2 and one blood pressure panel
    assert {"Patient", "Practitioner", "Organization", "Device"} <= set(types)
    composition = Composition.model_validate(doc["entry"][0]["resource"])
    assert composition.status == "final"
    assert composition.type.coding[0].code == "34746-8"  # resolved by a nurse: Nurse Note


def test_resolution_note_is_the_section_text_escaped_as_xhtml() -> None:
    composition = _document()["entry"][0]["resource"]
    div = composition["section"][0]["text"]["div"]
    xhtml = '<div xmlns="http://www.w3.org/1999/xhtml">'
    assert div == f"{xhtml}<p>Ringte pasienten; økte oksygen. &lt;ok&gt; &amp; videre</p></div>"


def test_every_reference_in_the_document_resolves_inside_the_bundle() -> None:
    doc = _document()
    resources = _resources(doc)
    references = _references([e["resource"] for e in doc["entry"]])
    assert references and all(r in resources for r in references), [r for r in references if r not in resources]
    composition = doc["entry"][0]["resource"]
    assert resources[composition["subject"]["reference"]]["resourceType"] == "Patient"
    assert resources[composition["custodian"]["reference"]]["resourceType"] == "Organization"
    assert resources[composition["author"][0]["reference"]]["resourceType"] == "Practitioner"
    issue = doc["entry"][1]["resource"]
    assert {resources[r["reference"]]["resourceType"] for r in issue["implicated"]} == {"Observation"}


def test_norwegian_identifiers_for_patient_organisation_and_practitioner() -> None:
    by_type = {r["resourceType"]: r for r in _resources(_document()).values()}
    assert by_type["Patient"]["identifier"][0] == {
        "use": "official",
        "system": "urn:oid:2.16.578.1.12.4.1.4.1",
        "value": NATIONAL_ID,
    }
    assert by_type["Organization"]["identifier"] == [
        {"system": "urn:oid:2.16.578.1.12.4.1.4.101", "value": "974778874"}
    ]
    assert by_type["Practitioner"]["identifier"][0] == {"system": "urn:oid:2.16.578.1.12.4.1.4.4", "value": "1234567"}
    no_basis = "http://hl7.no/fhir/StructureDefinition/no-basis-"
    for rtype in ("Patient", "Organization", "Practitioner"):
        assert by_type[rtype]["meta"]["profile"] == [no_basis + rtype], rtype
    name = by_type["Practitioner"]["name"][0]
    assert (name["family"], name["given"], name["text"]) == ("Sykepleier", ["Kari"], "Kari Sykepleier")


def test_document_rebuilt_later_is_identical() -> None:
    first, again = _document(), _document()
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    assert first["id"] == str(bundles.document_id(ALARM_ID))


def test_measurement_transaction_creates_observations_and_refers_to_the_records_own_patient() -> None:
    bundle = bundles.measurement_bundle(uuid.uuid4(), "transaction", [PATIENT], READINGS, DEVICES, [GATEWAY], T0)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "transaction" and bundles.observation_count(bundle) == 3
    assert "Patient" not in {e["resource"]["resourceType"] for e in bundle["entry"]}  # never created there
    patient_ref = {
        "reference": f"Patient?identifier=urn:oid:2.16.578.1.12.4.1.4.1|{NATIONAL_ID}",
        "identifier": {"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": NATIONAL_ID},
    }
    observations = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    for entry in observations:
        reading_id = entry["resource"]["identifier"][0]["value"]
        assert entry["request"]["ifNoneExist"] == f"identifier=urn:varde:reading|{reading_id}"
        assert entry["resource"]["category"][0]["coding"][0]["code"] == "vital-signs"
        assert entry["resource"]["subject"] == patient_ref
    devices = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Device"]
    assert devices and all(d["patient"] == patient_ref for d in devices)
    local = [r for r in _references([e["resource"] for e in bundle["entry"]]) if not r.startswith("Patient?")]
    assert all(r in _resources(bundle) for r in local)


def test_a_d_number_is_sent_with_the_d_number_system() -> None:
    d_number = bundles.PatientRow(PATIENT.id, "Kari Nordmann", "41017012345", None, True)
    bundle = bundles.measurement_bundle(uuid.uuid4(), "transaction", [d_number], READINGS[:1], DEVICES, [GATEWAY], T0)
    observation = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    assert observation["subject"]["reference"] == "Patient?identifier=urn:oid:2.16.578.1.12.4.1.4.2|41017012345"


def test_the_document_is_in_bokmal_with_english_as_translation() -> None:
    doc = _document()
    composition, issue = doc["entry"][0]["resource"], doc["entry"][1]["resource"]
    assert composition["language"] == "nb" and composition["title"].endswith("løst")
    assert composition["subject"]["identifier"] == {"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": NATIONAL_ID}
    assert issue["detail"] == "SpO2 85 % under 86 %" and issue["language"] == "nb"
    translation = issue["_detail"]["extension"][0]
    assert translation["url"] == "http://hl7.org/fhir/StructureDefinition/translation"
    assert {"url": "content", "valueString": "SpO2 85 % below 86 %"} in translation["extension"]
    measurements = composition["section"][1]["text"]["div"]
    assert measurements.index("måling(er) bak alarmen: SpO2 85 % under 86 %") < measurements.index('lang="en"')


def test_measurement_collection_has_no_requests_and_the_same_batch_gets_the_same_identifier() -> None:
    sub = uuid.uuid4()
    one = bundles.measurement_bundle(sub, "collection", [PATIENT], READINGS, DEVICES, [GATEWAY], T0)
    two = bundles.measurement_bundle(sub, "collection", [PATIENT], list(reversed(READINGS)), DEVICES, [GATEWAY], T0)
    Bundle.model_validate(one)
    assert one["type"] == "collection" and all("request" not in e for e in one["entry"])
    assert one["identifier"] == two["identifier"]
    other = bundles.measurement_bundle(sub, "collection", [PATIENT], READINGS[:2], DEVICES, [GATEWAY], T0)
    assert other["identifier"] != one["identifier"]


def test_patient_without_national_id_is_referred_to_by_varde_id() -> None:
    anonymous = bundles.PatientRow(PATIENT.id, "Ola", None, None, True)
    bundle = bundles.measurement_bundle(uuid.uuid4(), "transaction", [anonymous], READINGS[:1], DEVICES, [GATEWAY], T0)
    observation = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    assert observation["subject"]["reference"] == f"Patient?identifier=urn:varde:patient|{PATIENT.id}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("patient 01017012345 not found", "patient *********** not found"),
        ("fnr 010170 12345", "fnr ***********"),
        ("org 974778874 and HPR 1234567", "org 974778874 and HPR 1234567"),
        ("id 123456789012 is longer", "id 123456789012 is longer"),
    ],
)
def test_national_ids_are_masked_in_error_text(text: str, expected: str) -> None:
    assert identity.redact(text) == expected


def test_backoff_doubles_from_the_base_and_stops_at_the_cap() -> None:
    endpoint = Endpoint(uuid.uuid4(), "ehr", "http://127.0.0.1:1", None, 10, 2.0, 30.0, 5.0)
    for attempt, nominal in ((1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 30.0), (12, 30.0)):
        delays = [endpoint.backoff(attempt) for _ in range(50)]
        assert all(0.8 * nominal <= d <= 1.2 * nominal for d in delays), (attempt, min(delays), max(delays))
