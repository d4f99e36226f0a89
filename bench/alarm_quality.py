"""Alarm-quality benchmark (the rules' acceptance). Prints one JSON line (kept in bench/results/alarm_quality.jsonl).

Builds a ground-truth cohort from the project's simulators (`device_simulators.cohort`: several conditions, home
noise and artefacts, adherence, heart-failure and COPD episodes with onset and admission), replays it through the
same engine as `varde rules replay` (each patient on the protocol of their first condition) and, in the same run,
scores the "> 2 kg in 3 days" rule of thumb on the same readings with the same alarm state (one open alarm per
patient, resolved 24 h after it was raised). Figures for both: sensitivity (episodes with a yellow or red alarm
between onset and admission), PPV (alarms inside an episode window / all alarms), alarms per patient-week;
missed-measurement and questionnaire alarms counted apart. Plus the replay's speed in readings per minute.

Targets: sensitivity ≥ 0.8, PPV ≥ 3× and alarm rate ≤ 0.5× the rule of thumb's. Exit status 1 when one fails.
`--patients/--weeks` for quick runs; `--csv PATH` also writes the cohort as replay CSV.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench.alarm_scoring import TARGETS, Alarm, Window, compare, rule_of_thumb_candidates, score  # noqa: E402
from bench.checks import failed_targets  # noqa: E402
from bench.results import keep  # noqa: E402

SCHEDULE_DOC: dict[str, Any] = {
    "protocol": "general",
    "schedule": [
        {"kind": kind, "deadline": "11:00", "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}
        for kind in ("body_weight", "bp_systolic", "spo2")
    ],
    "advice": [{"zone": z, "nb": "Følg planen.", "en": "Follow the plan."} for z in ("green", "yellow", "red")],
    "contacts": [{"name": "Oppfølgingstjenesten", "role": "Sykepleier", "phone": "+47 22 00 00 00"}],
}
"""The cohort's morning schedule, for the missed-measurement alarms (counted apart); it sets no zones."""


def run(patients: int, weeks: int, seed: int, csv: Path | None = None) -> dict[str, Any]:
    from device_simulators.cohort import build_cohort
    from rules_engine.evaluation import RuleInputs
    from rules_engine.kinds_index import KIND_INDEX
    from rules_engine.replay import Candidate, ReplayReadings, ReplaySettings, raise_alarms, replay
    from vitals import Kind
    from vitals.plan import PlanContent

    schedule = PlanContent.model_validate(SCHEDULE_DOC)
    started = time.perf_counter()
    cohort = build_cohort(seed=seed, patients=patients, weeks=weeks)
    build_s = time.perf_counter() - started
    if csv is not None:
        cohort.write_csv(csv)
    readings = ReplayReadings.of(cohort.readings)
    protocol = {p.patient_id: p.protocol for p in cohort.patients}
    inputs = RuleInputs(protocols=tuple(protocol[pid] for pid in readings.patient_ids))
    settings = ReplaySettings()
    result = replay(readings, inputs, settings, schedule=schedule)

    windows = [
        Window(e.patient_id, int(e.onset.timestamp()), int(e.admission.timestamp()), e.condition)
        for e in cohort.episodes
    ]
    engine = score(
        (Alarm(a.patient_id, a.rule, a.severity, a.raised_at) for a in result.alarms), windows, cohort.patient_weeks
    )
    weight = KIND_INDEX[Kind.BODY_WEIGHT]
    is_weight = readings.kind_idx == weight
    row_of = {pid: i for i, pid in enumerate(readings.patient_ids)}
    thumb_candidates = [
        Candidate(row_of[pid], "rule_of_thumb.weight_gain_2kg_3d", Kind.BODY_WEIGHT.value, "yellow", at)
        for pid, at in rule_of_thumb_candidates(
            zip(
                (readings.patient_ids[r] for r in readings.patient_row[is_weight].tolist()),
                readings.measured_at[is_weight].tolist(),
                readings.value[is_weight].tolist(),
                strict=True,
            )
        )
    ]
    thumb_alarms, _ = raise_alarms(thumb_candidates, readings, settings)
    thumb = score(
        (Alarm(a.patient_id, a.rule, a.severity, a.raised_at) for a in thumb_alarms), windows, cohort.patient_weeks
    )
    figures = compare(engine, thumb)
    by_condition: dict[str, int] = {}
    for e in cohort.episodes:
        by_condition[e.condition] = by_condition.get(e.condition, 0) + 1
    return {
        "bench": "alarm_quality",
        "patients": patients,
        "weeks": weeks,
        "seed": seed,
        "readings": len(readings),
        "episodes": len(cohort.episodes),
        "episodes_by_condition": by_condition,
        "cohort_build_s": round(build_s, 2),
        "replay_s": round(result.seconds, 3),
        "replay_readings_per_min": round(result.readings_per_minute),
        "replay_batches": result.batches,
        "repeats": result.repeats,
        **figures,
        "engine": engine,
        "rule_of_thumb": thumb,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--weeks", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--csv", type=Path, help="also write the cohort's readings as replay CSV")
    parser.add_argument("--no-keep", action="store_true", help="print only; do not append to bench/results")
    args = parser.parse_args()
    result = run(args.patients, args.weeks, args.seed, args.csv)
    result["targets"] = {name: f"{op} {bound}" for name, (op, bound) in TARGETS.items()}
    result["failed"] = failed_targets(result, TARGETS)
    if args.no_keep:
        import json

        print(json.dumps(result))
    else:
        keep("alarm_quality", result)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
