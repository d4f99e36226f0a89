"""Patients: the team-scoped list, the record (with gateway and device status), measurements and trends,
break-the-glass emergency access, and the patient's access log (innsynslogg)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from psycopg import sql

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
from store import audit
from store.conditions import ConditionError, load_conditions, set_conditions
from store.trends import trend_rows
from vitals import KINDS, Kind

router = APIRouter(prefix="/api/v1/patients", tags=["patients"], responses=problems.responses(401))
_PATIENT = problems.responses(404)

# The newest reading of any kind, bounded in time: per kind, the newest hour of the hourly aggregate (one backward
# probe of its (patient, kind, bucket) key), then the newest reading inside that hour, so the readings lookup prunes
# to the one partition of that hour instead of probing every partition's index.
_LAST_MEASURED = (
    "(SELECT max(l.measured_at) FROM unnest(%(kinds)s::text[]) AS k(kind) CROSS JOIN LATERAL "
    "(SELECT h.bucket FROM readings_hourly h WHERE h.patient_id = p.id AND h.kind = k.kind "
    "ORDER BY h.bucket DESC LIMIT 1) AS hb CROSS JOIN LATERAL "
    "(SELECT max(r.measured_at) AS measured_at FROM readings r WHERE r.patient_id = p.id AND r.kind = k.kind "
    "AND r.measured_at >= hb.bucket AND r.measured_at < hb.bucket + interval '1 hour') AS l)"
)
_WORST = (
    "LEFT JOIN LATERAL (SELECT a.id, a.severity, a.rule, a.state, a.opened_at, count(*) OVER () AS n "
    "FROM alarms a WHERE a.patient_id = p.id AND a.state <> 'resolved' "
    "ORDER BY a.severity_rank, a.opened_at LIMIT 1) w ON true"
)
# The current episode (with a hand-over waiting for an answer, if any).
_EPISODE = (
    "LEFT JOIN LATERAL (SELECT ce.id, ce.status, ce.team_id, ct.name AS team_name, co.name AS organisation_name, "
    "ce.reason, ce.started_at, h.id AS handover_id, ht.name AS to_team FROM care_episodes ce "
    "JOIN care_teams ct ON ct.id = ce.team_id LEFT JOIN organisations co ON co.id = ct.organisation_id "
    "LEFT JOIN care_handovers h ON h.episode_id = ce.id AND h.state = 'proposed' "
    "LEFT JOIN care_teams ht ON ht.id = h.to_team_id "
    "WHERE ce.patient_id = p.id AND ce.status = 'active') ep ON true"
)
_SUMMARY = sql.SQL(
    "SELECT p.id, p.display_name, p.protocol, p.team_id, t.name, coalesce(w.n, 0), w.id, "
    "w.severity, w.rule, w.state, w.opened_at, {}, {}, ep.id, ep.status, ep.team_id, "
    "ep.team_name, ep.organisation_name, ep.reason, ep.started_at, ep.handover_id, ep.to_team "
    "FROM patients p JOIN care_teams t ON t.id = p.team_id {} {}"
).format(sql.SQL(_LAST_MEASURED), access_basis_sql("p"), sql.SQL(_WORST), sql.SQL(_EPISODE))
_ALL_KINDS = [k.value for k in Kind]


def _summary(row: Any) -> dict[str, Any]:
    worst = WorstAlarm(id=row[6], severity=row[7], rule=row[8], state=row[9], opened_at=row[10]) if row[6] else None
    return {
        "id": row[0],
        "display_name": row[1],
        "protocol": row[2],
        "team_id": row[3],
        "team_name": row[4],
        "open_alarms": row[5],
        "worst_alarm": worst,
        "last_measured_at": row[11],
        "emergency_access": row[12] == "emergency",
        "access": row[12] or "team",
        "episode": CurrentEpisode(
            id=row[13],
            status=row[14],
            team_id=row[15],
            team_name=row[16],
            organisation_name=row[17],
            reason=row[18],
            started_at=row[19],
            pending_handover_id=row[20],
            pending_to_team_name=row[21],
        )
        if row[13]
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
    where: list[sql.Composable] = [clause, sql.SQL("p.active")]
    params: dict[str, Any] = {
        **vis,
        "kinds": _ALL_KINDS,
        "limit": limit + 1,
    }
    if team:
        where.append(sql.SQL("p.team_id = ANY(%(team)s::uuid[])"))
        params["team"] = team
    if q:
        where.append(sql.SQL("p.display_name ILIKE %(q)s"))
        params["q"] = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if cursor:
        name, patient_id = paging.decode("patients", cursor, (str, UUID))
        where.append(sql.SQL("(p.display_name, p.id) > (%(c_name)s, %(c_id)s)"))
        params.update(c_name=name, c_id=patient_id)
    rows = conn.execute(
        sql.SQL("{} WHERE {} ORDER BY p.display_name, p.id LIMIT %(limit)s").format(
            _SUMMARY, sql.SQL(" AND ").join(where)
        ),
        params,
    ).fetchall()
    shown, next_cursor = paging.page(rows, limit, lambda r: (r[1], r[0]), "patients")
    audit.record_patients(
        conn, principal, "list", request.url.path, [r[0] for r in shown], client_addr=client_addr(request)
    )
    return PatientPage(items=[PatientSummary(**_summary(r)) for r in shown], next=next_cursor)


@router.get("/{patient_id}", response_model=PatientDetail, responses=_PATIENT)
def get_patient(scope: PatientDep) -> PatientDetail:
    """The patient's record: identity, protocol, alarms summary, active plan, gateways and their devices."""
    conn = scope.conn
    row = conn.execute(
        sql.SQL("{} WHERE p.id = %(id)s").format(_SUMMARY),
        {
            "id": scope.patient_id,
            "vis_teams": list(scope.principal.team_ids),
            "vis_user": scope.principal.user_id,
            "kinds": _ALL_KINDS,
        },
    ).fetchone()
    assert row is not None
    extra = conn.execute(
        "SELECT p.birth_date, p.national_id, p.timezone, p.active, "
        "(SELECT version FROM self_management_plans s WHERE s.patient_id = p.id AND s.status = 'active') "
        "FROM patients p WHERE p.id = %s",
        (scope.patient_id,),
    ).fetchone()
    assert extra is not None
    gateways = conn.execute(
        "SELECT id, enabled, state, last_seen_at, agent_version, outbox_depth FROM gateways WHERE patient_id = %s "
        "ORDER BY created_at, id",
        (scope.patient_id,),
    ).fetchall()
    devices = conn.execute(
        "SELECT gateway_id, address, type, model, battery_percent, first_seen_at, last_seen_at FROM devices "
        "WHERE gateway_id = ANY(%s) ORDER BY gateway_id, address",
        ([g[0] for g in gateways],),
    ).fetchall()
    found = load_conditions(conn, scope.patient_id)
    return PatientDetail(
        **_summary(row),
        conditions=list(found.conditions) if found else [],
        birth_date=extra[0],
        national_id=extra[1],
        timezone=extra[2],
        active=extra[3],
        active_plan_version=extra[4],
        gateways=[
            GatewayOut(
                id=g[0],
                enabled=g[1],
                state=g[2],
                last_seen_at=g[3],
                agent_version=g[4],
                outbox_depth=g[5],
                devices=[
                    DeviceStatusOut(
                        address=d[1], type=d[2], model=d[3], battery_percent=d[4], first_seen_at=d[5], last_seen_at=d[6]
                    )
                    for d in devices
                    if d[0] == g[0]
                ],
            )
            for g in gateways
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
    scope.conn.execute("SELECT 1 FROM patients WHERE id = %s FOR UPDATE", (scope.patient_id,))
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
    where: list[sql.Composable] = [sql.SQL("patient_id = %s")]
    params: list[Any] = [scope.patient_id]
    if kind:
        where.append(sql.SQL("kind = %s"))
        params.append(kind.value)
    if from_:
        where.append(sql.SQL("measured_at >= %s"))
        params.append(from_)
    if to:
        where.append(sql.SQL("measured_at < %s"))
        params.append(to)
    if cursor:
        at, reading_id = paging.decode("readings", cursor, (paging.parse_time, UUID))
        where.append(sql.SQL("(measured_at, id) < (%s, %s)"))
        params += [at, reading_id]
    rows = scope.conn.execute(
        sql.SQL(
            "SELECT id, kind, value, measured_at, received_at, device_address, device_type, "
            "device_model, flags, gateway_id, grp FROM readings WHERE {} ORDER BY measured_at DESC, id "
            "DESC LIMIT %s"
        ).format(sql.SQL(" AND ").join(where)),
        [*params, limit + 1],
    ).fetchall()
    shown, next_cursor = paging.page(rows, limit, lambda r: (r[3], r[0]), "readings")
    items = [
        Measurement(
            id=r[0],
            kind=Kind(r[1]),
            value=r[2],
            unit=KINDS[Kind(r[1])].unit,
            measured_at=r[3],
            received_at=r[4],
            device=DeviceRefOut(address=r[5], type=r[6], model=r[7]),
            flags=list(r[8]),
            gateway_id=r[9],
            group=r[10],
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
        items=[TrendBucket(start=r[0], min=r[1], avg=r[2], max=r[3], count=r[4]) for r in trend.rows],
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
    grant_id, granted_at, expires_at = granted
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
    where: list[sql.Composable] = [sql.SQL("patient_id = %s")]
    params: list[Any] = [scope.patient_id]
    if cursor:
        (before,) = paging.decode("access-log", cursor, (int,))
        where.append(sql.SQL("id < %s"))
        params.append(before)
    rows = scope.conn.execute(
        sql.SQL(
            "SELECT id, at, user_id, username, role, team_id, action, resource, outcome, emergency, "
            "reason FROM audit_log WHERE {} ORDER BY id DESC LIMIT %s"
        ).format(sql.SQL(" AND ").join(where)),
        [*params, limit + 1],
    ).fetchall()
    shown, next_cursor = paging.page(rows, limit, lambda r: (r[0],), "access-log")
    return AccessLogPage(
        items=[
            AccessLogEntry(
                id=r[0],
                at=r[1],
                user_id=r[2],
                username=r[3],
                role=r[4],
                team_id=r[5],
                action=r[6],
                resource=r[7],
                outcome=r[8],
                emergency=r[9],
                reason=r[10],
            )
            for r in shown
        ],
        next=next_cursor,
    )
