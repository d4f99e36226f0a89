"""A patient's threshold profile: the effective limits (protocol defaults layered with overrides, each with its
source) and their edit, validated by the rules engine before anything is stored in `threshold_overrides`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from psycopg import Connection

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
from rules_engine.baselines import load_personal
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
from store import personal_limits, plans, readings, thresholds
from store.conditions import load_conditions
from vitals import KINDS, Kind

router = APIRouter(prefix="/api/v1/patients", tags=["thresholds"], responses=problems.responses(401, 404))


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
    news2 = plans.active_news2(conn, patient_id)
    return _Basis(found.primary, found.conditions, bool(news2 and news2.spo2_scale2), bool(news2 and news2.on_oxygen))


def _rules_limits(values: thresholds.Limits) -> dict[str, float | None]:
    """Stored limits in the rules engine's vocabulary: a number overrides, None removes; NULLs are left out."""
    return {name: (None if math.isnan(v) else v) for name, v in zip(LIMIT_NAMES, values, strict=True) if v is not None}


def as_mapping(overrides: Mapping[str, thresholds.LimitOverride]) -> dict[str, dict[str, float | None]]:
    """The patient's own limits (`store.thresholds.limit_overrides`) in the rules engine's vocabulary."""
    return {kind: _rules_limits(row.limits) for kind, row in overrides.items()}


def profile(conn: Connection[Any], patient_id: Any) -> ThresholdProfile:
    """The limits the rules apply now, each with its origin: the patient's conditions composed (the safer limit
    wins, `condition` names it) → personal (after the run-in) → hand-set; red hard floors are absolute."""
    basis = _basis(conn, patient_id)
    overrides = thresholds.limit_overrides(conn, patient_id)
    composed = patient_rules_of(basis.protocol, conditions=basis.conditions, spo2_scale2=basis.spo2_scale2)
    rules = patient_rules_of(
        basis.protocol,
        as_mapping(overrides),
        conditions=basis.conditions,
        spo2_scale2=basis.spo2_scale2,
        personal=load_personal(conn, [patient_id], {patient_id: 0}),
    )
    baselines = personal_limits.versions_in_force(conn, patient_id)
    kinds = []
    for k, kind in enumerate(Kind):
        override = overrides.get(kind.value)
        source = override.source if override else "manual"
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
            baseline = baselines[kind.value]
            personal = PersonalBaseline(
                version=baseline.version,
                centre=baseline.centre,
                spread=baseline.spread,
                n=baseline.n,
                computed_at=baseline.computed_at,
                window_start=baseline.window_start,
                window_end=baseline.window_end,
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


def _followed(
    conn: Connection[Any], patient_id: Any, basis: _Basis, overrides: Mapping[str, thresholds.LimitOverride]
) -> list[Kind]:
    """The conditions' kinds, and any other the patient measures (last 90 days) or has own limits for."""
    measured = readings.kinds_measured_lately(conn, patient_id, [k.value for k in Kind])
    followed = {k for c in (basis.protocol, *basis.conditions) for k in PROTOCOL_KINDS[Protocol(c)]}
    wanted = followed | {Kind(k) for k in measured | set(overrides)}
    return [kind for kind in Kind if kind in wanted]


def _trend_profile(conn: Connection[Any], patient_id: Any, composed: PatientRules) -> list[TrendValue]:
    own = thresholds.trend_overrides(conn, patient_id)
    out = []
    for column, name in enumerate(TREND_NAMES):
        condition = None
        if name in own:
            value = own[name].value
            origin = "plan" if own[name].source == "plan" else "override"
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

    limit_rows: dict[str, thresholds.Limits]
    """kind → (red_low, yellow_low, yellow_high, red_high): a number overrides, NaN removes, None inherits."""
    trend_rows: dict[str, float | None]
    """setting → a number (NaN: rule off), or None (back to the protocol's value)."""
    limits: dict[str, dict[str, float | None]]
    trends: dict[str, float | None]
    """setting → a number, or None (the trend rule is off)."""


def _edited(limit: float | str | None) -> float | None:
    """One edited limit as stored: "off" removes it (NaN), a number overrides, None inherits."""
    return float("nan") if limit == "off" else (float(limit) if limit is not None else None)


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
    current = as_mapping(thresholds.limit_overrides(conn, patient_id))
    new_rows: dict[str, thresholds.Limits] = {}
    for kind, edit in body.limits.items():
        values = (_edited(edit.red_low), _edited(edit.yellow_low), _edited(edit.yellow_high), _edited(edit.red_high))
        new_rows[kind.value] = values
        current[kind.value] = _rules_limits(values)
    trends_now: dict[str, float | None] = {
        name: (None if math.isnan(own.value) else own.value)
        for name, own in thresholds.trend_overrides(conn, patient_id).items()
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
    thresholds.save_manual_limits(scope.conn, scope.patient_id, proposal.limit_rows, principal.user_id)
    thresholds.save_manual_trends(scope.conn, scope.patient_id, proposal.trend_rows, principal.user_id)
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
