"""Alarm candidates: what the rules found in one ingest batch, one per patient and rule, ready to upsert.

`evaluate_batch` is the entry point ingest calls inside its transaction. It is pure: arrays in, candidates and
per-reading severities out; opening, updating and deduplicating alarm rows is the caller's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rules_engine.combined import EWMA_DAYS, CombinedResults, evaluate_combined, weight_above_baseline
from rules_engine.control_chart import (
    MIN_DISTANCE,
    PERSIST_DAYS,
    PERSIST_MIN_DAYS,
    action_limits,
    persistence_days,
    provisional_centres,
)
from rules_engine.explain import (
    explain_baseline_drift,
    explain_combined,
    explain_home_blood_pressure,
    explain_news2,
    explain_persistence,
    explain_personal_threshold,
    explain_threshold,
    explain_weight_above_baseline,
    explain_weight_gain,
)
from rules_engine.kinds_index import KIND_ORDER, round_as_shown
from rules_engine.news2 import (
    DEFAULT_WINDOW_S,
    PARAMETER_KINDS,
    RED_AGGREGATE,
    YELLOW_AGGREGATE,
    News2Parameter,
    News2Results,
)
from rules_engine.news2 import evaluate_news2 as _evaluate_news2
from rules_engine.personal import MIN_SPREAD, SPEC_HIGH, SPEC_LOW
from rules_engine.profiles import (
    LIMIT_NAMES,
    LIMIT_SOURCES,
    SOURCE_OVERRIDE,
    SOURCE_PERSONAL,
    Limit,
    PatientRules,
)
from rules_engine.readings import ReadingArrays, SortedReadings, sort_readings
from rules_engine.severity import Severity, SeverityLabel
from rules_engine.thresholds import ThresholdBreaches, evaluate_thresholds, worst_breaches
from rules_engine.trends import DAY_S, HomeBloodPressure, TrendResults, evaluate_trends, home_blood_pressure
from vitals import KINDS, Kind

PatientId = str | int

NAN = float("nan")
NEWS2_MIN_PARAMETERS = 2
"""With a single parameter the threshold rule already speaks; NEWS2 alarms need at least two."""


@dataclass(frozen=True, slots=True)
class AlarmCandidate:
    """One rule's finding for one patient in one batch. Rule ids: "threshold.<kind>.low|high",
    "trend.weight_gain", "trend.weight_gain_7d", "trend.weight_baseline", "trend.spo2_baseline",
    "trend.pulse_baseline", "bp.home_average", "news2", "combined.heart_failure", "combined.copd"."""

    patient_row: int
    patient_id: PatientId | None
    rule: str
    kind: Kind | None
    severity: SeverityLabel
    value: float
    """Threshold: the worst reading. Trend: the latest value. NEWS2: the aggregate score."""
    limit: float | None
    """Threshold: the breached plan limit. Trend: the allowed change. NEWS2: the aggregate that triggered."""
    window_start: datetime
    window_end: datetime
    count: int
    explanation_nb: str
    explanation_en: str
    reading_index: int | None
    """Batch index of the reading that decided (to link the alarm to its reading id); None if from history."""
    details: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class BatchEvaluation:
    """Per-reading results for the batch (same order as the input) and the alarm candidates."""

    severity: NDArray[np.int8]
    breached_limit: NDArray[np.int8]
    candidates: list[AlarmCandidate]
    thresholds: ThresholdBreaches
    trends: list[TrendResults]
    news2: News2Results | None
    home_blood_pressure: HomeBloodPressure | None = None


def _at(epoch_s: int | np.integer[Any]) -> datetime:
    return datetime.fromtimestamp(int(epoch_s), tz=UTC)


def _patient_id(patient_ids: Sequence[PatientId] | NDArray[Any] | None, row: int) -> PatientId | None:
    if patient_ids is None:
        return None
    pid = patient_ids[row]
    return pid.item() if isinstance(pid, np.generic) else pid


def _batch_index(index: int) -> int | None:
    return index if index >= 0 else None


@dataclass(frozen=True, slots=True)
class TwoZone:
    """Per threshold breach: the two-zone chart's verdict (`rules_engine.control_chart`)."""

    keep: NDArray[np.bool_]
    """Red, far (beyond the action limit, or no action zone), or persistent: a candidate."""
    days_beyond: NDArray[np.int64]
    """Measurement days of the last PERSIST_DAYS beyond the warning limit; −1 where the breach is not in the
    warning zone (red, or far)."""
    action: NDArray[np.float64]
    """The action limit on the breach's side (NaN: none)."""


