"""Replay speed benchmark. Prints one JSON line (kept in bench/results/replay.jsonl).

`varde rules replay` end to end, as a user runs it (a subprocess: CSV parsing, validation, the rules, alarm state,
JSON output), on at least a million readings: the alarm-quality cohort (`device_simulators.cohort`, `--patients`
× `--weeks`) written `--copies` times under other patient ids, so the rules see `copies × patients` patients.
Target: ≥ 1 000 000 readings per minute, wall clock, parsing included. The engine's own share (the replay after
parsing) is the figure the CLI prints on stderr.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench.checks import failed_targets  # noqa: E402
from bench.results import keep  # noqa: E402

TARGETS = {"readings_per_min": (">=", 1_000_000.0)}


def run(patients: int, weeks: int, copies: int) -> dict[str, Any]:
    from device_simulators.cohort import build_cohort
    from vitals.readings_csv import write_rows

    cohort = build_cohort(patients=patients, weeks=weeks)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "readings.csv"
        with path.open("w", encoding="utf-8") as out:
            rows = write_rows(
                out, ((f"{pid}-x{c}", k, v, at) for c in range(copies) for pid, k, v, at in cohort.readings)
            )
        varde = Path(sys.executable).with_name("varde")
        started = time.perf_counter()
        done = subprocess.run(
            [str(varde), "rules", "replay", str(path), "--protocol", "heart_failure"],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
    engine = re.search(r"in ([0-9.]+) s", done.stderr)
    return {
        "bench": "replay",
        "readings": rows,
        "patients": patients * copies,
        "weeks": weeks,
        "exit_code": done.returncode,
        "alarms": len(done.stdout.splitlines()),
        "wall_s": round(wall, 2),
        "readings_per_min": round(rows / wall * 60),
        "engine_s": float(engine.group(1)) if engine else None,
        "engine_readings_per_min": round(rows / float(engine.group(1)) * 60) if engine else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--weeks", type=int, default=20)
    parser.add_argument("--copies", type=int, default=6, help="times the cohort is written under other patient ids")
    args = parser.parse_args()
    result = run(args.patients, args.weeks, args.copies)
    result["failed"] = failed_targets(result, TARGETS) + ([] if result["exit_code"] == 0 else ["exit_code != 0"])
    keep("replay", result)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
