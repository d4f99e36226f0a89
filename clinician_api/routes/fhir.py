"""FHIR R4 (read-only) under /fhir: the same duty-of-care gate and audit as the rest of the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from psycopg import Connection

from clinician_api import fhir, problems
from clinician_api.deps import AlarmDep, ObservationDep, PatientDep
from vitals import KINDS, Kind


class FhirResponse(JSONResponse):
    media_type = fhir.FHIR_JSON


_RESOURCE: dict[int | str, dict[str, Any]] = {
    200: {"content": {fhir.FHIR_JSON: {"schema": {"type": "object", "additionalProperties": True}}}}
}
router = APIRouter(
    prefix="/fhir",
    tags=["fhir"],
    default_response_class=FhirResponse,
    responses={**problems.responses(401, 404), **_RESOURCE},
)
Count = Annotated[int, Query(alias="_count", ge=1, le=1000, description="Most observations to return")]


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


@router.get("/metadata", responses={200: _RESOURCE[200]})
def metadata(request: Request) -> FhirResponse:
    """The CapabilityStatement (no authentication needed; it holds no patient data)."""
    return FhirResponse(fhir.capability_statement(_base_url(request), request.app.version))


def _patient(conn: Connection[Any], patient_id: UUID) -> dict[str, Any]:
    row = conn.execute(
        "SELECT id, display_name, national_id, birth_date, active FROM patients WHERE id = %s", (patient_id,)
    ).fetchone()
    assert row is not None
    return fhir.patient(row)


@router.get("/Patient/{patient_id}")
def read_patient(scope: PatientDep) -> FhirResponse:
    return FhirResponse(_patient(scope.conn, scope.patient_id))


_DATE = re.compile(r"^(eq|ge|gt|le|lt)?(\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2}))?)$")


def _date_filters(values: list[str]) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for value in values:
        m = _DATE.match(value)
        if not m:
            raise HTTPException(400, f"unsupported date search value {value!r} (use ge/gt/le/lt + RFC 3339 or a date)")
        prefix, text = m.group(1) or "eq", m.group(2)
        if "T" in text:
            at = datetime.fromisoformat(text.replace("Z", "+00:00"))
            start, end = at, at
        else:
            day = datetime.fromisoformat(text).date()
            start = datetime.combine(day, time.min, UTC)
            end = datetime.combine(day, time.max, UTC)
        op = {"eq": None, "ge": ">=", "gt": ">", "le": "<=", "lt": "<"}[prefix]
        if op is None:
            where.append("measured_at BETWEEN %s AND %s")
            params += [start, end]
        else:
            where.append(f"measured_at {op} %s")
            params.append(start if op in (">=", "<") else end)
    return where, params


def _kinds_for_code(codes: list[str]) -> list[str]:
    kinds: set[str] = set()
    for raw in codes:
        for token in raw.split(","):
            code = token.split("|")[-1]
            if code == fhir.BP_PANEL[0]:
                kinds.update((Kind.BP_SYSTOLIC.value, Kind.BP_DIASTOLIC.value))
            kinds.update(k.value for k, info in KINDS.items() if code in (info.loinc, *info.extra_loinc))
            kinds.update(
                k.value for k, info in KINDS.items() if info.mdc_code is not None and code == str(info.mdc_code)
            )
    return sorted(kinds)


def _observations(
    conn: Connection[Any], patient_id: UUID, codes: list[str], dates: list[str], count: int
) -> list[dict[str, Any]]:
    where = ["patient_id = %s"]
    params: list[Any] = [patient_id]
    if codes:
        where.append("kind = ANY(%s)")
        params.append(_kinds_for_code(codes))
    date_where, date_params = _date_filters(dates)
    where += date_where
    params += date_params
    rows = conn.execute(
        f"SELECT {fhir.ReadingRow.columns()} FROM readings WHERE {' AND '.join(where)} "
        "ORDER BY measured_at DESC, id LIMIT %s",
        [*params, count],
    ).fetchall()
    return fhir.observations(fhir.ReadingRow(*r) for r in rows)


@router.get("/Patient/{patient_id}/Observation")
def search_observations(
    scope: PatientDep,
    request: Request,
    code: Annotated[list[str] | None, Query(description="LOINC or MDC code, optionally system|code")] = None,
    date: Annotated[list[str] | None, Query(description="ge/gt/le/lt prefix + date or RFC 3339 time")] = None,
    count: Count = 100,
) -> FhirResponse:
    """The patient's vital-sign Observations, newest first (compartment search)."""
    resources = _observations(scope.conn, scope.patient_id, code or [], date or [], count)
    return FhirResponse(fhir.bundle(resources, _base_url(request)))