def two_zone(breaches: ThresholdBreaches, rules: PatientRules, readings: SortedReadings) -> TwoZone:
    """Sort each yellow breach into far (beyond the action limit, or no action zone: the artefact way, a repeat
    request) or warning zone (kept only when persistent: PERSIST_MIN_DAYS of the last PERSIST_DAYS measurement
    days beyond the warning limit, history included). Red breaches are always kept."""
    n = len(breaches)
    days = np.full(n, -1, dtype=np.int64)
    if n == 0 or not rules.action.shape[0]:
        return TwoZone(np.ones(n, dtype=np.bool_), days, np.full(n, np.nan))
    side = breaches.high.astype(np.int64)
    action = rules.action[breaches.patient_row, breaches.kind_idx, side].copy()
    # Before the run-in: trial limits from the readings so far, on the sides a personal band would cover, unless
    # the yellow limit is hand-set.
    limit_code = breaches.breached.astype(np.int64)
    trial = np.flatnonzero(
        (breaches.severity == Severity.YELLOW)
        & np.isnan(action)
        & ~np.isnan(MIN_DISTANCE[breaches.kind_idx])
        & np.where(breaches.high, SPEC_HIGH[breaches.kind_idx], SPEC_LOW[breaches.kind_idx])
        & (rules.limit_source[breaches.patient_row, breaches.kind_idx, limit_code] != SOURCE_OVERRIDE)
        & np.isnan(rules.centre[breaches.patient_row, breaches.kind_idx])
    )
    if len(trial):
        k = breaches.kind_idx[trial]
        centre, spread = provisional_centres(readings, breaches.patient_row[trial], k, breaches.last_at[trial])
        floored = np.maximum(np.nan_to_num(spread, nan=0.0), MIN_SPREAD[k])
        warning = breaches.limit[trial]
        low, high = action_limits(
            centre,
            floored,
            k,
            np.where(breaches.high[trial], NAN, warning),
            np.where(breaches.high[trial], warning, NAN),
        )
        action[trial] = np.where(breaches.high[trial], high, low)
    beyond_action = np.where(breaches.high, breaches.value > action, breaches.value < action)
    warning_zone = (breaches.severity == Severity.YELLOW) & ~np.isnan(action) & ~beyond_action
    near = np.flatnonzero(warning_zone)
    days[near] = persistence_days(
        readings,
        breaches.patient_row[near],
        breaches.kind_idx[near],
        breaches.high[near],
        breaches.limit[near],
        breaches.last_at[near],
    )
    keep = ~warning_zone | (days >= PERSIST_MIN_DAYS)
    return TwoZone(keep, days, action)


