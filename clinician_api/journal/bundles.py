"""FHIR R4 Bundles sent to a record system, built from the clinician API's resource builders (`clinician_api.fhir`):
an alarm's document (Composition first), a document per step of an episode of follow-up (enrolment, hand-over,
discharge), and batches of shared measurements (transaction or collection).

Pure functions from rows to JSON-ready dicts. Every entry's fullUrl is a `urn:uuid:` of a stable id, and references
between entries are rewritten to those fullUrls, so a Bundle stands on its own and a resend is identical.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from clinician_api import fhir
from clinician_api.journal import identity
from store.episodes import Episode
from store.fhir_search import DeviceRow, GatewayRow, IssueRow
from store.fhir_search import PatientRow as FhirPatient
from store.journal_documents import Organisation, Practitioner
from store.plans import PlanRow

_LOINC_NOTE = {
    "nurse": ("34746-8", "Nurse Note"),
    "physician": ("11506-3", "Progress note"),
}
_XHTML = "http://www.w3.org/1999/xhtml"


@dataclass(frozen=True, slots=True)
class PatientRow:
    id: UUID
    display_name: str
    national_id: str | None
    birth_date: Any
    active: bool

    @classmethod
    def columns(cls, alias: str = "p") -> str:
        return ", ".join(f"{alias}.{c}" for c in ("id", "display_name", "national_id", "birth_date", "active"))


@dataclass(frozen=True, slots=True)
class AlarmDocument:
    """Everything one alarm's document holds, read in the transaction that resolves the alarm."""

    alarm: IssueRow
    patient: PatientRow
    practitioner: Practitioner
    organisation: Organisation
    readings: Sequence[fhir.ReadingRow]
    devices: Sequence[DeviceRow]
    """The measuring devices behind the readings."""
    gateways: Sequence[GatewayRow]
    explanation_nb: str | None = None
    """The alarm's text in bokmål, as the nurse read it (the document's language)."""


def _entry_id(resource: dict[str, Any]) -> UUID:
    try:
        return UUID(str(resource["id"]))
    except ValueError:
        return identity.stable_id(resource["resourceType"], resource["id"])


