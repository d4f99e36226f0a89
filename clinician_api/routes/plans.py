"""Self-management plans (egenbehandlingsplaner): versioned drafts, activation and retirement.

Activating a version retires the previous one, writes its zones into `threshold_overrides` and its trend settings
into `trend_overrides` (source 'plan') so the rules judge readings by the plan's numbers, and publishes the plan
retained to each of the patient's gateways. The plan's home oxygen and SpO2 scale are read by the rules from the
active plan itself.
If the broker cannot take the plan, nothing changes (503).
"""

from __future__ import annotations

import math
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path
from psycopg import Connection

from clinician_api import problems
from clinician_api.deps import Clinician, GatewayLink, PatientDep
from clinician_api.gateway_link import GatewayPublisher, GatewayUnavailable
from clinician_api.problems import ProblemError
from clinician_api.schemas import PlanActivation, PlanList, PlanVersion
from rules_engine.validation import validate_profile
from store import gateways, patients, plans, schedules, thresholds
from vitals import PlanContent, plan_topic

router = APIRouter(prefix="/api/v1/patients", tags=["plans"], responses=problems.responses(401, 404))

Version = Annotated[int, Path(ge=1, le=1_000_000)]


def _version(row: plans.PlanRow) -> PlanVersion:
    return PlanVersion(
        id=row.id,
        patient_id=row.patient_id,
        version=row.version,
        status=row.status,
        created_at=row.created_at,
        created_by=row.created_by,
        activated_at=row.activated_at,
        retired_at=row.retired_at,
        body=PlanContent.model_validate(row.body),
    )


def _get(conn: Connection[Any], patient_id: UUID, version: int, *, lock: bool = False) -> plans.PlanRow:
    row = plans.version(conn, patient_id, version, lock=lock)
    if row is None:
        raise HTTPException(404, f"the patient has no plan version {version}")
    return row


@router.post("/{patient_id}/plans", response_model=PlanVersion, status_code=201, responses=problems.responses(403, 422))
def create_plan(scope: PatientDep, body: PlanContent, principal: Clinician) -> PlanVersion:
    """Store a validated draft as the next version. It takes effect only when activated."""
    conn = scope.conn
    errors = validate_profile("general", {}, {t.setting: t.value for t in body.trends})
    if errors:
        raise ProblemError(422, "; ".join(e.message for e in errors))
    patients.lock(conn, scope.patient_id)
    return _version(plans.create_draft(conn, scope.patient_id, body.model_dump_json(), principal.user_id))


@router.get("/{patient_id}/plans", response_model=PlanList)
def list_plans(scope: PatientDep) -> PlanList:
    """All versions, newest first."""
    return PlanList(items=[_version(r) for r in plans.all_versions(scope.conn, scope.patient_id)])


@router.get("/{patient_id}/plans/{version}", response_model=PlanVersion)
def get_plan(scope: PatientDep, version: Version) -> PlanVersion:
    return _version(_get(scope.conn, scope.patient_id, version))


@router.post(
    "/{patient_id}/plans/{version}/activate",
    response_model=PlanActivation,
    responses=problems.responses(403, 409, 503),
)
def activate_plan(
    scope: PatientDep,
    version: Version,
    principal: Clinician,
    publisher: GatewayLink,
) -> PlanActivation:
    """Make a draft the patient's plan: the previous active version is retired, the zones become the rules'
    thresholds, and the plan is published (retained, QoS 1) to each of the patient's gateways."""
    conn = scope.conn
    patients.lock(conn, scope.patient_id)
    draft = _get(conn, scope.patient_id, version, lock=True)
    if draft.status != "draft":
        raise HTTPException(409, f"version {version} is {draft.status}; only a draft can be activated")
    scope.action = "activate_plan"
    plan = _version(plans.activate(conn, scope.patient_id, draft.id))
    _write_zones(conn, scope.patient_id, plan, principal.user_id)
    assert plan.activated_at is not None
    # Step-ups in force carry on under the new version where it still has them (need-driven schedules).
    today = plan.activated_at.astimezone(ZoneInfo(plan.body.timezone)).date()
    wire = schedules.plan_activated(conn, scope.patient_id, today, principal.user_id, principal.username)
    published_to = gateways.enabled_ids(conn, scope.patient_id)
    _publish(publisher, [(plan_topic(g), wire.to_json()) for g in published_to])
    return PlanActivation(**plan.model_dump(), published_to=published_to)


def _write_zones(conn: Connection[Any], patient_id: UUID, plan: PlanVersion, user_id: UUID) -> None:
    """The plan's zones replace earlier plan rows and any manual override of the same kinds; a missing limit in a
    zone is stored as NaN, "no limit" in the rules' vocabulary."""
    limits = [(zone.kind.value, _no_limit_as_nan(zone.limits())) for zone in plan.body.zones]
    trends = [(trend.setting, math.nan if trend.value is None else trend.value) for trend in plan.body.trends]
    thresholds.write_plan(conn, patient_id, plan.id, limits, trends, user_id)


def _no_limit_as_nan(limits: thresholds.Limits) -> thresholds.Limits:
    red_low, yellow_low, yellow_high, red_high = (math.nan if v is None else v for v in limits)
    return (red_low, yellow_low, yellow_high, red_high)


def _publish(publisher: GatewayPublisher, messages: list[tuple[str, bytes]]) -> None:
    try:
        for topic, payload in messages:
            publisher.publish(topic, payload, retain=True)
    except GatewayUnavailable as exc:
        raise ProblemError(503, f"the plan could not be delivered to the gateway, nothing was changed: {exc}") from None


@router.post(
    "/{patient_id}/plans/{version}/retire", response_model=PlanVersion, responses=problems.responses(403, 409, 503)
)
def retire_plan(
    scope: PatientDep,
    version: Version,
    principal: Clinician,
    publisher: GatewayLink,
) -> PlanVersion:
    """Retire a draft or the active plan. Retiring the active plan returns the patient to the protocol's limits (and
    manual overrides) and clears the retained plan on the broker."""
    conn = scope.conn
    found = _get(conn, scope.patient_id, version, lock=True)
    if found.status == "retired":
        raise HTTPException(409, f"version {version} is already retired")
    scope.action = "retire_plan"
    retired = plans.retire(conn, found.id)
    if found.status == "active":
        schedules.plan_retired(conn, scope.patient_id, version, principal.user_id)
        thresholds.clear_plan(conn, scope.patient_id)
        _publish(publisher, [(plan_topic(g), b"") for g in gateways.enabled_ids(conn, scope.patient_id)])
    return _version(retired)
