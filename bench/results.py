"""Benchmark results kept: each run's JSON line, with the facts of the machine it ran on, appended to
`bench/results/<name>.jsonl`, so every figure docs/sizing.md quotes can be traced to a run."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine_facts(database_url: str | None = None) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    try:
        facts["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=RESULTS.parent, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        facts["commit"] = None
    if database_url:
        import psycopg

        with psycopg.connect(database_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            facts["postgresql"] = row[0] if row else None
    return facts


def keep(
    name: str,
    result: dict[str, Any],
    *,
    machine: dict[str, Any] | None = None,
    database_url: str | None = None,
    directory: Path = RESULTS,
) -> str:
    """Print the run's one JSON line and append it, with the machine's facts (`machine`, or read now), to
    `<directory>/<name>.jsonl`."""
    line = json.dumps({**result, "machine": machine or machine_facts(database_url)})
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f"{name}.jsonl", "a") as out:
        out.write(line + "\n")
    print(line)
    return line
