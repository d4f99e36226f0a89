"""Alarm candidates: what the rules found in one ingest batch, one per patient and rule, ready to upsert.

`evaluate_batch` is the entry point ingest calls inside its transaction. It is pure: arrays in, candidates and
per-reading severities out; opening, updating and deduplicating alarm rows is the caller's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rules_engine.combined import RECENT_DAYS, CombinedResults, evaluate_combined, weight_above_baseline
from rules_engine.explain import (
    explain_baseline_drift,
    explain_combined,
    explain_news2,
    explain_personal_threshold,
    explain_threshold,
    explain_weight_above_baseline,
    explain_weight_gain,
)
from rules_engine.kinds_index import KIND_ORDER
from rules_engine.news2 import DEFAULT_WINDOW_S, RED_AGGREGATE, YELLOW_AGGREGATE, News2Parameter, News2Results
from rules_engine.news2 import evaluate_news2 as _evaluate_news2
from rules_engine.personal import SOURCE_NAMES, Source
from rules_engine.profiles import LIMIT_NAMES, Limit, PatientRules
from rules_engine.readings import ReadingArrays, sort_readings
from rules_engine.severity import Severity, SeverityLabel
from rules_engine.thresholds import ThresholdBreaches, evaluate_thresholds, worst_breaches
from rules_engine.trends import DAY_S, TrendResults, evaluate_trends
from vitals import Kind

PatientId = str | int

NEWS2_MIN_PARAMETERS = 2
"""With a single parameter the threshold rule already speaks; NEWS2 alarms need at least two."""


@dataclass(frozen=True, slots=True)
class AlarmCandidate:
    """One rule's finding for one patient in one batch. Rule ids: "threshold.<kind>.low|high",
    "trend.weight_gain", "trend.spo2_baseline", "trend.pulse_baseline", "news2", "combined.heart_failure",
    "combined.copd"."""

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


def _at(epoch_s: int | np.integer[Any]) -> datetime:
    return datetime.fromtimestamp(int(epoch_s), tz=UTC)


def _patient_id(patient_ids: Sequence[PatientId] | NDArray[Any] | None, row: int) -> PatientId | None:
    if patient_ids is None:
        return None
    pid = patient_ids[row]
    return pid.item() if isinstance(pid, np.generic) else pid


def _batch_index(index: int) -> int | None:
    return index if index >= 0 else None


def threshold_candidates(
    breaches: ThresholdBreaches,
    patient_ids: Sequence[PatientId] | NDArray[Any] | None = None,
    rules: PatientRules | None = None,
) -> list[AlarmCandidate]:
    """One candidate per breach. With `rules`, a breached personal limit is explained against the patient's usual
    value and `details["personal"]` carries the baseline; `details["limit_source"]` names every limit's origin."""
    out = []
    for i in range(len(breaches)):
        kind = KIND_ORDER[int(breaches.kind_idx[i])]
        limit_code = Limit(int(breaches.breached[i]))
        value, limit, count = float(breaches.value[i]), float(breaches.limit[i]), int(breaches.count[i])
        row = int(breaches.patient_row[i])
        k = int(breaches.kind_idx[i])
        source = Source.PROTOCOL
        extra: dict[str, Any] = {}
        if rules is not None and rules.limit_source.shape[0] > row:
            source = Source(int(rules.limit_source[row, k, limit_code]))
            extra["limit_source"] = SOURCE_NAMES[source]
        if source is Source.PERSONAL:
            centre, spread = float(rules.centre[row, k]), float(rules.spread[row, k])  # type: ignore[union-attr]
            nb, en = explain_personal_threshold(kind, value, limit, limit_code, count, centre, spread)
            extra["personal"] = {
                "centre": centre,
                "spread": spread,
                "version": int(rules.baseline_version[row, k]),  # type: ignore[union-attr]
            }
        else:
            nb, en = explain_threshold(kind, value, limit, limit_code, count)
        side = "high" if breaches.high[i] else "low"
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
        if results.rule == "trend.weight_gain":
            nb, en = explain_weight_gain(end_value, delta, days, limit)
            details = {"window_min": start_value, "gain": delta, "window_days": days}
        elif results.rule == "trend.weight_baseline":
            nb, en = explain_weight_above_baseline(end_value, start_value, delta, limit, days)
            details = {"personal": {"centre": start_value}, "recent_median": end_value, "recent_days": days}
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
            centre, contribution = float(hits.centre[i, j]), float(hits.contribution[i, j])
            parts.append((spec.kind, recent, centre, contribution))
            contributions[spec.kind.value] = {
                "recent_median": recent,
                "centre": centre,
                "spread": float(hits.spread[i, j]),
                "z": round(float(hits.z[i, j]), 2),
                "contribution": round(contribution, 2),
            }
        score, limit = float(hits.score[i]), float(hits.limit[i])
        nb, en = explain_combined(results.rule, score, limit, parts, RECENT_DAYS)
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
                window_start=_at(anchor - int(RECENT_DAYS * DAY_S)),
                window_end=_at(anchor),
                count=int(hits.count[i]),
                explanation_nb=nb,
                explanation_en=en,
                reading_index=_batch_index(int(hits.reading_index[i])),
                details={"score": score, "limit": limit, "recent_days": RECENT_DAYS, "contributions": contributions},
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
        values = {p: float(results.values[i, p]) for p in measured}
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
    readings = sort_readings(history if history is not None else ReadingArrays.empty(), batch)
    trends = [*evaluate_trends(readings, rules.trends), weight_above_baseline(readings, rules)]
    scores = _evaluate_news2(readings, rules.spo2_scale2, rules.on_oxygen, window_s=news2_window_s) if news2 else None
    combined = evaluate_combined(readings, rules)
    candidates = threshold_candidates(breaches, patient_ids, rules)
    for result in trends:
        candidates.extend(trend_candidates(result, patient_ids))
    for combined_result in combined:
        candidates.extend(combined_candidates(combined_result, patient_ids))
    if scores is not None:
        candidates.extend(news2_candidates(scores, patient_ids, personalised=rules.personalised))
    return BatchEvaluation(severity, breached, candidates, breaches, trends, scores)
