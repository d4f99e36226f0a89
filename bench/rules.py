"""Benchmark of the vectorised rules against a per-reading Python loop of the same rules, in one run.

Synthetic, deterministic: 1 000 000 batch readings over 100 000 patients (all kinds, all protocols, some patient
overrides) plus 14 days of SpO2/pulse and 3 days of weight history per patient. Timings are the best of a few
runs. The loop (tests/unit/rules/rules_reference.py) runs on a subset of patients and is extrapolated
per reading; its results on that subset are compared with the vectorised ones. Prints one JSON line.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "unit" / "rules")]

import rules_reference as ref  # noqa: E402

from rules_engine import (  # noqa: E402
    KIND_ORDER,
    N_KINDS,
    LimitOverrides,
    PatientRules,
    ReadingArrays,
    TrendSetting,
    build_patient_rules,
    evaluate_thresholds,
    evaluate_trends,
    kind_index,
    sort_readings,
    worst_breaches,
)
from vitals import KINDS, Kind  # noqa: E402

SEED = 20261121
N_PATIENTS = 100_000
N_BATCH = 1_000_000
LOOP_PATIENTS = 2_000
RUNS = 5
LOOP_RUNS = 3
NOW = 1_795_000_000
DAY = 86_400

# Typical value and spread per kind; a few readings land far out so every rule family fires.
_TYPICAL = {
    Kind.BP_SYSTOLIC: (130, 18),
    Kind.BP_DIASTOLIC: (80, 10),
    Kind.BP_MEAN: (95, 10),
    Kind.PULSE_RATE: (72, 12),
    Kind.HEART_RATE: (72, 12),
    Kind.SPO2: (95, 2.5),
    Kind.BODY_TEMPERATURE: (36.8, 0.5),
    Kind.BODY_WEIGHT: (80, 12),
    Kind.GLUCOSE: (7.0, 2.5),
    Kind.RESP_RATE: (16, 3),
}


def _values(rng: np.random.Generator, kind_idx: np.ndarray, noise: float = 1.0) -> np.ndarray:
    mean = np.array([_TYPICAL[k][0] for k in KIND_ORDER])[kind_idx]
    sd = np.array([_TYPICAL[k][1] for k in KIND_ORDER])[kind_idx]
    low = np.array([KINDS[k].plausible_low for k in KIND_ORDER])[kind_idx]
    high = np.array([KINDS[k].plausible_high for k in KIND_ORDER])[kind_idx]
    decimals = np.array([KINDS[k].decimals for k in KIND_ORDER])[kind_idx]
    raw = np.clip(rng.normal(mean, sd * noise), low, high)
    scale = 10.0**decimals
    return np.asarray(np.round(raw * scale) / scale)


def synthetic() -> tuple[PatientRules, ReadingArrays, ReadingArrays]:
    rng = np.random.default_rng(SEED)
    protocols = rng.integers(0, 5, N_PATIENTS)
    some = rng.choice(N_PATIENTS, N_PATIENTS // 10, replace=False)
    overrides = LimitOverrides.of(
        some, np.full(len(some), kind_index(Kind.SPO2)), np.ones(len(some)), rng.integers(88, 95, len(some))
    )
    rules = build_patient_rules(protocols, overrides)

    kinds = rng.integers(0, N_KINDS, N_BATCH)
    batch = ReadingArrays.of(
        rng.integers(0, N_PATIENTS, N_BATCH), kinds, NOW - rng.integers(0, DAY, N_BATCH), _values(rng, kinds)
    )

    # History: one SpO2 and one pulse reading a day for 14 days, one weight a day for 3 days, per patient.
    per_day = [(Kind.SPO2, 14), (Kind.PULSE_RATE, 14), (Kind.BODY_WEIGHT, 3)]
    parts = []
    for kind, days in per_day:
        p = np.repeat(np.arange(N_PATIENTS), days)
        day = np.tile(np.arange(1, days + 1), N_PATIENTS)
        parts.append((p, np.full(len(p), kind_index(kind)), NOW - day * DAY - rng.integers(0, 3600, len(p))))
    hp, hk, ht = (np.concatenate(cols) for cols in zip(*parts, strict=True))
    # As the database returns it: ORDER BY patient, kind, measured_at.
    order = np.lexsort((ht, hk, hp))
    hp, hk, ht = hp[order], hk[order], ht[order]
    history = ReadingArrays.of(hp, hk, ht, _values(rng, hk, noise=0.4))
    return rules, batch, history


def best_of(fn: Callable[[], Any], runs: int = RUNS) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _subset(readings: ReadingArrays, n_patients: int) -> ReadingArrays:
    keep = readings.patient_row < n_patients
    return ReadingArrays(*(getattr(readings, f)[keep] for f in ("patient_row", "kind_idx", "measured_at", "value")))


def loop_rules(rules: PatientRules, batch: ReadingArrays, history: ReadingArrays) -> dict[str, Any]:
    """The same rules, one reading at a time, on plain Python lists."""
    limits = rules.limits.tolist()
    trends = rules.trends.tolist()
    p, k, t, v = (getattr(batch, f).tolist() for f in ("patient_row", "kind_idx", "measured_at", "value"))
    results = ref.thresholds(p, k, v, limits)
    worst = ref.worst_per_rule(p, k, v, t, results)
    all_p, all_k, all_t, all_v = (
        getattr(history, f).tolist() + getattr(batch, f).tolist()
        for f in ("patient_row", "kind_idx", "measured_at", "value")
    )
    first = len(history)

    def col(setting: TrendSetting) -> list[float]:
        return [row[setting] for row in trends]

    base_days, min_n = col(TrendSetting.BASELINE_DAYS), col(TrendSetting.BASELINE_MIN_READINGS)
    weight = ref.weight_gain(
        all_p,
        all_k,
        all_t,
        all_v,
        first,
        kind_index(Kind.BODY_WEIGHT),
        col(TrendSetting.WEIGHT_GAIN_KG),
        col(TrendSetting.WEIGHT_WINDOW_DAYS),
    )
    spo2 = ref.baseline_drift(
        all_p, all_k, all_t, all_v, first, kind_index(Kind.SPO2), col(TrendSetting.SPO2_DROP), "fall", base_days, min_n
    )
    pulse = ref.baseline_drift(
        all_p,
        all_k,
        all_t,
        all_v,
        first,
        kind_index(Kind.PULSE_RATE),
        col(TrendSetting.PULSE_DRIFT),
        "either",
        base_days,
        min_n,
    )
    return {"thresholds": results, "worst": worst, "weight": weight, "spo2": spo2, "pulse": pulse}


def vectorised_matches_loop(rules: PatientRules, batch: ReadingArrays, history: ReadingArrays, loop: Any) -> bool:
    severity, breached = evaluate_thresholds(batch.patient_row, batch.kind_idx, batch.value, rules.limits)
    if list(zip(severity.tolist(), breached.tolist(), strict=True)) != loop["thresholds"]:
        return False
    worst = worst_breaches(
        batch.patient_row, batch.kind_idx, batch.value, batch.measured_at, severity, breached, rules.limits
    )
    if len(worst) != len(loop["worst"]):
        return False
    weight, spo2, pulse = evaluate_trends(sort_readings(history, batch), rules.trends)
    for result, expected in ((weight, loop["weight"]), (spo2, loop["spo2"]), (pulse, loop["pulse"])):
        got = {
            int(p): (round(float(d), 6), bool(b))
            for p, d, b in zip(result.patient_row, result.delta, result.breached, strict=True)
        }
        want = {p: (round(e[0] if result is weight else e[1], 6), e[2]) for p, e in expected.items()}
        if got != want:
            return False
    return True


def main() -> None:
    rules, batch, history = synthetic()

    def thresholds() -> Any:
        severity, breached = evaluate_thresholds(batch.patient_row, batch.kind_idx, batch.value, rules.limits)
        return worst_breaches(
            batch.patient_row, batch.kind_idx, batch.value, batch.measured_at, severity, breached, rules.limits
        )

    def evaluate_only() -> Any:
        return evaluate_thresholds(batch.patient_row, batch.kind_idx, batch.value, rules.limits)

    def trends() -> Any:
        return evaluate_trends(sort_readings(history, batch), rules.trends)

    t_eval, _ = best_of(evaluate_only)
    t_thr, worst = best_of(thresholds)
    t_trend, trend_results = best_of(trends)

    sub_batch, sub_history = _subset(batch, LOOP_PATIENTS), _subset(history, LOOP_PATIENTS)
    t_loop, loop = best_of(lambda: loop_rules(rules, sub_batch, sub_history), runs=LOOP_RUNS)
    matches = vectorised_matches_loop(rules, sub_batch, sub_history, loop)

    vector_rate = N_BATCH / (t_thr + t_trend)
    loop_rate = len(sub_batch) / t_loop
    print(
        json.dumps(
            {
                "bench": "rules",
                "batch_readings": N_BATCH,
                "history_readings": len(history),
                "patients": N_PATIENTS,
                "threshold_readings_per_s": round(N_BATCH / t_thr),
                "threshold_evaluate_only_readings_per_s": round(N_BATCH / t_eval),
                "trend_readings_per_s": round(N_BATCH / t_trend),
                "vectorised_readings_per_s": round(vector_rate),
                "loop_readings_per_s": round(loop_rate),
                "speedup": round(vector_rate / loop_rate, 1),
                "loop_extrapolated": True,
                "history_sorted_like_the_database": True,
                "loop_subset_patients": LOOP_PATIENTS,
                "loop_subset_batch_readings": len(sub_batch),
                "loop_subset_history_readings": len(sub_history),
                "loop_matches_vectorised": matches,
                "threshold_candidates": len(worst),
                "trend_candidates": int(sum(int(r.breached.sum()) for r in trend_results)),
                "threshold_s": round(t_thr, 4),
                "trend_s": round(t_trend, 4),
                "loop_s": round(t_loop, 4),
                "runs": RUNS,
                "loop_runs": LOOP_RUNS,
                "seed": SEED,
                "rates_are": "batch readings per second (thresholds: evaluate + worst-per-rule reduction; "
                "trends: merge of the sorted history with the sorted batch + all trend rules; "
                "loop: thresholds + reduction + trends)",
                "numpy": np.__version__,
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
