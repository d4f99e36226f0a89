"""Patients: the team-scoped list, the record (with gateway and device status), measurements and trends,
break-the-glass emergency access, and the patient's access log (innsynslogg)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request

from clinician_api import paging, problems
from clinician_api.access import access_basis_sql, grant_emergency_access, may_break_glass, visible_patients_named
from clinician_api.deps import Clinician, Conn, CurrentPrincipal, PatientDep, client_addr
from clinician_api.episode_schemas import CurrentEpisode
from clinician_api.problems import ProblemError
from clinician_api.schemas import (
    AccessLogEntry,
    AccessLogPage,
    Bucket,
    ConditionsEdit,
    DeviceRefOut,
    DeviceStatusOut,
    EmergencyAccess,
    EmergencyAccessRequest,
    GatewayOut,
    Measurement,
    MeasurementPage,
    PatientConditionsOut,
    PatientDetail,
    PatientPage,
    PatientSummary,
    TrendBucket,
    TrendSeries,
    WorstAlarm,
)
from store import audit, gateways, patients, readings
from store.conditions import ConditionError, load_conditions, set_conditions
from store.trends import trend_rows
from vitals import KINDS, Kind

router = APIRouter(prefix="/api/v1/patients", tags=["patients"], responses=problems.responses(401))
_PATIENT = problems.responses(404)


def _summary(row: patients.PatientSummaryRow) -> dict[str, Any]:
    worst = (
        WorstAlarm(
            id=row.worst_id,
            severity=row.worst_severity,
            rule=row.worst_rule,
            state=row.worst_state,
            opened_at=row.worst_opened_at,
        )
        if row.worst_id
        else None
    )
    return {
        "id": row.id,
        "display_name": row.display_name,
        "protocol": row.protocol,
        "team_id": row.team_id,
        "team_name": row.team_name,
        "open_alarms": row.open_alarms,
        "worst_alarm": worst,
        "last_measured_at": row.last_measured_at,
        "emergency_access": row.access_basis == "emergency",
        "access": row.access_basis or "team",
        "episode": CurrentEpisode(
            id=row.episode_id,
            status=row.episode_status,
            team_id=row.episode_team_id,
            team_name=row.episode_team_name,
            organisation_name=row.episode_organisation_name,
            reason=row.episode_reason,
            started_at=row.episode_started_at,
            pending_handover_id=row.pending_handover_id,
            pending_to_team_name=row.pending_to_team_name,
        )
        if row.episode_id
        else None,
    }


@router.get("", response_model=PatientPage, responses=problems.responses(400))
def list_patients(
    conn: Conn,
    principal: CurrentPrincipal,
    request: Request,
    team: Annotated[list[UUID] | None, Query(description="Care team ids")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Part of the display name")] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PatientPage:
    """Patients in the caller's care teams (and under an unexpired emergency access, a consultative access or a
    hand-over awaiting the caller's team: see `access`), by name, with each patient's current episode, worst
    unresolved alarm and the time of the newest measurement."""
    clause, vis = visible_patients_named(principal, read_only=True)
    after = None
    if cursor:
        name, patient_id = paging.decode("patients", cursor, (str, UUID))
        after = (name, patient_id)
    rows = patients.page(
        conn, clause, access_basis_sql("p"), vis, team_ids=team, name_part=q, after=after, limit=limit + 1
    )
    shown, next_cursor = paging.page(rows, limit, lambda r: (r.display_name, r.id), "patients")
    audit.record_patients(
        conn, principal, "list", request.url.path, [r.id for r in shown], client_addr=client_addr(request)
    )
    return PatientPage(items=[PatientSummary(**_summary(r)) for r in shown], next=next_cursor)


@router.get("/{patient_id}", response_model=PatientDetail, responses=_PATIENT)
def get_patient(scope: PatientDep) -> PatientDetail:
    """The patient's record: identity, protocol, alarms summary, active plan, gateways and their devices."""
    conn = scope.conn
    access = {"vis_teams": list(scope.principal.team_ids), "vis_user": scope.principal.user_id}
    row = patients.summary(conn, scope.patient_id, access_basis_sql("p"), access)
    assert row is not None
    extra = patients.record(conn, scope.patient_id)
    assert extra is not None
    found_gateways = gateways.of_patient(conn, scope.patient_id)
    devices = gateways.devices_of(conn, [g.id for g in found_gateways])
    found = load_conditions(conn, scope.patient_id)
    return PatientDetail(
        **_summary(row),
        conditions=list(found.conditions) if found else [],
        birth_date=extra.birth_date,
        national_id=extra.national_id,
        timezone=extra.timezone,
        active=extra.active,
        active_plan_version=extra.active_plan_version,
        gateways=[
            GatewayOut(
                id=g.id,
                enabled=g.enabled,
                state=g.state,
                last_seen_at=g.last_seen_at,
                agent_version=g.agent_version,
                outbox_depth=g.outbox_depth,
                devices=[
                    DeviceStatusOut(
                        address=d.address,
                        type=d.type,
                        model=d.model,
                        battery_percent=d.battery_percent,
                        first_seen_at=d.first_seen_at,
                        last_seen_at=d.last_seen_at,
                    )
                    for d in devices
                    if d.gateway_id == g.id
                ],
            )
            for g in found_gateways
        ],
    )


