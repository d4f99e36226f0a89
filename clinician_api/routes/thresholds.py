"""A patient's threshold profile: the effective limits (protocol defaults layered with overrides, each with its
source) and their edit, validated by the rules engine before anything is stored in `threshold_overrides`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from psycopg import Connection, sql

from clinician_api import problems
from clinician_api.deps import Clinician, PatientDep, SettingsDep
from clinician_api.problems import ProblemError
from clinician_api.schemas import (
    KindProfile,
    LimitValue,
    PersonalBaseline,
    ThresholdEdit,
    ThresholdProfile,
    TrendValue,
    WhatIfResult,
)
from rules_engine.baselines import current_versions, load_personal
from rules_engine.profiles import (
    LIMIT_NAMES,
    LIMIT_SOURCES,
    PROTOCOL_KINDS,
    SOURCE_OVERRIDE,
    SOURCE_SCALE2,
    TREND_NAMES,
    PatientRules,
    Protocol,
    patient_rules_of,
)
from rules_engine.validation import validate_profile
from rules_engine.whatif import TooManyReadings, what_if
from store.conditions import load_conditions
from vitals import KINDS, Kind

router = APIRouter(prefix="/api/v1/patients", tags=["thresholds"], responses=problems.responses(401, 404))

OverrideRows = dict[str, tuple[tuple[float | None, ...], str]]


@dataclass(frozen=True, slots=True)
class _Basis:
    """What the patient's limits are composed from: conditions and the active plan's NEWS2 settings."""

    protocol: str
    conditions: tuple[str, ...]
    spo2_scale2: bool
    on_oxygen: bool


def _basis(conn: Connection[Any], patient_id: Any) -> _Basis:
    found = load_conditions(conn, patient_id)
    assert found is not None
    row = conn.execute(
        "SELECT coalesce(body->>'spo2_scale' = '2', false), coalesce(jsonb_typeof(body->'oxygen') = 'object', false) "
        "FROM self_management_plans WHERE patient_id = %s AND status = 'active'",
        (patient_id,),
    ).fetchone()
    return _Basis(found.primary, found.conditions, bool(row and row[0]), bool(row and row[1]))


def load_overrides(conn: Connection[Any], patient_id: Any) -> OverrideRows:
    """kind → ((red_low, yellow_low, yellow_high, red_high), source); NULL inherits, NaN removes the limit."""
    rows = conn.execute(
        sql.SQL("SELECT kind, {}, source FROM threshold_overrides WHERE patient_id = %s").format(
            sql.SQL(", ".join(LIMIT_NAMES))
        ),
        (patient_id,),
    ).fetchall()
    return {r[0]: (tuple(r[1:5]), r[5]) for r in rows}


def as_mapping(overrides: OverrideRows) -> dict[str, dict[str, float | None]]:
    """The override rows in the rules engine's vocabulary: a number overrides, None removes; NULLs are left out."""
    return {
        kind: {
            name: (None if math.isnan(v) else v) for name, v in zip(LIMIT_NAMES, values, strict=True) if v is not None
        }
        for kind, (values, _source) in overrides.items()
    }


def profile(conn: Connection[Any], patient_id: Any) -> ThresholdProfile:
    """The limits the rules apply now, each with its origin: the patient's conditions composed (the safer limit
    wins, `condition` names it) → personal (after the run-in) → hand-set; red hard floors are absolute."""
    basis = _basis(conn, patient_id)
    overrides = load_overrides(conn, patient_id)
    composed = patient_rules_of(basis.protocol, conditions=basis.conditions, spo2_scale2=basis.spo2_scale2)
    rules = patient_rules_of(
        basis.protocol,
        as_mapping(overrides),
        conditions=basis.conditions,
        spo2_scale2=basis.spo2_scale2,
        personal=load_personal(conn, [patient_id], {patient_id: 0}),
    )
    baselines = current_versions(conn, patient_id)
    kinds = []
    for k, kind in enumerate(Kind):
        _values, source = overrides.get(kind.value, ((None,) * 4, "manual"))
        limits: dict[str, LimitValue] = {}
        for i, name in enumerate(LIMIT_NAMES):
            value = float(rules.limits[0, k, i])
            code = int(rules.limit_source[0, k, i])
            condition = None
            if code == SOURCE_OVERRIDE:
                origin = "plan" if source == "plan" else "override"
            elif math.isnan(value):
                origin = "none"
            elif code <= SOURCE_SCALE2:
                origin, condition = "protocol", LIMIT_SOURCES[code]
            else:
                origin = LIMIT_SOURCES[code]
            limits[name] = LimitValue(value=None if math.isnan(value) else value, source=origin, condition=condition)
        personal = None
        if kind.value in baselines and not math.isnan(rules.centre[0, k]):
            version, centre, spread, n, computed_at, start, end = baselines[kind.value]
            personal = PersonalBaseline(
                version=version,
                centre=centre,
                spread=spread,
                n=n,
                computed_at=computed_at,
                window_start=start,
                window_end=end,
            )
        kinds.append(KindProfile(kind=kind, unit=KINDS[kind].unit, personal=personal, **limits))
    return ThresholdProfile(
        patient_id=patient_id,
        protocol=basis.protocol,
        conditions=list(basis.conditions),
        spo2_scale=2 if basis.spo2_scale2 else 1,
        on_oxygen=basis.on_oxygen,
        kinds=kinds,
        followed_kinds=_followed(conn, patient_id, basis, overrides),
        trends=_trend_profile(conn, patient_id, composed),
    )


