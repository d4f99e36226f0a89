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
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path
from psycopg import Connection, sql

from clinician_api import problems
from clinician_api.deps import Clinician, GatewayLink, PatientDep
from clinician_api.gateway_link import GatewayPublisher, GatewayUnavailable
from clinician_api.problems import ProblemError
from clinician_api.schemas import PlanActivation, PlanList, PlanVersion
from rules_engine.profiles import LIMIT_NAMES
from rules_engine.validation import validate_profile
from store import schedules
from vitals import PlanContent, plan_topic

router = APIRouter(prefix="/api/v1/patients", tags=["plans"], responses=problems.responses(401, 404))

Version = Annotated[int, Path(ge=1, le=1_000_000)]
_COLUMNS = "id, patient_id, version, status, created_at, created_by, activated_at, retired_at, body"


def _version(row: Any) -> PlanVersion:
    return PlanVersion(
        id=row[0],
        patient_id=row[1],
        version=row[2],
        status=row[3],
        created_at=row[4],
        created_by=row[5],
        activated_at=row[6],
        retired_at=row[7],
        body=PlanContent.model_validate(row[8]),
    )


def _get(conn: Connection[Any], patient_id: Any, version: int, *, lock: bool = False) -> Any:
    row = conn.execute(
        sql.SQL("SELECT {} FROM self_management_plans WHERE patient_id = %s AND version = %s{}").format(
            sql.SQL(_COLUMNS), sql.SQL(" FOR UPDATE" if lock else "")
        ),
        (patient_id, version),
    ).fetchone()
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
    conn.execute("SELECT 1 FROM patients WHERE id = %s FOR UPDATE", (scope.patient_id,))
    row = conn.execute(
        sql.SQL(
            "INSERT INTO self_management_plans (patient_id, version, body, created_by) SELECT %s, "
            "coalesce(max(version), 0) + 1, %s, %s FROM self_management_plans WHERE patient_id = %s "
            "RETURNING {}"
        ).format(sql.SQL(_COLUMNS)),
        (scope.patient_id, body.model_dump_json(), principal.user_id, scope.patient_id),
    ).fetchone()
    return _version(row)


@router.get("/{patient_id}/plans", response_model=PlanList)
def list_plans(scope: PatientDep) -> PlanList:
    """All versions, newest first."""
    rows = scope.conn.execute(
        sql.SQL("SELECT {} FROM self_management_plans WHERE patient_id = %s ORDER BY version DESC").format(
            sql.SQL(_COLUMNS)
        ),
        (scope.patient_id,),
    ).fetchall()
    return PlanList(items=[_version(r) for r in rows])


@router.get("/{patient_id}/plans/{version}", response_model=PlanVersion)
def get_plan(scope: PatientDep, version: Version) -> PlanVersion:
    return _version(_get(scope.conn, scope.patient_id, version))


def _gateways(conn: Connection[Any], patient_id: Any) -> list[str]:
    rows = conn.execute(
        "SELECT id FROM gateways WHERE patient_id = %s AND enabled ORDER BY id", (patient_id,)
    ).fetchall()
    return [r[0] for r in rows]


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
    conn.execute("SELECT 1 FROM patients WHERE id = %s FOR UPDATE", (scope.patient_id,))
    row = _get(conn, scope.patient_id, version, lock=True)
    if row[3] != "draft":
        raise HTTPException(409, f"version {version} is {row[3]}; only a draft can be activated")
    scope.action = "activate_plan"
    conn.execute(
        "UPDATE self_management_plans SET status = 'retired', retired_at = now() WHERE patient_id = %s "
        "AND status = 'active'",
        (scope.patient_id,),
    )
    row = conn.execute(
        sql.SQL(
            "UPDATE self_management_plans SET status = 'active', activated_at = now() WHERE id = %s RETURNING {}"
        ).format(sql.SQL(_COLUMNS)),
        (row[0],),
    ).fetchone()
    plan = _version(row)
    _write_zones(conn, scope.patient_id, plan, principal.user_id)
    assert plan.activated_at is not None
    # Step-ups in force carry on under the new version where it still has them (need-driven schedules).
    today = plan.activated_at.astimezone(ZoneInfo(plan.body.timezone)).date()
    wire = schedules.plan_activated(conn, scope.patient_id, today, principal.user_id, principal.username)
    gateways = _gateways(conn, scope.patient_id)
    _publish(publisher, [(plan_topic(g), wire.to_json()) for g in gateways])
    return PlanActivation(**plan.model_dump(), published_to=gateways)


def _write_zones(conn: Connection[Any], patient_id: Any, plan: PlanVersion, user_id: Any) -> None:
    """The plan's zones replace earlier plan rows and any manual override of the same kinds; a missing limit in a
    zone is stored as NaN, "no limit" in the rules' vocabulary."""
    conn.execute("DELETE FROM threshold_overrides WHERE patient_id = %s AND source = 'plan'", (patient_id,))
    conn.execute("DELETE FROM trend_overrides WHERE patient_id = %s AND source = 'plan'", (patient_id,))
    for trend in plan.body.trends:
        conn.execute(
            "INSERT INTO trend_overrides (patient_id, setting, value, source, plan_id, updated_by, updated_at) "
            "VALUES (%s, %s, %s, 'plan', %s, %s, now()) ON CONFLICT (patient_id, setting) DO UPDATE SET "
            "value = EXCLUDED.value, source = 'plan', plan_id = EXCLUDED.plan_id, updated_by = EXCLUDED.updated_by, "
            "updated_at = now()",
            (patient_id, trend.setting, math.nan if trend.value is None else trend.value, plan.id, user_id),
        )
    for zone in plan.body.zones:
        values = [math.nan if v is None else v for v in zone.limits()]
        conn.execute(
            sql.SQL(
                "INSERT INTO threshold_overrides (patient_id, kind, {}, source, plan_id, updated_by, "
                "updated_at) VALUES (%s, %s, %s, %s, %s, %s, 'plan', %s, %s, now()) ON CONFLICT "
                "(patient_id, kind) DO UPDATE SET red_low = EXCLUDED.red_low, yellow_low = "
                "EXCLUDED.yellow_low, yellow_high = EXCLUDED.yellow_high, red_high = EXCLUDED.red_high, "
                "source = 'plan', plan_id = EXCLUDED.plan_id, updated_by = EXCLUDED.updated_by, updated_at "
                "= now()"
            ).format(sql.SQL(", ".join(LIMIT_NAMES))),
            (patient_id, zone.kind.value, *values, plan.id, user_id),
        )


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
    row = _get(conn, scope.patient_id, version, lock=True)
    if row[3] == "retired":
        raise HTTPException(409, f"version {version} is already retired")
    scope.action = "retire_plan"
    was_active = row[3] == "active"
    row = conn.execute(
        sql.SQL(
            "UPDATE self_management_plans SET status = 'retired', retired_at = now() WHERE id = %s RETURNING {}"
        ).format(sql.SQL(_COLUMNS)),
        (row[0],),
    ).fetchone()
    if was_active:
        schedules.plan_retired(conn, scope.patient_id, version, principal.user_id)
        conn.execute("DELETE FROM threshold_overrides WHERE patient_id = %s AND source = 'plan'", (scope.patient_id,))
        conn.execute("DELETE FROM trend_overrides WHERE patient_id = %s AND source = 'plan'", (scope.patient_id,))
        _publish(publisher, [(plan_topic(g), b"") for g in _gateways(conn, scope.patient_id)])
    return _version(row)