@router.get("/{patient_id}/conditions", response_model=PatientConditionsOut, responses=_PATIENT)
def get_conditions(scope: PatientDep) -> PatientConditionsOut:
    """The patient's conditions, the primary first: the rules compose their limits and rules."""
    found = load_conditions(scope.conn, scope.patient_id)
    assert found is not None
    return PatientConditionsOut(patient_id=scope.patient_id, protocol=found.primary, conditions=list(found.conditions))


@router.put(
    "/{patient_id}/conditions",
    response_model=PatientConditionsOut,
    responses={**_PATIENT, **problems.responses(403, 422)},
)
def put_conditions(scope: PatientDep, body: ConditionsEdit, principal: Clinician) -> PatientConditionsOut:
    """Replace the patient's conditions (heart failure + diabetes + COPD is common). The first named, or
    `primary`, becomes the patient's protocol; the rules compose every condition's limits, the safer winning."""
    patients.lock(scope.conn, scope.patient_id)
    try:
        found = set_conditions(scope.conn, scope.patient_id, body.conditions, body.primary, principal.user_id)
    except ConditionError as exc:
        raise ProblemError(422, str(exc)) from None
    return PatientConditionsOut(patient_id=scope.patient_id, protocol=found.primary, conditions=list(found.conditions))


_MAX_BUCKETS = {"hour": 24 * 400, "day": 366 * 10, "week": 53 * 10}


