"""FHIR R4 views of Varde's data: Patient, Observation (vital-signs profile), CarePlan, DetectedIssue (alarms),
Device (measuring devices and home gateways) and Bundles. Pure functions from rows to JSON-ready dicts.

Observations carry LOINC and IEEE 11073 MDC codings and UCUM units. A blood pressure measurement (systolic and
diastolic of one cuff inflation, tied by the reading group) becomes one panel (LOINC 85354-9) with components;
its id is the systolic reading's id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from vitals import KINDS, Kind
from vitals.plan import PlanContent

FHIR_JSON = "application/fhir+json"
LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
NORWEGIAN_NATIONAL_ID = "urn:oid:2.16.578.1.12.4.1.4.1"
BLE_ADDRESS = "urn:varde:device-address"
GATEWAY_ID = "urn:varde:gateway"
VITALSIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
_PROFILE = {
    Kind.SPO2: "http://hl7.org/fhir/StructureDefinition/oxygensat",
    Kind.PULSE_RATE: "http://hl7.org/fhir/StructureDefinition/heartrate",
    Kind.HEART_RATE: "http://hl7.org/fhir/StructureDefinition/heartrate",
    Kind.BODY_TEMPERATURE: "http://hl7.org/fhir/StructureDefinition/bodytemp",
    Kind.BODY_WEIGHT: "http://hl7.org/fhir/StructureDefinition/bodyweight",
    Kind.RESP_RATE: "http://hl7.org/fhir/StructureDefinition/resprate",
}
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
_NOT_VITAL = {Kind.GLUCOSE}
_DEVICE_NS = uuid.UUID("6f1c9a52-3c0e-5b7f-8a43-0d5e2f7b9c11")


@dataclass(frozen=True, slots=True)
class ReadingRow:
    id: UUID
    patient_id: UUID
    gateway_id: str
    kind: str
    value: float
    measured_at: datetime
    received_at: datetime
    device_address: str | None
    device_type: str | None
    device_model: str | None
    group: str | None

    @classmethod
    def columns(cls) -> str:
        return (
            "id, patient_id, gateway_id, kind, value, measured_at, received_at, device_address, device_type, "
            "device_model, grp"
        )


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def device_id(gateway_id: str, address: str) -> str:
    """A FHIR id for a measuring device (the BLE address holds colons, which FHIR ids may not)."""
    return "dev-" + uuid.uuid5(_DEVICE_NS, f"{gateway_id}|{address.upper()}").hex[:24]


def _ref(kind: str, ident: Any) -> dict[str, str]:
    return {"reference": f"{kind}/{ident}"}


def patient(row: Sequence[Any]) -> dict[str, Any]:
    """row: id, display_name, national_id, birth_date, active."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(row[0]),
        "active": bool(row[4]),
        "name": [{"text": row[1]}],
    }
    if row[2]:
        resource["identifier"] = [{"system": NORWEGIAN_NATIONAL_ID, "value": row[2]}]
    if row[3]:
        resource["birthDate"] = row[3].isoformat()
    return resource


def _codings(kind: Kind) -> list[dict[str, str]]:
    info = KINDS[kind]
    codings = [{"system": LOINC, "code": info.loinc, "display": info.name_en}]
    codings += [{"system": LOINC, "code": code} for code in info.extra_loinc]
    if info.mdc_code is not None:
        codings.append({"system": MDC, "code": str(info.mdc_code), "display": info.mdc_ref or info.name_en})
    return codings


def _quantity(kind: Kind, value: float) -> dict[str, Any]:
    info = KINDS[kind]
    return {"value": round(value, max(info.decimals, 1)), "unit": info.unit_display, "system": UCUM, "code": info.unit}


def _base(reading: ReadingRow, kind: Kind, profile: str | None) -> dict[str, Any]:
    category = "laboratory" if kind in _NOT_VITAL else "vital-signs"
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(reading.id),
        "status": "final",
        "category": [
            {"coding": [{"system": CATEGORY, "code": category, "display": category.replace("-", " ").title()}]}
        ],
        "subject": _ref("Patient", reading.patient_id),
        "effectiveDateTime": reading.measured_at.isoformat(),
        "issued": reading.received_at.isoformat(),
    }
    if profile:
        resource["meta"] = {"profile": [profile]}
    if reading.device_address:
        resource["device"] = _ref("Device", device_id(reading.gateway_id, reading.device_address))
    return resource


