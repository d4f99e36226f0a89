"""FHIR R4 (read and search) under /fhir, with the same duty-of-care gate and audit as the rest of the API.

- type-level search `GET /fhir/{type}?…` and `POST /fhir/{type}/_search` (form body) for Patient, Observation,
  DetectedIssue, CarePlan, Device, QuestionnaireResponse and EpisodeOfCare, per http://hl7.org/fhir/R4/search.html
  (`clinician_api.fhir_search` parses, `clinician_api.fhir_query` runs); a patient outside the caller's teams is
  absent from the results;
- compartment search `GET /fhir/Patient/{id}/{type}` (the same search, within one patient) and `$everything`;
- reads of each resource by id (404 for foreign and missing alike);
- `GET /fhir/metadata`, the CapabilityStatement made from the same tables the parser checks against.

Every error under /fhir is an OperationOutcome (`problems.install` routes them here).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from clinician_api import fhir, fhir_query, problems
from clinician_api.access import Principal, patient_access
from clinician_api.deps import (
    NOT_IN_CARE,
    AlarmDep,
    Conn,
    CurrentPrincipal,
    ObservationDep,
    PatientDep,
    client_addr,
)
from clinician_api.fhir_search import PARAMS as SEARCH_PARAMS
from clinician_api.fhir_search import FhirError, SearchRequest, capability_statement, handling_strict, parse_search
from store import audit
from store import fhir_search as fhir_search_rows
from vitals import Kind


class FhirResponse(JSONResponse):
    media_type = fhir.FHIR_JSON


_RESOURCE: dict[int | str, dict[str, Any]] = {
    200: {"content": {fhir.FHIR_JSON: {"schema": {"type": "object", "additionalProperties": True}}}}
}
router = APIRouter(
    prefix="/fhir",
    tags=["fhir"],
    default_response_class=FhirResponse,
    responses={**problems.responses(400, 401, 404), **_RESOURCE},
)
OPERATIONS: dict[str, list[dict[str, str]]] = {
    "Patient": [{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]
}
"""Operations per resource type for the CapabilityStatement; `fhir_export` adds the bulk-data ones it serves."""


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


@router.get("/metadata", responses={200: _RESOURCE[200]})
def metadata(request: Request) -> FhirResponse:
    """The CapabilityStatement (no authentication needed; it holds no patient data)."""
    return FhirResponse(capability_statement(base_url(request), request.app.version, OPERATIONS))


async def _search_items(request: Request) -> list[tuple[str, str]]:
    items = list(request.query_params.multi_items())
    if request.method == "POST":
        form = await request.form()
        items += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    return items


def _links(
    request: Request, rtype: str, search: SearchRequest, page: fhir_query.Page, prefix: str
) -> list[tuple[str, str]]:
    url = f"{base_url(request)}/{prefix}{rtype}"
    links = [("self", f"{url}?{urlencode(search.query())}")]
    if page.next is not None:
        links.append(("next", f"{url}?{urlencode(search.query(cursor=page.next))}"))
    if page.previous is not None:
        links.append(("previous", f"{url}?{urlencode(search.query(cursor=page.previous))}"))
    return links


def run_search(
    request: Request,
    conn: Any,
    principal: Principal,
    rtype: str,
    items: list[tuple[str, str]],
    *,
    patients: list[UUID] | None = None,
    link_prefix: str = "",
) -> dict[str, Any]:
    """Parse, run and wrap a search in a searchset Bundle; `patients` fixes the patients (compartment search)."""
    search = parse_search(rtype, items, strict=handling_strict(request.headers.get("prefer")))
    if patients is None:
        patients = fhir_query.patients_in_scope(conn, principal, search)
    else:
        patients = fhir_query.narrow_to_references(search, patients)
    page = fhir_query.SEARCHES[rtype](conn, search, patients, datetime.now(UTC))
    links = _links(request, rtype, search, page, link_prefix)
    resources = [*page.matches, *page.included]
    for resource in page.included:
        if resource["resourceType"] == "Patient":
            page.patient_ids.add(UUID(resource["id"]))
    return fhir.bundle(resources, base_url(request), matches=len(page.matches), total=page.total, links=links)


def _audited_search(
    request: Request, conn: Any, principal: Principal, rtype: str, items: list[tuple[str, str]]
) -> FhirResponse:
    body = run_search(request, conn, principal, rtype, items)
    shown = {UUID(e["resource"]["id"]) for e in body["entry"] if e["resource"]["resourceType"] == "Patient"}
    shown |= _patients_of(body)
    path = request.url.path
    if shown:
        audit.record_patients(conn, principal, "search", path, sorted(shown), client_addr=client_addr(request))
    else:
        audit.record(conn, principal, "search", path, "ok", client_addr=client_addr(request))
    return FhirResponse(body)


def _patients_of(body: dict[str, Any]) -> set[UUID]:
    out: set[UUID] = set()
    for entry in body["entry"]:
        resource = entry["resource"]
        ref = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
        if ref.startswith("Patient/"):
            out.add(UUID(ref.removeprefix("Patient/")))
    return out


def _type_search(rtype: str) -> None:
    async def search_get(request: Request, conn: Conn, principal: CurrentPrincipal) -> FhirResponse:
        return _audited_search(request, conn, principal, rtype, await _search_items(request))

    search_get.__name__ = f"search_{rtype.lower()}"
    search_get.__doc__ = f"Type-level search of {rtype} (FHIR R4 search; parameters in the CapabilityStatement)."
    router.add_api_route(f"/{rtype}", search_get, methods=["GET"], name=f"search_{rtype}")
    router.add_api_route(f"/{rtype}/_search", search_get, methods=["POST"], name=f"search_{rtype}_post")


# --- compartment searches and reads of one patient ----------------------------------------------------------------


def _compartment(scope: Any, request: Request, rtype: str) -> FhirResponse:
    items = list(request.query_params.multi_items())
    body = run_search(
        request,
        scope.conn,
        scope.principal,
        rtype,
        items,
        patients=[scope.patient_id],
        link_prefix=f"Patient/{scope.patient_id}/",
    )
    return FhirResponse(body)


@router.get("/Patient/{patient_id}/Observation")
def search_patient_observations(scope: PatientDep, request: Request) -> FhirResponse:
    """The patient's Observations (compartment search: every Observation search parameter applies)."""
    return _compartment(scope, request, "Observation")