def threshold_candidates(
    breaches: ThresholdBreaches,
    patient_ids: Sequence[PatientId] | NDArray[Any] | None = None,
    rules: PatientRules | None = None,
    zones: TwoZone | None = None,
) -> list[AlarmCandidate]:
    """One candidate per breach. With `rules`, `details["limit_source"]` names the breached limit's origin
    ("protocol", "personal", "hard_floor", "override"), `details["condition"]` where it came from (a condition,
    "general", "spo2_scale2", or the origin itself), and a breached personal limit is explained against the
    patient's usual value with `details["personal"]` carrying the baseline. With `zones`, only the kept breaches
    become candidates, and a persistent warning-zone breach carries `details["persistence"]` (it never waits for a
    repeat: the days before confirmed it)."""
    out = []
    for i in range(len(breaches)):
        if zones is not None and not zones.keep[i]:
            continue
        kind = KIND_ORDER[int(breaches.kind_idx[i])]
        limit_code = Limit(int(breaches.breached[i]))
        value, limit, count = float(breaches.value[i]), float(breaches.limit[i]), int(breaches.count[i])
        side = "high" if breaches.high[i] else "low"
        row = int(breaches.patient_row[i])
        k = int(breaches.kind_idx[i])
        extra: dict[str, Any] = {}
        code = -1
        if rules is not None and rules.limit_source.shape[0] > row:
            code = int(rules.limit_source[row, k, limit_code])
            extra["limit_source"] = rules.limit_origin(row, k, limit_code)
            extra["condition"] = LIMIT_SOURCES[code]
        if rules is not None and code == SOURCE_PERSONAL:
            centre, spread = float(rules.centre[row, k]), float(rules.spread[row, k])
            nb, en = explain_personal_threshold(kind, value, limit, limit_code, count, centre, spread)
            extra["personal"] = {"centre": centre, "spread": spread, "version": int(rules.baseline_version[row, k])}
        else:
            source = LIMIT_SOURCES[code] if code >= 0 else None
            # The text names the condition only where it tells something: several conditions, or the scale-2 target.
            said = source if source == "spo2_scale2" or (rules is not None and rules.n_conditions[row] > 1) else None
            nb, en = explain_threshold(kind, value, limit, limit_code, count, said)
        if zones is not None and zones.days_beyond[i] >= 0:
            days = int(zones.days_beyond[i])
            extra["persistence"] = {
                "days_beyond": days,
                "of_days": PERSIST_DAYS,
                "action_limit": float(zones.action[i]),
            }
            note_nb, note_en = explain_persistence(days, PERSIST_DAYS)
            nb, en = (f"{text.removesuffix('.')}. {note}" for text, note in ((nb, note_nb), (en, note_en)))
        out.append(
            AlarmCandidate(
                patient_row=row,
                patient_id=_patient_id(patient_ids, row),
                rule=f"threshold.{kind}.{side}",
                kind=kind,
                severity=Severity(int(breaches.severity[i])).label,
                value=value,
                limit=limit,
                window_start=_at(breaches.first_at[i]),
                window_end=_at(breaches.last_at[i]),
                count=count,
                explanation_nb=nb,
                explanation_en=en,
                reading_index=int(breaches.reading_index[i]),
                details={"limit_name": LIMIT_NAMES[limit_code], "side": side, **extra},
            )
        )
    return out


def trend_candidates(
    results: TrendResults, patient_ids: Sequence[PatientId] | NDArray[Any] | None = None
) -> list[AlarmCandidate]:
    hits = results.breaches()
    out = []
    for i in range(len(hits)):
        end_value, start_value = float(hits.end_value[i]), float(hits.start_value[i])
        delta, limit, days = float(hits.delta[i]), float(hits.limit[i]), int(hits.window_s[i]) / DAY_S
        details: dict[str, Any]
        span_s = int(hits.end_at[i]) - int(hits.start_at[i])
        if results.rule == "trend.weight_baseline":
            nb, en = explain_weight_above_baseline(end_value, start_value, delta, limit, days)
            details = {"personal": {"centre": start_value}, "recent_median": end_value, "recent_days": days}
        elif results.kind is Kind.BODY_WEIGHT:
            nb, en = explain_weight_gain(end_value, delta, span_s, limit, days)
            details = {"window_min": start_value, "gain": delta, "window_days": days, "span_hours": span_s / 3600}
        else:
            nb, en = explain_baseline_drift(results.kind, end_value, start_value, delta, limit, days)
            details = {"baseline_median": start_value, "change": delta, "baseline_days": days}
        row = int(hits.patient_row[i])
        out.append(
            AlarmCandidate(
                patient_row=row,
                patient_id=_patient_id(patient_ids, row),
                rule=results.rule,
                kind=results.kind,
                severity=Severity(int(hits.severity[i])).label,
                value=end_value,
                limit=limit,
                window_start=_at(hits.start_at[i]),
                window_end=_at(hits.end_at[i]),
                count=int(hits.count[i]),
                explanation_nb=nb,
                explanation_en=en,
                reading_index=_batch_index(int(hits.reading_index[i])),
                details={"start_value": start_value, "end_value": end_value, "delta": delta, **details},
            )
        )
    return out