def observation(reading: ReadingRow) -> dict[str, Any]:
    kind = Kind(reading.kind)
    resource = _base(reading, kind, _PROFILE.get(kind, None if kind in _NOT_VITAL else VITALSIGNS))
    resource["code"] = {"coding": _codings(kind), "text": KINDS[kind].name_en}
    resource["valueQuantity"] = _quantity(kind, reading.value)
    return resource


def bp_panel(systolic: ReadingRow | None, diastolic: ReadingRow | None) -> dict[str, Any]:
    first = systolic or diastolic
    assert first is not None
    resource = _base(first, Kind.BP_SYSTOLIC, "http://hl7.org/fhir/StructureDefinition/bp")
    resource["code"] = {
        "coding": [
            {"system": LOINC, "code": BP_PANEL[0], "display": BP_PANEL[1]},
            {"system": MDC, "code": "150020", "display": "MDC_PRESS_BLD_NONINV"},
        ],
        "text": "Blood pressure",
    }
    components = []
    for kind, reading in ((Kind.BP_SYSTOLIC, systolic), (Kind.BP_DIASTOLIC, diastolic)):
        component: dict[str, Any] = {"code": {"coding": _codings(kind), "text": KINDS[kind].name_en}}
        if reading is not None:
            component["valueQuantity"] = _quantity(kind, reading.value)
        else:
            component["dataAbsentReason"] = {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}]
            }
        components.append(component)
    resource["component"] = components
    return resource


def observations(readings: Iterable[ReadingRow]) -> list[dict[str, Any]]:
    """Readings → Observations, pairing systolic and diastolic of one measurement act into a BP panel."""
    out: list[tuple[datetime, dict[str, Any]]] = []
    pending: dict[tuple[Any, ...], dict[str, ReadingRow]] = {}
    order: list[tuple[Any, ...]] = []
    for reading in readings:
        if reading.kind in (Kind.BP_SYSTOLIC, Kind.BP_DIASTOLIC):
            key = (reading.gateway_id, reading.group or (reading.device_address, reading.measured_at))
            if key not in pending:
                pending[key] = {}
                order.append(key)
            pending[key][reading.kind] = reading
        else:
            out.append((reading.measured_at, observation(reading)))
    for key in order:
        pair = pending[key]
        first = pair.get(Kind.BP_SYSTOLIC) or pair[Kind.BP_DIASTOLIC]
        out.append((first.measured_at, bp_panel(pair.get(Kind.BP_SYSTOLIC), pair.get(Kind.BP_DIASTOLIC))))
    out.sort(key=lambda item: item[0], reverse=True)
    return [resource for _, resource in out]


def gateway_device(row: Sequence[Any]) -> dict[str, Any]:
    """row: id, patient_id, enabled, agent_version, state."""
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": row[0],
        "identifier": [{"system": GATEWAY_ID, "value": row[0]}],
        "status": "active" if row[2] else "inactive",
        "type": {"text": "Home monitoring gateway"},
        "deviceName": [{"name": "Varde home gateway", "type": "user-friendly-name"}],
        "patient": _ref("Patient", row[1]),
    }
    if row[3]:
        resource["version"] = [{"value": row[3]}]
    return resource


def measuring_device(row: Sequence[Any], patient_id: UUID) -> dict[str, Any]:
    """row: gateway_id, address, type, model."""
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": device_id(row[0], row[1]),
        "identifier": [{"system": BLE_ADDRESS, "value": row[1]}],
        "status": "active",
        "type": {"text": row[2].replace("_", " ")},
        "patient": _ref("Patient", patient_id),
        "parent": _ref("Device", row[0]),
    }
    if row[3]:
        resource["modelNumber"] = row[3]
        resource["deviceName"] = [{"name": row[3], "type": "model-name"}]
    return resource


_ISSUE_SEVERITY = {"red": "high", "yellow": "moderate", "missed": "low", "needs_review": "low"}