@router.get(
    "/{patient_id}/measurements",
    response_model=MeasurementPage | TrendSeries,
    responses={**_PATIENT, **problems.responses(400, 422)},
)
def measurements(
    scope: PatientDep,
    kind: Kind | None = None,
    from_: Annotated[datetime | None, Query(alias="from", description="Inclusive start (RFC 3339)")] = None,
    to: Annotated[datetime | None, Query(description="Exclusive end (RFC 3339)")] = None,
    bucket: Annotated[Bucket | None, Query(description="Aggregate per hour, day or week (needs `kind`)")] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> MeasurementPage | TrendSeries:
    """Raw readings, newest first in keyset pages; or with `bucket`, min/avg/max/count per hour, day or week in the
    patient's time zone (default range: the last 90 days)."""
    for name, value in (("from", from_), ("to", to)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, f"`{name}` needs a UTC offset (for example 2026-01-01T00:00:00Z)")
    if from_ and to and from_ >= to:
        raise HTTPException(422, "`from` must be before `to`")
    if bucket is not None:
        return _trend(scope, kind, from_, to, bucket)
    before = None
    if cursor:
        at, reading_id = paging.decode("readings", cursor, (paging.parse_time, UUID))
        before = (at, reading_id)
    rows = readings.page(
        scope.conn,
        scope.patient_id,
        kind=kind.value if kind else None,
        since=from_,
        until=to,
        before=before,
        limit=limit + 1,
    )
    shown, next_cursor = paging.page(rows, limit, lambda r: (r.measured_at, r.id), "readings")
    items = [
        Measurement(
            id=r.id,
            kind=Kind(r.kind),
            value=r.value,
            unit=KINDS[Kind(r.kind)].unit,
            measured_at=r.measured_at,
            received_at=r.received_at,
            device=DeviceRefOut(address=r.device_address, type=r.device_type, model=r.device_model),
            flags=list(r.flags),
            gateway_id=r.gateway_id,
            group=r.grp,
        )
        for r in shown
    ]
    return MeasurementPage(items=items, next=next_cursor)


def _trend(
    scope: PatientDep, kind: Kind | None, from_: datetime | None, to: datetime | None, bucket: Bucket
) -> TrendSeries:
    if kind is None:
        raise HTTPException(422, "`bucket` needs `kind`: aggregates of different kinds cannot be mixed")
    end = to or datetime.now(UTC)
    start = from_ or end - timedelta(days=90)
    span = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}[bucket]
    if (end - start) / span > _MAX_BUCKETS[bucket]:
        raise HTTPException(422, f"too many {bucket} buckets; at most {_MAX_BUCKETS[bucket]} per request")
    # From the hourly aggregate (TimescaleDB's or the rollup table), else from readings (store/trends.py).
    trend = trend_rows(scope.conn, scope.patient_id, kind.value, bucket, start, end)
    return TrendSeries(
        kind=kind,
        unit=KINDS[kind].unit,
        bucket=bucket,
        timezone=trend.timezone,
        from_=start,
        to=end,
        items=[TrendBucket(start=r.start, min=r.min, avg=r.avg, max=r.max, count=r.n) for r in trend.rows],
    )


@router.post(
    "/{patient_id}/emergency-access",
    response_model=EmergencyAccess,
    status_code=201,
    responses=problems.responses(403, 404, 422),
)
def emergency_access(
    patient_id: UUID, body: EmergencyAccessRequest, conn: Conn, principal: CurrentPrincipal, request: Request
) -> EmergencyAccess:
    """Break the glass: open a patient outside the caller's care teams for a limited time, with a reason. The grant
    and every access under it are audited with `emergency=true` and the reason."""
    if not may_break_glass(principal):
        raise HTTPException(403, "only nurses and physicians may use emergency access")
    granted = grant_emergency_access(conn, principal, patient_id, body.reason, body.minutes)
    addr = client_addr(request)
    if granted is None:
        audit.record(
            conn,
            principal,
            "emergency_access",
            request.url.path,
            "denied",
            patient_id=patient_id,
            client_addr=addr,
            emergency=True,
            reason=body.reason,
        )
        conn.commit()
        raise HTTPException(404, "no such patient")
    grant_id, granted_at, expires_at = granted.id, granted.granted_at, granted.expires_at
    audit.record(
        conn,
        principal,
        "emergency_access",
        request.url.path,
        "ok",
        patient_id=patient_id,
        client_addr=addr,
        emergency=True,
        reason=body.reason,
    )
    return EmergencyAccess(
        id=grant_id, patient_id=patient_id, reason=body.reason, granted_at=granted_at, expires_at=expires_at
    )


@router.get("/{patient_id}/access-log", response_model=AccessLogPage, responses={**_PATIENT, **problems.responses(400)})
def access_log(
    scope: PatientDep,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AccessLogPage:
    """Who read or changed this patient's record (innsynslogg), newest first."""
    before = None
    if cursor:
        (before,) = paging.decode("access-log", cursor, (int,))
    rows = audit.access_log(scope.conn, scope.patient_id, before=before, limit=limit + 1)
    shown, next_cursor = paging.page(rows, limit, lambda r: (r.id,), "access-log")
    return AccessLogPage(
        items=[
            AccessLogEntry(
                id=r.id,
                at=r.at,
                user_id=r.user_id,
                username=r.username,
                role=r.role,
                team_id=r.team_id,
                action=r.action,
                resource=r.resource,
                outcome=r.outcome,
                emergency=r.emergency,
                reason=r.reason,
            )
            for r in shown
        ],
        next=next_cursor,
    )