def combined_candidates(
    results: CombinedResults, patient_ids: Sequence[PatientId] | NDArray[Any] | None = None
) -> list[AlarmCandidate]:
    """One yellow candidate per patient whose combined score breached; `details["contributions"]` per kind."""
    hits = results.breaches()
    out = []
    for i in range(len(hits)):
        parts = []
        contributions: dict[str, dict[str, float]] = {}
        for j, spec in enumerate(hits.inputs):
            recent = float(hits.recent[i, j])
            if np.isnan(recent) or np.isnan(hits.centre[i, j]):
                continue
            recent = KINDS[spec.kind].rounded(recent)  # shown as the kind is shown; the score keeps the EWMA
            centre, contribution = float(hits.centre[i, j]), float(hits.contribution[i, j])
            parts.append((spec.kind, recent, centre, contribution))
            contributions[spec.kind.value] = {
                "recent_level": recent,
                "centre": centre,
                "spread": float(hits.spread[i, j]),
                "z": round(float(hits.z[i, j]), 2),
                "contribution": round(contribution, 2),
            }
        score, limit = float(hits.score[i]), float(hits.limit[i])
        nb, en = explain_combined(results.rule, score, limit, parts, EWMA_DAYS)
        row = int(hits.patient_row[i])
        anchor = int(hits.anchor_at[i])
        out.append(
            AlarmCandidate(
                patient_row=row,
                patient_id=_patient_id(patient_ids, row),
                rule=results.rule,
                kind=None,
                severity=Severity(int(hits.severity[i])).label,
                value=score,
                limit=limit,
                window_start=_at(anchor - int(EWMA_DAYS * DAY_S)),
                window_end=_at(anchor),
                count=int(hits.count[i]),
                explanation_nb=nb,
                explanation_en=en,
                reading_index=_batch_index(int(hits.reading_index[i])),
                details={"score": score, "limit": limit, "recent_days": EWMA_DAYS, "contributions": contributions},
            )
        )
    return out


def home_blood_pressure_candidates(
    results: HomeBloodPressure, patient_ids: Sequence[PatientId] | NDArray[Any] | None = None
) -> list[AlarmCandidate]:
    """`bp.home_average` (needs review): the kind is the component that breached (systolic when both did)."""
    out = []
    for i in np.flatnonzero(results.breached):
        row = int(results.patient_row[i])
        systolic = bool(results.breached_systolic[i])
        sys_mean, dia_mean = float(results.systolic[i]), float(results.diastolic[i])
        n_sys, n_dia = int(results.count_systolic[i]), int(results.count_diastolic[i])
        days = float(results.window_days[i])
        nb, en = explain_home_blood_pressure(
            sys_mean,
            dia_mean,
            max(n_sys, n_dia),
            days,
            float(results.limit_systolic[i]),
            float(results.limit_diastolic[i]),
        )
        out.append(
            AlarmCandidate(
                patient_row=row,
                patient_id=_patient_id(patient_ids, row),
                rule="bp.home_average",
                kind=Kind.BP_SYSTOLIC if systolic else Kind.BP_DIASTOLIC,
                severity=Severity.NEEDS_REVIEW.label,
                value=sys_mean if systolic else dia_mean,
                limit=float(results.limit_systolic[i] if systolic else results.limit_diastolic[i]),
                window_start=_at(results.start_at[i]),
                window_end=_at(results.end_at[i]),
                count=n_sys if systolic else n_dia,
                explanation_nb=nb,
                explanation_en=en,
                reading_index=_batch_index(int(results.reading_index[i])),
                details={
                    "mean_systolic": sys_mean,
                    "mean_diastolic": dia_mean,
                    "readings_systolic": n_sys,
                    "readings_diastolic": n_dia,
                    "limit_systolic": float(results.limit_systolic[i]),
                    "limit_diastolic": float(results.limit_diastolic[i]),
                    "window_days": days,
                },
            )
        )
    return out