@router.get("/Observation/{observation_id}")
def read_observation(scope: ObservationDep, observation_id: UUID) -> FhirResponse:
    """One Observation by reading id; a BP panel is read by its systolic reading's id."""
    row = scope.conn.execute(
        f"SELECT {fhir.ReadingRow.columns()} FROM readings WHERE id = %s LIMIT 1", (observation_id,)
    ).fetchone()
    assert row is not None
    reading = fhir.ReadingRow(*row)
    if reading.kind not in (Kind.BP_SYSTOLIC, Kind.BP_DIASTOLIC):
        return FhirResponse(fhir.observation(reading))
    partner_kind = Kind.BP_DIASTOLIC if reading.kind == Kind.BP_SYSTOLIC else Kind.BP_SYSTOLIC
    partner_row = scope.conn.execute(
        f"SELECT {fhir.ReadingRow.columns()} FROM readings WHERE patient_id = %s AND kind = %s "
        "AND measured_at = %s AND gateway_id = %s AND (grp = %s OR (grp IS NULL AND %s::text IS NULL)) LIMIT 1",
        (reading.patient_id, partner_kind.value, reading.measured_at, reading.gateway_id, reading.group, reading.group),
    ).fetchone()
    partner = fhir.ReadingRow(*partner_row) if partner_row else None
    if reading.kind == Kind.BP_DIASTOLIC and partner is not None:
        raise HTTPException(404, f"this reading is part of the blood pressure panel Observation/{partner.id}")
    if reading.kind == Kind.BP_SYSTOLIC:
        return FhirResponse(fhir.bp_panel(reading, partner))
    return FhirResponse(fhir.bp_panel(None, reading))


def _issues(conn: Connection[Any], patient_id: UUID) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, patient_id, rule, severity, state, opened_at, explanation_en, last_reading_id, acknowledged_at, "
        "resolved_at, resolution, kind FROM alarms WHERE patient_id = %s ORDER BY opened_at DESC LIMIT 500",
        (patient_id,),
    ).fetchall()
    return [fhir.detected_issue(r) for r in rows]


@router.get("/Patient/{patient_id}/DetectedIssue")
def search_issues(scope: PatientDep, request: Request) -> FhirResponse:
    """The patient's alarms as DetectedIssues (newest 500)."""
    return FhirResponse(fhir.bundle(_issues(scope.conn, scope.patient_id), _base_url(request)))


@router.get("/DetectedIssue/{alarm_id}")
def read_issue(scope: AlarmDep) -> FhirResponse:
    row = scope.conn.execute(
        "SELECT id, patient_id, rule, severity, state, opened_at, explanation_en, last_reading_id, acknowledged_at, "
        "resolved_at, resolution, kind FROM alarms WHERE id = %s",
        (scope.alarm_id,),
    ).fetchone()
    assert row is not None
    return FhirResponse(fhir.detected_issue(row))


def _care_plans(conn: Connection[Any], patient_id: UUID) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, patient_id, version, status, created_at, activated_at, retired_at, body FROM self_management_plans "
        "WHERE patient_id = %s ORDER BY version DESC",
        (patient_id,),
    ).fetchall()
    return [fhir.care_plan(r) for r in rows]


@router.get("/Patient/{patient_id}/CarePlan")
def search_care_plans(scope: PatientDep, request: Request) -> FhirResponse:
    """Every version of the self-management plan as a CarePlan (draft, active, revoked)."""
    return FhirResponse(fhir.bundle(_care_plans(scope.conn, scope.patient_id), _base_url(request)))


def _devices(conn: Connection[Any], patient_id: UUID) -> list[dict[str, Any]]:
    gateways = conn.execute(
        "SELECT id, patient_id, enabled, agent_version, state FROM gateways WHERE patient_id = %s ORDER BY id",
        (patient_id,),
    ).fetchall()
    devices = conn.execute(
        "SELECT gateway_id, address, type, model FROM devices WHERE gateway_id = ANY(%s) ORDER BY gateway_id, address",
        ([g[0] for g in gateways],),
    ).fetchall()
    return [fhir.gateway_device(g) for g in gateways] + [fhir.measuring_device(d, patient_id) for d in devices]


@router.get("/Patient/{patient_id}/Device")
def search_devices(scope: PatientDep, request: Request) -> FhirResponse:
    """The patient's home gateways and the measuring devices seen through them (`parent` → gateway)."""
    return FhirResponse(fhir.bundle(_devices(scope.conn, scope.patient_id), _base_url(request)))


@router.get("/Patient/{patient_id}/$everything")
def everything(scope: PatientDep, request: Request, count: Count = 1000) -> FhirResponse:
    """Patient/$everything: the patient, observations (newest `_count` readings), alarms, plans and devices."""
    conn, pid = scope.conn, scope.patient_id
    resources = [
        _patient(conn, pid),
        *_observations(conn, pid, [], [], count),
        *_issues(conn, pid),
        *_care_plans(conn, pid),
        *_devices(conn, pid),
    ]
    return FhirResponse(fhir.bundle(resources, _base_url(request), matches=1))
