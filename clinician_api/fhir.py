"""FHIR R4 views of Varde's data: Patient, Observation (vital-signs profile), CarePlan, DetectedIssue (alarms),
Device (measuring devices and home gateways) and Bundles. Pure functions from rows to JSON-ready dicts.

Observations carry LOINC and IEEE 11073 MDC codings (chosen in `fhir_coding` by kind, device type and glucose
sample type) and UCUM units at the stored precision. A blood pressure measurement (systolic, diastolic and mean of
one cuff inflation, tied by the reading group) becomes one panel (LOINC 85354-9) with components; its id is the
systolic reading's id. Patients claim no-basis-Patient, measuring devices the PHD IG's PhdDevice. Also
QuestionnaireResponse, EpisodeOfCare (episodes of follow-up), searchset Bundles and OperationOutcome.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from clinician_api import fhir_coding as codes
from store.episodes import Episode
from store.fhir_search import DeviceRow, GatewayRow, IssueRow, PatientRow, ResponseRow
from store.plans import PlanRow
from store.readings import StoredReading
from vitals import KINDS, Kind
from vitals.plan import PlanContent
from vitals.vocabulary import Severity

FHIR_JSON = "application/fhir+json"
LOINC = codes.LOINC
MDC = codes.MDC
UCUM = "http://unitsofmeasure.org"
CATEGORY = codes.CATEGORY
NORWEGIAN_NATIONAL_ID = codes.FODSELSNUMMER
BLE_ADDRESS = "urn:varde:device-address"
GATEWAY_ID = "urn:varde:gateway"
VITALSIGNS = codes.VITALSIGNS
BP_PANEL = codes.BP_PANEL
BP_KINDS = tuple(k.value for k in codes.BP_COMPONENT_KINDS)
_DEVICE_NS = uuid.UUID("6f1c9a52-3c0e-5b7f-8a43-0d5e2f7b9c11")
_SIGNIFICANT = 12
"""Values leave at the precision they were stored with; only binary noise of a unit conversion (36.99999999999999)
is cut, at 12 significant digits."""


ReadingRow = StoredReading
"""A stored reading as the Observation mapping reads it (store owns the row and its columns)."""


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def device_id(gateway_id: str, address: str) -> str:
    """A FHIR id for a measuring device (the BLE address holds colons, which FHIR ids may not)."""
    return "dev-" + uuid.uuid5(_DEVICE_NS, f"{gateway_id}|{address.upper()}").hex[:24]


def _ref(kind: str, ident: Any) -> dict[str, str]:
    return {"reference": f"{kind}/{ident}"}


def _meta(profile: str | None = None, last_updated: datetime | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if last_updated is not None:
        meta["lastUpdated"] = last_updated.isoformat()
    if profile:
        meta["profile"] = [profile]
    return meta


def human_name(display_name: str) -> dict[str, Any]:
    """A HumanName from the one name Varde keeps: the last word is the family name, the words before it given
    names ("Kari Nordmann" → given Kari, family Nordmann); `text` keeps the name as written."""
    words = display_name.split()
    name: dict[str, Any] = {"use": "official", "text": display_name}
    if len(words) >= 2:
        name["family"] = words[-1]
        name["given"] = words[:-1]
    elif words:
        name["family"] = words[0]
    return name


def national_identifier(number: str) -> dict[str, str]:
    """The person number with the system its digits say it is (fødselsnummer, D-nummer or H-nummer)."""
    return {"use": "official", "system": codes.national_id_system(number), "value": number}


def patient(row: PatientRow) -> dict[str, Any]:
    """row: id, display_name, national_id, birth_date, active[, updated_at]."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(row.id),
        "meta": _meta(codes.NO_BASIS_PATIENT, row.updated_at),
        "active": bool(row.active),
        "name": [human_name(row.display_name)],
    }
    if row.national_id:
        resource["identifier"] = [national_identifier(row.national_id)]
    if row.birth_date:
        resource["birthDate"] = row.birth_date.isoformat()
    return resource


def exact_value(value: float) -> float:
    """The stored value as the device gave it (82.35 stays 82.35), without the noise of a unit conversion."""
    return float(f"{value:.{_SIGNIFICANT}g}")


def _quantity(kind: Kind, value: float) -> dict[str, Any]:
    info = KINDS[kind]
    return {"value": exact_value(value), "unit": info.unit_display, "system": UCUM, "code": info.unit}