def _link(resources: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(fullUrl, resource) pairs with every `Type/id` reference to a resource of the Bundle made its fullUrl."""
    full_urls = {f"{r['resourceType']}/{r['id']}": identity.urn(_entry_id(r)) for r in resources}

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: full_urls.get(v, v) if k == "reference" and isinstance(v, str) else rewrite(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    return [(full_urls[f"{r['resourceType']}/{r['id']}"], rewrite(r)) for r in resources]


def _patient(row: PatientRow) -> dict[str, Any]:
    resource = fhir.patient(FhirPatient(row.id, row.display_name, row.national_id, row.birth_date, row.active))
    resource["identifier"] = identity.patient_identifiers(row.id, row.national_id)
    return resource


def _observations(readings: Iterable[fhir.ReadingRow]) -> list[dict[str, Any]]:
    resources = fhir.observations(readings)
    for resource in resources:
        resource["identifier"] = [{"system": identity.VARDE_READING, "value": resource["id"]}]
    return resources


def _devices(
    devices: Iterable[DeviceRow], gateways: Iterable[GatewayRow], patient_of: dict[str, UUID]
) -> list[dict[str, Any]]:
    out = [fhir.gateway_device(g) for g in gateways]
    for row in devices:
        resource = fhir.measuring_device(row, patient_of[row.gateway_id])
        resource["identifier"] = [*resource["identifier"], {"system": identity.VARDE_DEVICE, "value": resource["id"]}]
        out.append(resource)
    return out


def _narrative(paragraphs: Iterable[str], english: Iterable[str] = ()) -> dict[str, str]:
    """XHTML in bokmål, then any English paragraphs marked as such (`lang="en"`)."""
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs if p)
    body += "".join(f'<p lang="en" xml:lang="en">{html.escape(p)}</p>' for p in english if p)
    return {"status": "generated", "div": f'<div xmlns="{_XHTML}">{body}</div>'}


def document_id(alarm_id: UUID) -> UUID:
    return identity.stable_id("alarm-document", alarm_id)


def alarm_document(doc: AlarmDocument) -> dict[str, Any]:
    """A document Bundle: Composition (the resolution note as section text), DetectedIssue, the triggering
    Observations, Patient, Practitioner (who resolved it), Organization, and the devices that measured."""
    alarm_id, patient_id, rule = doc.alarm.id, doc.alarm.patient_id, doc.alarm.rule
    assert doc.alarm.resolved_at is not None  # only a resolved alarm is journaled
    resolved_at: datetime = doc.alarm.resolved_at
    resolution: str = doc.alarm.resolution or ""
    bundle_id = document_id(alarm_id)
    practitioner = identity.practitioner(doc.practitioner)
    organisation = identity.organisation(doc.organisation)
    observations = _observations(doc.readings)
    issue = fhir.detected_issue(doc.alarm, explanation_nb=doc.explanation_nb)
    issue["identifier"] = [{"system": identity.VARDE_ALARM, "value": str(alarm_id)}]
    issue["author"] = {"reference": f"Practitioner/{practitioner['id']}"}
    if observations:
        issue["implicated"] = [{"reference": f"Observation/{o['id']}"} for o in observations]
    code, display = _LOINC_NOTE.get(doc.practitioner.role, _LOINC_NOTE["physician"])
    composition_id = identity.stable_id("alarm-composition", alarm_id)
    title = f"Varde: alarm {rule} løst"
    sections: list[dict[str, Any]] = [
        {
            "title": "Vurdering og tiltak / Assessment and action",
            "code": {"coding": [{"system": fhir.LOINC, "code": "51848-0", "display": "Evaluation note"}]},
            "text": _narrative([resolution]),
            "entry": [{"reference": f"DetectedIssue/{issue['id']}"}],
        }
    ]
    if observations:
        sections.append(
            {
                "title": "Målinger / Measurements",
                "code": {"coding": [{"system": fhir.LOINC, "code": "8716-3", "display": "Vital signs"}]},
                "text": _narrative(
                    [f"{len(observations)} måling(er) bak alarmen: {doc.explanation_nb or doc.alarm.explanation_en}"],
                    [f"{len(observations)} measurement(s) behind the alarm: {doc.alarm.explanation_en}"],
                ),
                "entry": [{"reference": f"Observation/{o['id']}"} for o in observations],
            }
        )
    composition = {
        "resourceType": "Composition",
        "id": str(composition_id),
        "language": "nb",
        "identifier": {"system": identity.RFC3986, "value": identity.urn(composition_id)},
        "status": "final",
        "type": {"coding": [{"system": fhir.LOINC, "code": code, "display": display}], "text": display},
        "subject": {
            "reference": f"Patient/{patient_id}",
            "identifier": identity.patient_key(doc.patient.id, doc.patient.national_id),
        },
        "date": resolved_at.isoformat(),
        "author": [{"reference": f"Practitioner/{practitioner['id']}"}],
        "title": title,
        "custodian": {"reference": f"Organization/{organisation['id']}"},
        "section": sections,
    }
    patient_of = {g.id: UUID(str(g.patient_id)) for g in doc.gateways}
    resources = [
        composition,
        issue,
        *observations,
        _patient(doc.patient),
        practitioner,
        organisation,
        *_devices(doc.devices, doc.gateways, patient_of),
    ]
    return {
        "resourceType": "Bundle",
        "id": str(bundle_id),
        "identifier": {"system": identity.RFC3986, "value": identity.urn(bundle_id)},
        "type": "document",
        "timestamp": resolved_at.isoformat(),
        "entry": [{"fullUrl": url, "resource": r} for url, r in _link(resources)],
    }


def measurement_bundle(
    subscription_id: UUID,
    bundle_type: str,
    patients: Sequence[PatientRow],
    readings: Sequence[fhir.ReadingRow],
    devices: Sequence[DeviceRow],
    gateways: Sequence[GatewayRow],
    created_at: datetime,
) -> dict[str, Any]:
    """New Observations for a record system. A transaction creates each Observation and Device only if its
    identifier is not there yet (`ifNoneExist`), so a resent batch changes nothing; a collection carries the same
    resources. The patient is never sent to be created: every reference to them names the record's own patient
    by identifier (a conditional reference in a transaction, which fails rather than guess when there is no match)."""
    observations = _observations(readings)
    bundle_id = identity.stable_id("measurements", subscription_id, *sorted(o["id"] for o in observations))
    by_patient = {f"Patient/{p.id}": p for p in patients}
    conditions: dict[str, str] = {}
    resources: list[dict[str, Any]] = []
    patient_of = {g.id: UUID(str(g.patient_id)) for g in gateways}
    for resource in _devices(devices, gateways, patient_of):
        system = identity.VARDE_DEVICE if resource["id"].startswith("dev-") else fhir.GATEWAY_ID
        conditions[f"Device/{resource['id']}"] = f"identifier={system}|{resource['id']}"
        resources.append(resource)
    for resource in observations:
        conditions[f"Observation/{resource['id']}"] = f"identifier={identity.VARDE_READING}|{resource['id']}"
        resources.append(resource)
    conditional = bundle_type == "transaction"

    def by_identifier(node: Any) -> Any:
        if isinstance(node, dict):
            row = by_patient.get(node.get("reference", "")) if set(node) == {"reference"} else None
            if row is not None:
                return identity.patient_reference(row.id, row.national_id, conditional=conditional)
            return {k: by_identifier(v) for k, v in node.items()}
        if isinstance(node, list):
            return [by_identifier(v) for v in node]
        return node

    resources = [by_identifier(r) for r in resources]
    entries: list[dict[str, Any]] = []
    for url, resource in _link(resources):
        entry: dict[str, Any] = {"fullUrl": url, "resource": resource}
        if bundle_type == "transaction":
            entry["request"] = {
                "method": "POST",
                "url": resource["resourceType"],
                "ifNoneExist": conditions[f"{resource['resourceType']}/{resource['id']}"],
            }
        entries.append(entry)
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(bundle_id),
        "identifier": {"system": identity.RFC3986, "value": identity.urn(bundle_id)},
        "type": bundle_type,
        "entry": entries,
    }
    if bundle_type == "collection":
        bundle["timestamp"] = created_at.isoformat()
    return bundle


def observation_count(bundle: dict[str, Any]) -> int:
    return sum(1 for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "Observation")


_EPISODE_TITLES = {
    "enrolled": ("Innskrevet i digital hjemmeoppfølging", "Enrolled in remote follow-up"),
    "changed": ("Oppfølgingsepisode endret", "Episode of follow-up changed"),
    "handover_proposed": ("Overføring foreslått", "Hand-over proposed"),
    "handover_accepted": ("Overføring akseptert", "Hand-over accepted"),
    "handover_declined": ("Overføring avslått", "Hand-over declined"),
    "handover_withdrawn": ("Overføring trukket tilbake", "Hand-over withdrawn"),
    "discharged": ("Utskrevet fra digital hjemmeoppfølging", "Discharged from remote follow-up"),
}


@dataclass(frozen=True, slots=True)
class EpisodeDocument:
    """One step of an episode (its event), read in the transaction that made it."""

    event_id: int
    kind: str
    at: datetime
    endpoint_id: UUID
    episode: Episode
    patient: PatientRow
    practitioner: Practitioner
    organisation: Organisation
    """The record's organisation (the custodian)."""
    note: Sequence[tuple[str, str]] = ()
    """(section title, text) of the hand-over note or the discharge summary."""
    plan: PlanRow | None = None
    """The patient's active self-management plan at the step, if any."""


def _plan_section(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan in the document's text: its title, then every limit (the contained Goals' notes) in bokmål."""
    limits = [n["text"] for goal in plan.get("contained", []) for n in goal.get("note", [])]
    return {
        "title": "Egenbehandlingsplan / Self-management plan",
        "text": _narrative([plan["title"], *limits], ["Limits of the plan's zones (red, yellow) per measurement."]),
        "entry": [{"reference": f"CarePlan/{plan['id']}"}],
    }


def episode_document(doc: EpisodeDocument) -> dict[str, Any]:
    """A document Bundle for one step of an episode: Composition (the note's parts as sections), EpisodeOfCare,
    Patient, Practitioner and Organization, and the active plan as a CarePlan with its limits as Goals. One per
    record system that the step concerns."""
    bundle_id = identity.stable_id("episode-document", doc.event_id, doc.endpoint_id)
    composition_id = identity.stable_id("episode-composition", doc.event_id, doc.endpoint_id)
    practitioner = identity.practitioner(doc.practitioner)
    organisation = identity.organisation(doc.organisation)
    episode = fhir.episode_of_care(doc.episode)
    code, display = _LOINC_NOTE.get(doc.practitioner.role, _LOINC_NOTE["physician"])
    title_nb, title_en = _EPISODE_TITLES[doc.kind]
    sections: list[dict[str, Any]] = [
        {
            "title": "Episode",
            "text": _narrative([title_nb, doc.episode.reason], [title_en]),
            "entry": [{"reference": f"EpisodeOfCare/{episode['id']}"}],
        }
    ]
    sections += [{"title": title, "text": _narrative([text])} for title, text in doc.note if text]
    plan = fhir.care_plan(doc.plan) if doc.plan is not None else None
    if plan is not None:
        sections.append(_plan_section(plan))
    composition = {
        "resourceType": "Composition",
        "id": str(composition_id),
        "language": "nb",
        "identifier": {"system": identity.RFC3986, "value": identity.urn(composition_id)},
        "status": "final",
        "type": {"coding": [{"system": fhir.LOINC, "code": code, "display": display}], "text": display},
        "subject": {
            "reference": f"Patient/{doc.patient.id}",
            "identifier": identity.patient_key(doc.patient.id, doc.patient.national_id),
        },
        "date": doc.at.isoformat(),
        "author": [{"reference": f"Practitioner/{practitioner['id']}"}],
        "title": f"Varde: {title_nb}",
        "custodian": {"reference": f"Organization/{organisation['id']}"},
        "section": sections,
    }
    resources = [composition, episode, _patient(doc.patient), practitioner, organisation]
    if plan is not None:
        resources.append(plan)
    return {
        "resourceType": "Bundle",
        "id": str(bundle_id),
        "identifier": {"system": identity.RFC3986, "value": identity.urn(bundle_id)},
        "type": "document",
        "timestamp": doc.at.isoformat(),
        "entry": [{"fullUrl": url, "resource": r} for url, r in _link(resources)],
    }