def news2_candidates(
    results: News2Results,
    patient_ids: Sequence[PatientId] | NDArray[Any] | None = None,
    *,
    min_parameters: int = NEWS2_MIN_PARAMETERS,
    personalised: NDArray[np.bool_] | None = None,
) -> list[AlarmCandidate]:
    """NEWS2 candidates. For `personalised` patients (run-in over) only red scores alarm: their yellow-zone
    deviations are judged against their own baseline by the personal limits and the combined rule, where a
    moderately raised NEWS2 is often the usual physiology of chronic heart or lung disease."""
    # The single-parameter trigger (a sub-score of 3) is each kind's own red or yellow threshold already (the
    # protocols' limits are NEWS2's 3-bands): only the aggregate raises a NEWS2 alarm, never a duplicate.
    aggregate = results.score >= YELLOW_AGGREGATE
    alarming_mask = (results.severity > Severity.NONE) & (results.n_measured >= min_parameters) & aggregate
    if personalised is not None and len(personalised):
        alarming_mask &= ~personalised[results.patient_row] | (results.severity >= Severity.RED)
    alarming = np.flatnonzero(alarming_mask)
    out = []
    for i in alarming:
        measured = [p for p in News2Parameter if results.sub_scores[i, p] >= 0]
        missing = results.missing_parameters(int(i))
        values = {p: KINDS[PARAMETER_KINDS[p][0]].rounded(float(results.values[i, p])) for p in measured}
        subs = {p: int(results.sub_scores[i, p]) for p in measured}
        score, severity = int(results.score[i]), Severity(int(results.severity[i]))
        trigger = "aggregate"
        nb, en = explain_news2(
            score,
            severity,
            values,
            subs,
            missing,
            scale2=bool(results.scale2[i]),
            on_oxygen=bool(results.on_oxygen[i]),
        )
        decisive = max(measured, key=lambda p: (subs[p], int(results.measured_at[i, p])))
        row = int(results.patient_row[i])
        limit = RED_AGGREGATE if severity is Severity.RED else YELLOW_AGGREGATE
        out.append(
            AlarmCandidate(
                patient_row=row,
                patient_id=_patient_id(patient_ids, row),
                rule="news2",
                kind=None,
                severity=severity.label,
                value=float(score),
                limit=float(limit),
                window_start=_at(min(int(results.measured_at[i, p]) for p in measured)),
                window_end=_at(results.anchor_at[i]),
                count=len(measured),
                explanation_nb=nb,
                explanation_en=en,
                reading_index=_batch_index(int(results.reading_index[i, decisive])),
                details={
                    "score": score,
                    "trigger": trigger,
                    "sub_scores": {p.name.lower(): subs[p] for p in measured},
                    "values": {p.name.lower(): values[p] for p in measured},
                    "partial": bool(results.partial[i]),
                    "missing": [p.name.lower() for p in missing],
                    "spo2_scale": 2 if results.scale2[i] else 1,
                    "assumed": {"consciousness": "alert", "oxygen": "oxygen" if results.on_oxygen[i] else "air"},
                },
            )
        )
    return out


def evaluate_batch(
    batch: ReadingArrays,
    rules: PatientRules,
    history: ReadingArrays | None = None,
    *,
    patient_ids: Sequence[PatientId] | NDArray[Any] | None = None,
    news2: bool = True,
    news2_window_s: int = DEFAULT_WINDOW_S,
) -> BatchEvaluation:
    """Run thresholds, trends and NEWS2 over one committed batch.

    `history` holds earlier readings of the batch's patients (not the batch itself): at least `baseline_days`
    (default 14) of SpO2 and pulse, `weight_window_days` of weight, and `news2_window_s` of NEWS2 parameters.
    `patient_ids[row]` fills `AlarmCandidate.patient_id` when given.
    """
    severity, breached = evaluate_thresholds(batch.patient_row, batch.kind_idx, batch.value, rules.limits)
    breaches = worst_breaches(
        batch.patient_row, batch.kind_idx, batch.value, batch.measured_at, severity, breached, rules.limits
    )
    sorted_readings = sort_readings(history if history is not None else ReadingArrays.empty(), batch)
    # Trends judge the values as shown (one rounding per kind), as thresholds and NEWS2 do.
    readings = replace(sorted_readings, value=round_as_shown(sorted_readings.value, sorted_readings.kind_idx))
    trends = [*evaluate_trends(readings, rules.trends), weight_above_baseline(readings, rules)]
    home_bp = home_blood_pressure(readings, rules.trends)
    scores = _evaluate_news2(readings, rules.spo2_scale2, rules.on_oxygen, window_s=news2_window_s) if news2 else None
    combined = evaluate_combined(readings, rules)
    candidates = threshold_candidates(breaches, patient_ids, rules, two_zone(breaches, rules, readings))
    for result in trends:
        candidates.extend(trend_candidates(result, patient_ids))
    candidates.extend(home_blood_pressure_candidates(home_bp, patient_ids))
    for combined_result in combined:
        candidates.extend(combined_candidates(combined_result, patient_ids))
    if scores is not None:
        candidates.extend(news2_candidates(scores, patient_ids, personalised=rules.personalised))
    return BatchEvaluation(severity, breached, candidates, breaches, trends, scores, home_bp)