def _base(reading: ReadingRow, code: codes.ObservationCode) -> dict[str, Any]:
    display = {"vital-signs": "Vital Signs", "laboratory": "Laboratory"}[code.category]
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(reading.id),
        "meta": _meta(code.profile, reading.received_at),
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": code.category, "display": display}]}],
        "code": {"coding": [c.as_fhir() for c in code.codings], "text": code.text},
        "subject": _ref("Patient", reading.patient_id),
        "effectiveDateTime": reading.measured_at.isoformat(),
        "issued": reading.received_at.isoformat(),
        "performer": [_ref("Patient", reading.patient_id)],
    }
    if reading.device_address:
        resource["device"] = _ref("Device", device_id(reading.gateway_id, reading.device_address))
    return resource


def observation(reading: ReadingRow) -> dict[str, Any]:
    """One reading as an Observation (a blood pressure reading alone becomes a panel of one component)."""
    if reading.kind in BP_KINDS:
        return bp_panel({Kind(reading.kind): reading})
    kind = Kind(reading.kind)
    resource = _base(reading, codes.observation_code(kind, reading.device_type, reading.flags))
    resource["valueQuantity"] = _quantity(kind, reading.value)
    return resource


_ABSENT = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}]}


def bp_panel(parts: dict[Kind, ReadingRow]) -> dict[str, Any]:
    """One cuff inflation as the vital-signs blood pressure panel (85354-9): systolic and diastolic components
    (data-absent when missing, as the bp profile requires both) and the mean arterial pressure when measured.
    The panel's id is the systolic reading's (else the first reading's)."""
    anchor = next(parts[k] for k in codes.BP_COMPONENT_KINDS if k in parts)
    resource = _base(anchor, codes.observation_code(Kind.BP_SYSTOLIC, anchor.device_type))
    components = []
    for kind in codes.BP_COMPONENT_KINDS:
        reading = parts.get(kind)
        if reading is None and kind == Kind.BP_MEAN:
            continue
        component: dict[str, Any] = {"code": {"coding": codes.component_codings(kind), "text": KINDS[kind].name_en}}
        if reading is not None:
            component["valueQuantity"] = _quantity(kind, reading.value)
        else:
            component["dataAbsentReason"] = _ABSENT
        components.append(component)
    resource["component"] = components
    return resource


def bp_key(reading: ReadingRow) -> tuple[Any, ...]:
    """What ties the components of one blood pressure measurement together."""
    return (reading.patient_id, reading.gateway_id, reading.group or (reading.device_address, reading.measured_at))


def observations(readings: Iterable[ReadingRow]) -> list[dict[str, Any]]:
    """Readings → Observations, newest first; systolic, diastolic and mean of one measurement act become one panel."""
    out: list[tuple[datetime, str, dict[str, Any]]] = []
    pending: dict[tuple[Any, ...], dict[Kind, ReadingRow]] = {}
    for reading in readings:
        if reading.kind in BP_KINDS:
            pending.setdefault(bp_key(reading), {})[Kind(reading.kind)] = reading
        else:
            out.append((reading.measured_at, str(reading.id), observation(reading)))
    for parts in pending.values():
        panel = bp_panel(parts)
        anchor = next(parts[k] for k in codes.BP_COMPONENT_KINDS if k in parts)
        out.append((anchor.measured_at, panel["id"], panel))
    out.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [resource for _, _, resource in out]


def gateway_device(row: GatewayRow) -> dict[str, Any]:
    """row: id, patient_id, enabled, agent_version, state."""
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": row.id,
        "identifier": [{"system": GATEWAY_ID, "value": row.id}],
        "status": "active" if row.enabled else "inactive",
        "type": {"text": "Home monitoring gateway"},
        "deviceName": [{"name": "Varde home gateway", "type": "user-friendly-name"}],
        "patient": _ref("Patient", row.patient_id),
    }
    if row.agent_version:
        resource["version"] = [{"value": row.agent_version}]
    return resource


