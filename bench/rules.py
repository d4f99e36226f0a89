"""Rules benchmark. Prints one JSON line (kept in bench/results/rules.jsonl).

Headline: the whole rules step as ingest runs it, SQL included (`rules_engine.runtime.evaluate_stored`: protocols,
overrides, the history query, numpy evaluation, alarm upserts), on a batch of real shape: `--batch` readings from
as many patients, each with 14 days of history in PostgreSQL, 1 % of the batch past the red limits. Timed per batch
(ms) inside a rolled-back transaction after the batch's COPY, with `EXPLAIN (ANALYZE, BUFFERS)` of the history
query. Runs its own local PostgreSQL under `.varde/bench-rules`.

Secondary (`numpy`): the vectorised rules alone against a per-reading Python loop of the same rules. Synthetic,
deterministic: 1 000 000 batch readings over 100 000 patients (all kinds, all protocols, some patient
overrides) plus 14 days of SpO2/pulse and 3 days of weight history per patient. Timings are the best of a few
runs. The loop (tests/unit/rules/rules_reference.py) runs on a subset of patients and is extrapolated
per reading; its results on that subset are compared with the vectorised ones. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "unit" / "rules")]

os.environ.setdefault("VARDE_HOME", str(ROOT / ".varde" / "bench-rules"))

import rules_reference as ref  # noqa: E402

from bench.checks import failed_targets, percentile  # noqa: E402
from bench.results import keep, machine_facts  # noqa: E402
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
    pulse_drift,
    sort_readings,
    spo2_drop,
    weight_gain,
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
BROKER_CHUNK = 20

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
    # The loop is the rules as first written: each trend before a second reading confirms it (`evaluate_trends`
    # adds the confirmation and the week's weight gain), so it is compared with the unconfirmed rule functions.
    readings = sort_readings(history, batch)
    weight, spo2, pulse = (rule(readings, rules.trends) for rule in (weight_gain, spo2_drop, pulse_drift))
    for result, expected in ((weight, loop["weight"]), (spo2, loop["spo2"]), (pulse, loop["pulse"])):
        got = {
            int(p): (round(float(d), 6), bool(b))
            for p, d, b in zip(result.patient_row, result.delta, result.breached, strict=True)
        }
        want = {p: (round(e[0] if result is weight else e[1], 6), e[2]) for p, e in expected.items()}
        if got != want:
            return False
    return True


def numpy_figures() -> dict[str, Any]:
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
    return {
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
        "loop_subset_patients": LOOP_PATIENTS,
        "loop_matches_vectorised": matches,
        "threshold_candidates": len(worst),
        "trend_candidates": int(sum(int(r.breached.sum()) for r in trend_results)),
        "runs": RUNS,
        "loop_runs": LOOP_RUNS,
        "seed": SEED,
        "rates_are": "batch readings per second (thresholds: evaluate + worst-per-rule reduction; "
        "trends: merge of the sorted history with the sorted batch + all trend rules; "
        "loop: thresholds + reduction + trends)",
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


# --- the whole step, SQL included --------------------------------------------------------------------------------

_SQL_KINDS: tuple[tuple[Kind, float, float, float], ...] = (
    # kind, typical, spread, value past the red limits
    (Kind.SPO2, 95.0, 1.5, 84.0),
    (Kind.PULSE_RATE, 72.0, 8.0, 148.0),
    (Kind.BODY_WEIGHT, 82.0, 0.4, 82.0),
    (Kind.BP_SYSTOLIC, 132.0, 10.0, 205.0),
    (Kind.BP_DIASTOLIC, 80.0, 6.0, 128.0),
)
_PROTOCOLS = ("heart_failure", "copd", "hypertension", "general")


def _load_history(conn: Any, patients: list[tuple[uuid.UUID, str]], days: int, rng: random.Random) -> int:
    from store.readings import STAGE_COLUMNS, STAGE_TYPES

    now = time.time()
    rows = 0
    with conn.cursor() as cur, cur.copy(f"COPY readings ({STAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(STAGE_TYPES)
        for patient_id, gateway_id in patients:
            base = {k: typical + rng.gauss(0, spread) for k, typical, spread, _ in _SQL_KINDS}
            for slot in range(days * 2):  # morning and evening, as a plan asks
                at = datetime.fromtimestamp(now - (days * 86_400) + slot * 43_200 + rng.randrange(3_600), UTC)
                for kind, _typical, spread, _red in _SQL_KINDS:
                    value = round(base[kind] + rng.gauss(0, spread / 3), 1)
                    copy.write_row(
                        (
                            uuid.uuid4(),
                            patient_id,
                            gateway_id,
                            str(kind),
                            value,
                            at,
                            at,
                            "C0:FE:00:00:00:01",
                            "pulse_oximeter",
                            None,
                            None,
                            [],
                        )
                    )
                    rows += 1
    conn.commit()
    conn.execute("ANALYZE readings")
    return rows


def sql_figures(batch_size: int, runs: int, days: int) -> dict[str, Any]:
    import psycopg

    from ingest_service.writer import StoredBatch
    from rules_engine.runtime import evaluate_stored, history_params
    from store.readings import STAGE_COLUMNS, STAGE_TYPES, ReadingRow
    from store.rules_inputs import HISTORY_SQL
    from store.settings import Settings, varde_home
    from varde import stack
    from varde.admin import provision_fleet

    rng = random.Random(SEED)
    with stack.running(varde_home(), services=False):
        settings = Settings()
        url = settings.require_database_url()
        tag = uuid.uuid4().hex[:6]
        created = []
        for i, protocol in enumerate(_PROTOCOLS):
            share = batch_size // len(_PROTOCOLS) + (1 if i < batch_size % len(_PROTOCOLS) else 0)
            # Broker logins in small messages: a 100-login message outlasts the admin's 10-s wait for an answer on a
            # loaded two-core machine (Mosquitto 2.0's dynamic security), and the bench then died before measuring.
            created += provision_fleet(
                settings, share, team=f"Bench rules {tag} {protocol}", protocol=protocol, broker_chunk=BROKER_CHUNK
            )
        with psycopg.connect(url) as conn:
            patients = [
                (pid, gw)
                for gw, pid in conn.execute(
                    "SELECT id, patient_id FROM gateways WHERE id = ANY(%s)", ([c.gateway_id for c in created],)
                )
            ]
            started = time.perf_counter()
            history_rows = _load_history(conn, patients, days, rng)
            load_s = time.perf_counter() - started
            timings: list[float] = []
            alarms: list[int] = []
            explain: dict[str, Any] = {}
            for run in range(runs):
                now = datetime.now(UTC)
                rows = []
                for n, (patient_id, gateway_id) in enumerate(patients):
                    kind, typical, spread, red = _SQL_KINDS[(n + run) % len(_SQL_KINDS)]
                    value = red if rng.random() < 0.01 else round(typical + rng.gauss(0, spread), 1)
                    rows.append(
                        ReadingRow(
                            uuid.uuid4(),
                            patient_id,
                            gateway_id,
                            str(kind),
                            value,
                            now,
                            now,
                            "C0:FE:00:00:00:01",
                            "pulse_oximeter",
                            None,
                            None,
                            [],
                        )
                    )
                try:
                    with conn.transaction():
                        with (
                            conn.cursor() as cur,
                            conn.transaction(),
                            cur.copy(f"COPY readings ({STAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy,
                        ):
                            copy.set_types(STAGE_TYPES)
                            for row in rows:
                                copy.write_row(row)
                        batch = StoredBatch.of(rows)
                        t0 = time.perf_counter()
                        changed = evaluate_stored(conn, batch)
                        timings.append((time.perf_counter() - t0) * 1000)
                        alarms.append(len(changed))
                        if run == runs - 1:
                            earliest = int(min(m.timestamp() for m in batch.measured_at))
                            distinct = list(dict.fromkeys(batch.patient_ids))
                            plan = conn.execute(
                                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + HISTORY_SQL,
                                history_params(distinct, earliest, batch.ids),
                            ).fetchone()
                            explain = _explain_summary(plan[0][0] if plan else {})
                        raise _Rollback
                except _Rollback:
                    pass
        machine = machine_facts(url)
    return {
        "batch_readings": batch_size,
        "patients": len(patients),
        "history_days": days,
        "history_rows": history_rows,
        "history_load_s": round(load_s, 1),
        "runs": runs,
        "batch_ms_p50": round(percentile(timings, 0.5), 1),
        "batch_ms_p95": round(percentile(timings, 0.95), 1),
        "batch_ms_max": round(max(timings), 1),
        "readings_per_s_p50": round(batch_size / (percentile(timings, 0.5) / 1000)),
        "alarms_changed_per_batch": round(sum(alarms) / len(alarms), 1),
        "history_query": explain,
        "machine": machine,
    }


class _Rollback(Exception):
    pass


def _explain_summary(plan: dict[str, Any]) -> dict[str, Any]:
    top = plan.get("Plan", {})
    return {
        "execution_ms": plan.get("Execution Time"),
        "planning_ms": plan.get("Planning Time"),
        "rows": top.get("Actual Rows"),
        "shared_hit_blocks": top.get("Shared Hit Blocks"),
        "shared_read_blocks": top.get("Shared Read Blocks"),
        "top_node": top.get("Node Type"),
        "index_scans": sorted(set(_index_names(top))),
    }


def _index_names(node: dict[str, Any]) -> list[str]:
    names = [node["Index Name"]] if "Index Name" in node else []
    for child in node.get("Plans", []):
        names += _index_names(child)
    return names


TARGETS = {"batch_ms_p95": ("<", 500.0), "numpy_loop_matches": ("==", 1.0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2500, help="readings per batch, one patient each")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--days", type=int, default=14, help="days of history per patient")
    parser.add_argument("--no-numpy", action="store_true", help="skip the numpy-only secondary figures")
    args = parser.parse_args()
    sql = sql_figures(args.batch, args.runs, args.days)
    machine = sql.pop("machine")
    result: dict[str, Any] = {"bench": "rules", **sql}
    if not args.no_numpy:
        result["numpy"] = numpy_figures()
        result["numpy_loop_matches"] = 1.0 if result["numpy"]["loop_matches_vectorised"] else 0.0
        result["failed"] = failed_targets(result, TARGETS)
    else:
        result["failed"] = failed_targets(result, {"batch_ms_p95": TARGETS["batch_ms_p95"]})
    keep("rules", result, machine=machine)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