def _followed(conn: Connection[Any], patient_id: Any, basis: _Basis, overrides: OverrideRows) -> list[Kind]:
    """The conditions' kinds, and any other the patient measures (last 90 days) or has own limits for."""
    measured = {
        r[0]
        for r in conn.execute(
            "SELECT k.kind FROM unnest(%s::text[]) AS k(kind) WHERE EXISTS (SELECT 1 FROM readings r "
            "WHERE r.patient_id = %s AND r.kind = k.kind AND r.measured_at > now() - interval '90 days')",
            ([k.value for k in Kind], patient_id),
        ).fetchall()
    }
    followed = {k for c in (basis.protocol, *basis.conditions) for k in PROTOCOL_KINDS[Protocol(c)]}
    wanted = followed | {Kind(k) for k in measured | set(overrides)}
    return [kind for kind in Kind if kind in wanted]


def load_trend_overrides(conn: Connection[Any], patient_id: Any) -> dict[str, tuple[float, str]]:
    rows = conn.execute(
        "SELECT setting, value, source FROM trend_overrides WHERE patient_id = %s", (patient_id,)
    ).fetchall()
    return {r[0]: (float(r[1]), str(r[2])) for r in rows}


def _trend_profile(conn: Connection[Any], patient_id: Any, composed: PatientRules) -> list[TrendValue]:
    own = load_trend_overrides(conn, patient_id)
    out = []
    for column, name in enumerate(TREND_NAMES):
        condition = None
        if name in own:
            value, source = own[name]
            origin = "plan" if source == "plan" else "override"
        else:
            value = float(composed.trends[0, column])
            origin = "none" if math.isnan(value) else "protocol"
            if origin == "protocol":
                condition = LIMIT_SOURCES[int(composed.trend_source[0, column])]
        out.append(
            TrendValue(setting=name, value=None if math.isnan(value) else value, source=origin, condition=condition)
        )
    return out


@router.get("/{patient_id}/thresholds", response_model=ThresholdProfile)
def get_thresholds(scope: PatientDep) -> ThresholdProfile:
    """Effective limits per kind and where each comes from: `protocol` default (with the `condition` it came from:
    the safer of the patient's conditions wins), `personal` (after the run-in, from the patient's own baseline,
    shown in `personal`), `hard_floor` (absolute red limit), clinician `override`, the active `plan`, or `none`
    (no limit)."""
    return profile(scope.conn, scope.patient_id)


@dataclass(frozen=True, slots=True)
class _Proposal:
    """An edit checked against the patient's current settings: the rows to store, and the whole set of hand-set
    limits and trend settings the patient would have after it (in the rules engine's vocabulary)."""

    limit_rows: dict[str, tuple[float | None, ...]]
    """kind → (red_low, yellow_low, yellow_high, red_high): a number overrides, NaN removes, None inherits."""
    trend_rows: dict[str, float | None]
    """setting → a number (NaN: rule off), or None (back to the protocol's value)."""
    limits: dict[str, dict[str, float | None]]
    trends: dict[str, float | None]
    """setting → a number, or None (the trend rule is off)."""


def _proposal(conn: Connection[Any], patient_id: Any, body: ThresholdEdit) -> _Proposal:
    """The edit merged with what is stored, validated as a whole profile; `ProblemError` (422) when it is not."""
    basis = _basis(conn, patient_id)
    errors: list[dict[str, Any]] = []
    for kind, edit in body.limits.items():
        if edit.unit != KINDS[kind].unit:
            errors.append(
                {
                    "loc": ["body", "limits", kind.value, "unit"],
                    "msg": f"{kind.value} limits are in {KINDS[kind].unit!r}, not {edit.unit!r}",
                    "message_nb": f"{KINDS[kind].name_nb} må oppgis i {KINDS[kind].unit_display}",
                }
            )
    if errors:
        raise ProblemError(422, "limits in the wrong unit", errors=errors)
    current = as_mapping(load_overrides(conn, patient_id))
    new_rows: dict[str, tuple[float | None, ...]] = {}
    for kind, edit in body.limits.items():
        values = tuple(
            float("nan") if v == "off" else (float(v) if v is not None else None)
            for v in (edit.red_low, edit.yellow_low, edit.yellow_high, edit.red_high)
        )
        new_rows[kind.value] = values
        current[kind.value] = {
            name: (None if math.isnan(v) else v) for name, v in zip(LIMIT_NAMES, values, strict=True) if v is not None
        }
    trends_now: dict[str, float | None] = {
        name: (None if math.isnan(value) else value)
        for name, (value, _src) in load_trend_overrides(conn, patient_id).items()
    }
    new_trends: dict[str, float | None] = {}
    for trend_name, trend_edit in body.trends.items():
        new_trends[trend_name] = (
            math.nan if trend_edit == "off" else (float(trend_edit) if trend_edit is not None else None)
        )
    merged = dict(trends_now)
    for changed, number in new_trends.items():
        if number is None:
            merged.pop(changed, None)
        else:
            merged[changed] = None if math.isnan(number) else number
    trend_check = {n: v for n, v in merged.items() if v is not None}
    problems_found = validate_profile(
        basis.protocol, current, trend_check, conditions=basis.conditions, spo2_scale2=basis.spo2_scale2
    )
    if problems_found:
        raise ProblemError(
            422,
            "the threshold profile is not valid",
            errors=[
                {
                    "loc": ["body", "trends", p.field.removeprefix("trend.")]
                    if p.field.startswith("trend.")
                    else ["body", "limits", *p.field.split(".")],
                    "msg": p.message,
                    "message_nb": p.message_nb,
                }
                for p in problems_found
            ],
        )
    return _Proposal(new_rows, new_trends, current, merged)