def measuring_device(row: DeviceRow, patient_id: UUID) -> dict[str, Any]:
    """row: gateway_id, address, type, model. Identified after the PHD IG: the Bluetooth address (BTMAC) and
    Varde's own address identifier; typed as an 11073 MDS with the device's specialization."""
    address = str(row.address).upper()
    btmac = {"coding": [{"system": codes.PHD_IDENTIFIER_TYPES, "code": "BTMAC", "display": "Bluetooth MAC address"}]}
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": device_id(row.gateway_id, row.address),
        "meta": _meta(codes.PHD_DEVICE_PROFILE),
        "identifier": [
            {"type": btmac, "system": codes.BLUETOOTH_ADDRESS, "value": address.replace(":", "-")},
            {"system": BLE_ADDRESS, "value": row.address},
        ],
        "status": "active",
        "type": {"coding": [codes.MDS_TYPE.as_fhir()], "text": row.type.replace("_", " ")},
        "patient": _ref("Patient", patient_id),
        "parent": _ref("Device", row.gateway_id),
    }
    specialization = codes.DEVICE_SPECIALIZATIONS.get(row.type)
    if specialization is not None:
        resource["specialization"] = [{"systemType": {"coding": [specialization.as_fhir()]}}]
    if row.model:
        resource["modelNumber"] = row.model
        resource["deviceName"] = [{"name": row.model, "type": "model-name"}]
    return resource


_ISSUE_SEVERITY: dict[Severity, str] = {"red": "high", "yellow": "moderate", "missed": "low", "needs_review": "low"}
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"


def translated(nb: str, en: str | None) -> tuple[str, dict[str, Any] | None]:
    """Bokmål text with its English translation as the FHIR translation extension (for a primitive's `_x`)."""
    if not en or en == nb:
        return nb, None
    extension = {
        "url": TRANSLATION,
        "extension": [{"url": "lang", "valueCode": "en"}, {"url": "content", "valueString": en}],
    }
    return nb, {"extension": [extension]}


def detected_issue(
    row: IssueRow, *, explanation_nb: str | None = None, updated_at: datetime | None = None
) -> dict[str, Any]:
    """row: an alarm in `store.fhir_search.IssueRow` order (its first twelve fields). The detail is in bokmål
    (what the nurse read) with the English text as its translation; without the bokmål text the English stands alone."""
    resource: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": str(row.id),
        "language": "nb" if explanation_nb else "en",
        "status": "final" if row.state == "resolved" else "preliminary",
        "code": {"coding": [{"system": "urn:varde:alarm-rule", "code": row.rule}], "text": row.rule},
        "severity": _ISSUE_SEVERITY.get(row.severity, "low"),
        "patient": _ref("Patient", row.patient_id),
        "identifiedDateTime": row.opened_at.isoformat(),
    }
    if updated_at is not None:
        resource["meta"] = _meta(last_updated=updated_at)
    detail, extension = translated(explanation_nb, row.explanation_en) if explanation_nb else (row.explanation_en, None)
    resource["detail"] = detail
    if extension:
        resource["_detail"] = extension
    if row.last_reading_id:
        resource["implicated"] = [_ref("Observation", row.last_reading_id)]
    mitigation = []
    if row.acknowledged_at:
        mitigation.append(
            {
                "action": {"text": "Kvittert av teamet / Acknowledged by the care team"},
                "date": _iso(row.acknowledged_at),
            }
        )
    if row.resolved_at:
        mitigation.append({"action": {"text": row.resolution or "Løst / Resolved"}, "date": _iso(row.resolved_at)})
    if mitigation:
        resource["mitigation"] = mitigation
    return resource


_CAREPLAN_STATUS = {"draft": "draft", "active": "active", "retired": "revoked"}
_GOAL_STATUS = {"draft": "proposed", "active": "active", "retired": "cancelled"}
_WEEKDAYS = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}


def _limit(kind: Kind, value: float | None) -> dict[str, Any] | None:
    return _quantity(kind, value) if value is not None else None


def _goal_id(kind: Kind) -> str:
    """A FHIR id (letters, digits, '-' and '.'; no '_') for the contained Goal of a kind."""
    return "goal-" + kind.value.replace("_", "-")