@router.get("/Patient/{patient_id}/DetectedIssue")
def search_patient_issues(scope: PatientDep, request: Request) -> FhirResponse:
    """The patient's alarms as DetectedIssues."""
    return _compartment(scope, request, "DetectedIssue")


@router.get("/Patient/{patient_id}/CarePlan")
def search_patient_care_plans(scope: PatientDep, request: Request) -> FhirResponse:
    """Every version of the self-management plan as a CarePlan (draft, active, revoked)."""
    return _compartment(scope, request, "CarePlan")


@router.get("/Patient/{patient_id}/Device")
def search_patient_devices(scope: PatientDep, request: Request) -> FhirResponse:
    """The patient's home gateways and the measuring devices seen through them (`parent` → gateway)."""
    return _compartment(scope, request, "Device")


@router.get("/Patient/{patient_id}/QuestionnaireResponse")
def search_patient_questionnaire_responses(scope: PatientDep, request: Request) -> FhirResponse:
    """The patient's symptom questionnaire answers."""
    return _compartment(scope, request, "QuestionnaireResponse")


@router.get("/Patient/{patient_id}/EpisodeOfCare")
def search_patient_episodes(scope: PatientDep, request: Request) -> FhirResponse:
    return _compartment(scope, request, "EpisodeOfCare")