@router.put("/{patient_id}/thresholds", response_model=ThresholdProfile, responses=problems.responses(403, 422))
def put_thresholds(scope: PatientDep, body: ThresholdEdit, principal: Clinician) -> ThresholdProfile:
    """Change the limits of the kinds named in the body (others stay as they are). Per limit: a number overrides
    the protocol default, null inherits it, "off" removes the limit. Refused as a whole when the resulting profile
    is out of order, implausible or in the wrong unit."""
    proposal = _proposal(scope.conn, scope.patient_id, body)
    _store(scope.conn, scope.patient_id, proposal.limit_rows, principal.user_id)
    _store_trends(scope.conn, scope.patient_id, proposal.trend_rows, principal.user_id)
    return profile(scope.conn, scope.patient_id)


@router.post(
    "/{patient_id}/thresholds/what-if",
    response_model=WhatIfResult,
    responses=problems.responses(403, 422),
)
def what_if_thresholds(
    scope: PatientDep, body: ThresholdEdit, principal: Clinician, settings: SettingsDep
) -> WhatIfResult:
    """How many alarms the patient's stored readings of the last 90 days would have raised with the limits in
    force (`alarms_now`) and with this edit saved (`alarms_proposed`), per rule too: both from the offline replay
    of the rules ingest runs. The body is the `PUT` body and is validated the same way (422); nothing is stored.
    Missed measurements and questionnaires are not counted. Audited as a read."""
    del principal  # the role check: only those who may save limits ask what saving would do
    scope.action = "read"
    proposal = _proposal(scope.conn, scope.patient_id, body)
    try:
        found = what_if(
            scope.conn,
            scope.patient_id,
            proposal.limits,
            proposal.trends,
            repeat_timeout_minutes=settings.repeat_timeout_minutes,
        )
    except TooManyReadings as exc:
        raise ProblemError(422, str(exc)) from None
    return WhatIfResult(
        days=found.days,
        readings=found.readings,
        alarms_now=found.alarms_now,
        alarms_proposed=found.alarms_proposed,
        by_rule_now=found.by_rule_now,
        by_rule_proposed=found.by_rule_proposed,
    )


def _store_trends(conn: Connection[Any], patient_id: Any, rows: Mapping[str, float | None], user_id: Any) -> None:
    """A number (or NaN: rule off) is the patient's own setting; None returns to the protocol's value."""
    for name, value in rows.items():
        if value is None:
            conn.execute("DELETE FROM trend_overrides WHERE patient_id = %s AND setting = %s", (patient_id, name))
            continue
        conn.execute(
            "INSERT INTO trend_overrides (patient_id, setting, value, source, updated_by) VALUES (%s, %s, %s, "
            "'manual', %s) ON CONFLICT (patient_id, setting) DO UPDATE SET value = EXCLUDED.value, source = 'manual', "
            "plan_id = NULL, updated_by = EXCLUDED.updated_by, updated_at = now()",
            (patient_id, name, value, user_id),
        )


def _store(conn: Connection[Any], patient_id: Any, rows: Mapping[str, tuple[float | None, ...]], user_id: Any) -> None:
    for kind, values in rows.items():
        if all(v is None for v in values):
            conn.execute("DELETE FROM threshold_overrides WHERE patient_id = %s AND kind = %s", (patient_id, kind))
            continue
        conn.execute(
            sql.SQL(
                "INSERT INTO threshold_overrides (patient_id, kind, {}, source, plan_id, updated_by, "
                "updated_at) VALUES (%s, %s, %s, %s, %s, %s, 'manual', NULL, %s, now()) ON CONFLICT "
                "(patient_id, kind) DO UPDATE SET red_low = EXCLUDED.red_low, yellow_low = "
                "EXCLUDED.yellow_low, yellow_high = EXCLUDED.yellow_high, red_high = EXCLUDED.red_high, "
                "source = 'manual', plan_id = NULL, updated_by = EXCLUDED.updated_by, updated_at = now()"
            ).format(sql.SQL(", ".join(LIMIT_NAMES))),
            (patient_id, kind, *values, user_id),
        )