def _goal(plan_status: str, patient_id: Any, zones: Any) -> dict[str, Any]:
    """A contained Goal per measured kind: the green range as the target, every limit spelled out in the note."""
    kind, info = zones.kind, KINDS[zones.kind]
    low, high = zones.yellow_low, zones.yellow_high
    if low is None and high is None:
        low, high = zones.red_low, zones.red_high
    target_range = {k: v for k, v in (("low", _limit(kind, low)), ("high", _limit(kind, high))) if v is not None}
    unit = info.unit_display

    def bound(name_nb: str, value: float | None, below: bool) -> str | None:
        if value is None:
            return None
        return f"{name_nb} {'under' if below else 'over'} {exact_value(value):g} {unit}"

    limits = [
        bound("rød", zones.red_low, True),
        bound("gul", zones.yellow_low, True),
        bound("gul", zones.yellow_high, False),
        bound("rød", zones.red_high, False),
    ]
    code = codes.observation_code(kind, None)
    return {
        "resourceType": "Goal",
        "id": _goal_id(kind),
        "lifecycleStatus": _GOAL_STATUS[plan_status],
        "description": {"text": f"{info.name_nb}: grønn sone / {info.name_en}: green zone"},
        "subject": _ref("Patient", patient_id),
        "target": [{"measure": {"coding": [c.as_fhir() for c in code.codings]}, "detailRange": target_range}],
        "note": [{"text": f"{info.name_nb}: " + ", ".join(t for t in limits if t)}],
    }


def care_plan(row: PlanRow) -> dict[str, Any]:
    """row: id, patient_id, version, status, created_at, activated_at, retired_at, body. The plan's limits are
    contained Goals (one per kind, the green range as target); advice and contacts are notes in bokmål and English."""
    plan = PlanContent.model_validate(row.body)
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": str(row.id),
        "meta": _meta(last_updated=max(t for t in (row.created_at, row.activated_at, row.retired_at) if t is not None)),
        "language": "nb",
        "status": _CAREPLAN_STATUS[row.status],
        "intent": "plan",
        "title": f"Egenbehandlingsplan v{row.version}",
        "subject": _ref("Patient", row.patient_id),
        "created": row.created_at.isoformat(),
        "identifier": [{"system": "urn:varde:plan-version", "value": str(row.version)}],
    }
    if plan.diagnosis:
        resource["description"] = plan.diagnosis
    if row.activated_at:
        resource["period"] = {
            "start": row.activated_at.isoformat(),
            **({"end": row.retired_at.isoformat()} if row.retired_at else {}),
        }
    goals = [_goal(row.status, row.patient_id, z) for z in plan.zones]
    if goals:
        resource["contained"] = goals
        resource["goal"] = [{"reference": f"#{g['id']}"} for g in goals]
    activities = []
    for item in plan.schedule:
        info = KINDS[item.kind]
        code = codes.observation_code(item.kind, None)
        activities.append(
            {
                "detail": {
                    "status": "scheduled" if row.status == "active" else "not-started",
                    "code": {"coding": [code.codings[0].as_fhir()], "text": f"Mål {info.name_nb.lower()}"},
                    "scheduledTiming": {
                        "repeat": {
                            "dayOfWeek": [d for d in item.weekdays if d in _WEEKDAYS],
                            "timeOfDay": [f"{item.deadline}:00"],
                        }
                    },
                    "description": f"{info.name_nb} før kl. {item.deadline} / {info.name_en} before {item.deadline}",
                    **(
                        {"goal": [{"reference": f"#{_goal_id(item.kind)}"}]}
                        if any(z.kind == item.kind for z in plan.zones)
                        else {}
                    ),
                }
            }
        )
    if activities:
        resource["activity"] = activities
    notes = [{"text": f"[{a.zone}{'/' + a.kind.value if a.kind else ''}] {a.nb} / {a.en}"} for a in plan.advice]
    notes += [{"text": f"Kontakt / Contact: {c.name} ({c.role}) {c.phone}"} for c in plan.contacts]
    if notes:
        resource["note"] = notes
    return resource


PROTOCOL = "urn:varde:protocol"
CARE_TEAM = "urn:varde:care-team"
ORGANISATION = "urn:varde:organisation"