def detected_issue(row: Sequence[Any]) -> dict[str, Any]:
    """row: id, patient_id, rule, severity, state, opened_at, explanation_en, last_reading_id, acknowledged_at,
    resolved_at, resolution, kind."""
    resource: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": str(row[0]),
        "status": "final" if row[4] == "resolved" else "preliminary",
        "code": {"coding": [{"system": "urn:varde:alarm-rule", "code": row[2]}], "text": row[2]},
        "severity": _ISSUE_SEVERITY.get(row[3], "low"),
        "patient": _ref("Patient", row[1]),
        "identifiedDateTime": row[5].isoformat(),
        "detail": row[6],
    }
    if row[7]:
        resource["implicated"] = [_ref("Observation", row[7])]
    mitigation = []
    if row[8]:
        mitigation.append({"action": {"text": "Acknowledged by the care team"}, "date": row[8].isoformat()})
    if row[9]:
        mitigation.append({"action": {"text": row[10] or "Resolved"}, "date": row[9].isoformat()})
    if mitigation:
        resource["mitigation"] = mitigation
    return resource


_CAREPLAN_STATUS = {"draft": "draft", "active": "active", "retired": "revoked"}
_WEEKDAYS = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}


def care_plan(row: Sequence[Any]) -> dict[str, Any]:
    """row: id, patient_id, version, status, created_at, activated_at, retired_at, body."""
    plan = PlanContent.model_validate(row[7])
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": str(row[0]),
        "status": _CAREPLAN_STATUS[row[3]],
        "intent": "plan",
        "title": f"Egenbehandlingsplan v{row[2]}",
        "subject": _ref("Patient", row[1]),
        "created": row[4].isoformat(),
        "identifier": [{"system": "urn:varde:plan-version", "value": str(row[2])}],
    }
    if plan.diagnosis:
        resource["description"] = plan.diagnosis
    if row[5]:
        resource["period"] = {"start": row[5].isoformat(), **({"end": row[6].isoformat()} if row[6] else {})}
    activities = []
    for item in plan.schedule:
        info = KINDS[item.kind]
        activities.append(
            {
                "detail": {
                    "status": "scheduled" if row[3] == "active" else "not-started",
                    "code": {"coding": _codings(item.kind)[:1], "text": f"Measure {info.name_en.lower()}"},
                    "scheduledTiming": {
                        "repeat": {
                            "dayOfWeek": [d for d in item.weekdays if d in _WEEKDAYS],
                            "timeOfDay": [f"{item.deadline}:00"],
                        }
                    },
                    "description": f"{info.name_nb} før kl. {item.deadline}",
                }
            }
        )
    if activities:
        resource["activity"] = activities
    notes = [{"text": f"[{a.zone}{'/' + a.kind.value if a.kind else ''}] {a.nb} / {a.en}"} for a in plan.advice]
    notes += [{"text": f"Contact: {c.name} ({c.role}) {c.phone}"} for c in plan.contacts]
    resource["note"] = notes
    return resource


def bundle(resources: Sequence[dict[str, Any]], base_url: str, *, matches: int | None = None) -> dict[str, Any]:
    """A searchset Bundle; the first `matches` entries are matches, the rest included resources."""
    matches = len(resources) if matches is None else matches
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "total": matches,
        "entry": [
            {
                "fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match" if i < matches else "include"},
            }
            for i, r in enumerate(resources)
        ],
    }


def capability_statement(base_url: str, software_version: str) -> dict[str, Any]:
    read = [{"code": "read"}]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-01-01",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "software": {"name": "Varde", "version": software_version},
        "implementation": {"description": "Varde clinician API, FHIR R4 read-only view", "url": base_url},
        "rest": [
            {
                "mode": "server",
                "security": {"description": "OAuth2 bearer tokens; access by duty of care; every read audited"},
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": read,
                        "operation": [
                            {
                                "name": "everything",
                                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                            }
                        ],
                    },
                    {"type": "Observation", "interaction": read},
                    {"type": "DetectedIssue", "interaction": read},
                    {"type": "CarePlan", "interaction": [{"code": "search-type"}]},
                    {"type": "Device", "interaction": [{"code": "search-type"}]},
                ],
            }
        ],
    }