@router.get("/Patient/{patient_id}/$everything")
def everything(scope: PatientDep, request: Request) -> FhirResponse:
    """Patient/$everything: the patient, Observations (newest `_count`, default 1000), alarms, plans and devices."""
    conn, pid = scope.conn, scope.patient_id
    count = request.query_params.get("_count", "1000")
    observations = parse_search("Observation", [("_count", count)], strict=False)
    resources = [
        *fhir_query.patient_resources(conn, [pid]),
        *fhir_query.search_observations(conn, observations, [pid], datetime.now(UTC)).matches,
        *fhir_query.issue_resources(conn, [pid]),
        *fhir_query.plan_resources(conn, [pid]),
        *fhir_query.device_resources(conn, [pid]),
        *fhir_query.episode_resources(conn, [pid]),
    ]
    return FhirResponse(fhir.bundle(resources, base_url(request), matches=1))


@router.get("/Patient/{patient_id}")
def read_patient(scope: PatientDep) -> FhirResponse:
    return FhirResponse(fhir_query.patient_resources(scope.conn, [scope.patient_id])[0])


@router.get("/Observation/{observation_id}")
def read_observation(scope: ObservationDep, observation_id: UUID) -> FhirResponse:
    """One Observation by reading id; a blood pressure panel is read by its systolic reading's id (its diastolic
    and mean readings are components, not Observations of their own)."""
    reading = fhir_search_rows.observation(scope.conn, observation_id, scope.patient_id)
    assert reading is not None  # the scope found it
    if reading.kind in (Kind.BP_DIASTOLIC, Kind.BP_MEAN):
        raise FhirError(404, "this reading is a component of a blood pressure panel Observation", "not-found")
    return FhirResponse(fhir_query.observation_resources(scope.conn, [reading])[0])


@router.get("/DetectedIssue/{alarm_id}")
def read_issue(scope: AlarmDep) -> FhirResponse:
    assert scope.alarm_id is not None
    resource = fhir_query.read_issue(scope.conn, scope.alarm_id)
    assert resource is not None
    return FhirResponse(resource)


def _read_one(request: Request, conn: Any, principal: Principal, rtype: str, ident: str) -> FhirResponse:
    """A read as a search by `_id` within the caller's patients; audited as a read (denied when not found)."""
    body = run_search(request, conn, principal, rtype, [("_id", ident)])
    matches = [e["resource"] for e in body["entry"] if e["search"]["mode"] == "match"]
    path = request.url.path
    if not matches:
        audit.record(conn, principal, "read", path, "denied", client_addr=client_addr(request))
        conn.commit()
        raise FhirError(404, NOT_IN_CARE, "not-found")
    patient_ids = sorted(_patients_of(body))
    for pid in patient_ids:
        access = patient_access(conn, principal, pid)
        audit.record(
            conn,
            principal,
            "read",
            path,
            "ok",
            patient_id=pid,
            team_id=access.team_id if access and not access.emergency else None,
            client_addr=client_addr(request),
            emergency=bool(access and access.emergency),
            reason=access.reason if access else None,
        )
    return FhirResponse(matches[0])


@router.get("/CarePlan/{plan_id}")
def read_care_plan(plan_id: str, request: Request, conn: Conn, principal: CurrentPrincipal) -> FhirResponse:
    return _read_one(request, conn, principal, "CarePlan", plan_id)


@router.get("/QuestionnaireResponse/{response_id}")
def read_questionnaire_response(
    response_id: str, request: Request, conn: Conn, principal: CurrentPrincipal
) -> FhirResponse:
    return _read_one(request, conn, principal, "QuestionnaireResponse", response_id)


@router.get("/EpisodeOfCare/{episode_id}")
def read_episode(episode_id: str, request: Request, conn: Conn, principal: CurrentPrincipal) -> FhirResponse:
    return _read_one(request, conn, principal, "EpisodeOfCare", episode_id)


@router.get("/Device/{device_id}")
def read_device(device_id: str, request: Request, conn: Conn, principal: CurrentPrincipal) -> FhirResponse:
    return _read_one(request, conn, principal, "Device", device_id)


for _rtype in SEARCH_PARAMS:
    _type_search(_rtype)