def episode_of_care(row: Episode) -> dict[str, Any]:
    """An episode of follow-up: status active/finished, the period, the responsible team (CareTeam, by display)
    and its organisation (managingOrganization), the protocol as type, and the enrolment reason and conditions."""
    ident, patient_id, status, team_id, team = row.id, row.patient_id, row.status, row.team_id, row.team_name
    org_id, org_name, reason, conditions, protocol = (
        row.organisation_id,
        row.organisation_name,
        row.reason,
        row.conditions,
        row.protocol,
    )
    started_at, ended_at, care_manager = row.started_at, row.ended_at, row.care_manager_id
    updated_at, discharge_reason = row.updated_at, row.discharge_reason
    period = {"start": started_at.isoformat(), **({"end": ended_at.isoformat()} if ended_at else {})}
    resource: dict[str, Any] = {
        "resourceType": "EpisodeOfCare",
        "id": str(ident),
        "meta": _meta(last_updated=updated_at),
        "status": status,
        "statusHistory": [{"status": "active", "period": {"start": started_at.isoformat()}}],
        "type": [{"coding": [{"system": PROTOCOL, "code": protocol}], "text": reason}],
        "patient": _ref("Patient", patient_id),
        "period": period,
        "team": [{"identifier": {"system": CARE_TEAM, "value": str(team_id)}, "display": team}],
    }
    if ended_at:
        resource["statusHistory"][0]["period"]["end"] = ended_at.isoformat()
        resource["statusHistory"].append({"status": "finished", "period": {"start": ended_at.isoformat()}})
    if org_id:
        resource["managingOrganization"] = {
            "reference": f"Organization/{org_id}",
            "identifier": {"system": ORGANISATION, "value": str(org_id)},
            "display": org_name,
        }
    if care_manager:
        resource["careManager"] = _ref("Practitioner", care_manager)
    texts = [f"Årsak / reason: {reason}"]
    if conditions:
        texts.append("Tilstander / conditions: " + ", ".join(conditions))
    if discharge_reason:
        texts.append(f"Avsluttet / discharged: {discharge_reason}")
    body = "".join(f"<p>{html.escape(t)}</p>" for t in texts)
    resource["text"] = {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'}
    return resource


QUESTIONNAIRE = "urn:varde:questionnaire"
"""Questionnaires live in the patient's plan; `urn:varde:questionnaire:<id>|<plan version>` names one."""


def questionnaire_response(row: ResponseRow) -> dict[str, Any]:
    """row: id, patient_id, questionnaire, plan_version, answered_at, received_at, answers, score, zone. Each
    answer is the chosen option's id as a Coding; the cloud's score and zone are in the item `score` / `zone`."""
    name = row.questionnaire
    options = f"{QUESTIONNAIRE}:{name}:options"
    items: list[dict[str, Any]] = [
        {"linkId": question, "answer": [{"valueCoding": {"system": options, "code": option}}]}
        for question, option in sorted(dict(row.answers).items())
    ]
    items.append({"linkId": "score", "text": "Poengsum / Score", "answer": [{"valueInteger": int(row.score)}]})
    if row.zone:
        items.append({"linkId": "zone", "text": "Sone / Zone", "answer": [{"valueString": row.zone}]})
    return {
        "resourceType": "QuestionnaireResponse",
        "id": str(row.id),
        "meta": _meta(last_updated=row.received_at),
        "questionnaire": f"{QUESTIONNAIRE}:{name}|{row.plan_version}",
        "status": "completed",
        "subject": _ref("Patient", row.patient_id),
        "authored": row.answered_at.isoformat(),
        "source": _ref("Patient", row.patient_id),
        "item": items,
    }


def bundle(
    resources: Sequence[dict[str, Any]],
    base_url: str,
    *,
    matches: int | None = None,
    total: int | None = -1,
    links: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """A searchset Bundle; the first `matches` entries are matches, the rest included resources (each once).
    `total` -1 means "the number of matches"; None leaves it out."""
    matches = len(resources) if matches is None else matches
    seen: set[str] = set()
    entries = []
    for i, r in enumerate(resources):
        url = f"{base_url}/{r['resourceType']}/{r['id']}"
        if url in seen:
            continue
        seen.add(url)
        entries.append({"fullUrl": url, "resource": r, "search": {"mode": "match" if i < matches else "include"}})
    out: dict[str, Any] = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "searchset"}
    if total is not None:
        out["total"] = matches if total == -1 else total
    if links:
        out["link"] = [{"relation": rel, "url": url} for rel, url in links]
    out["entry"] = entries
    return out


_ISSUE_TYPES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported"}


def operation_outcome(status: int, diagnostics: str, code: str | None = None) -> dict[str, Any]:
    """An error under /fhir, as FHIR clients expect it (http://hl7.org/fhir/R4/operationoutcome.html)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error" if status < 500 else "fatal",
                "code": code or _ISSUE_TYPES.get(status, "processing" if status < 500 else "exception"),
                "diagnostics": diagnostics,
            }
        ],
    }
