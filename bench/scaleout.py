"""Benchmark of API scale-out on one machine: throughput and latency through HAProxy with 1 and with 2 API replicas.

Builds a bench database the way bench/api.py does (10 000 patients in 20 teams, open and resolved alarms), with
fewer readings (default 2 M) so the run takes a few minutes, and starts two `varde api run` replicas behind a real
HAProxy (varde.scaleout). Then, in the same run, `--clients` concurrent clients (each its own keep-alive connection
and a nurse's token) send a mix of alarm-queue (`GET /api/v1/alarms?limit=50`) and 90-day hourly SpO2 trend
requests for `--seconds` per round, with

- the LB serving 1 replica (the other in maintenance) — the baseline,
- the LB serving 2 replicas,

alternating over `--rounds` rounds so a change in the machine's other load hits both alike, plus one round straight
at replica 1 without the LB (the LB's own cost). Prints one JSON line: requests/s and p50/p95 per configuration.

    python bench/scaleout.py [--readings 2000000] [--clients 8] [--seconds 10] [--rounds 2] [--keep] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from bench.api import PASSWORD, _bench_url, _create_database, _fill, _percentiles, drop_database  # noqa: E402
from varde import scaleout  # noqa: E402


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Round:
    """Latencies (ms) per request kind and the wall time of one load round."""

    samples: dict[str, list[float]] = field(default_factory=lambda: {"queue": [], "trend": []})
    errors: int = 0
    seconds: float = 0.0
    replicas_seen: set[str] = field(default_factory=set)


def _nurse_and_patients(url: str) -> tuple[str, list[str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT t.id, u.username FROM care_teams t JOIN team_memberships m ON m.team_id = t.id "
            "JOIN users u ON u.id = m.user_id ORDER BY t.name LIMIT 1"
        ).fetchone()
        assert row is not None, "the bench database has no nurse"
        patients = [str(r[0]) for r in conn.execute("SELECT id FROM patients WHERE team_id = %s", (row[0],))]
    return str(row[1]), patients


def _load(base: str, token: str, patients: list[str], clients: int, seconds: float) -> Round:
    """`clients` threads, each with its own connection, alternate queue and trend requests for `seconds`."""
    result = Round()
    lock = threading.Lock()
    end = datetime.now(UTC)
    start = end - timedelta(days=90)
    trend_params = {"kind": "spo2", "bucket": "hour", "from": start.isoformat(), "to": end.isoformat()}
    stop_at = time.monotonic() + seconds

    def client_loop(seed: int) -> None:
        rng = secrets.SystemRandom()
        local = Round()
        requests: list[tuple[str, Callable[[httpx.Client], httpx.Response]]] = [
            ("queue", lambda c: c.get("/api/v1/alarms", params={"limit": 50})),
            ("trend", lambda c: c.get(f"/api/v1/patients/{rng.choice(patients)}/measurements", params=trend_params)),
        ]
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            turn = seed
            while time.monotonic() < stop_at:
                kind, send = requests[turn % 2]
                turn += 1
                began = time.perf_counter()
                try:
                    response = send(client)
                except httpx.HTTPError:
                    local.errors += 1
                    continue
                if response.status_code != 200:
                    local.errors += 1
                    continue
                local.samples[kind].append((time.perf_counter() - began) * 1000)
                local.replicas_seen.add(response.headers.get(scaleout.REPLICA_HEADER, "direct"))
        with lock:
            for kind, values in local.samples.items():
                result.samples[kind].extend(values)
            result.errors += local.errors
            result.replicas_seen |= local.replicas_seen

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - began
    return result


def _merge(rounds: list[Round]) -> Round:
    merged = Round()
    for r in rounds:
        for kind, values in r.samples.items():
            merged.samples[kind].extend(values)
        merged.errors += r.errors
        merged.seconds += r.seconds
        merged.replicas_seen |= r.replicas_seen
    return merged


def _figures(label: str, r: Round) -> dict[str, Any]:
    total = sum(len(v) for v in r.samples.values())
    both = [x for v in r.samples.values() for x in v]
    figures: dict[str, Any] = {
        f"api_rps_{label}": round(total / r.seconds, 1) if r.seconds else 0.0,
        f"p50_ms_{label}": _percentiles(both)[0] if both else None,
        f"p95_ms_{label}": _percentiles(both)[1] if both else None,
        f"errors_{label}": r.errors,
        f"replicas_seen_{label}": sorted(r.replicas_seen),
    }
    for kind, values in r.samples.items():
        if values:
            p50, p95 = _percentiles(values)
            figures[f"{kind}_p50_ms_{label}"] = p50
            figures[f"{kind}_p95_ms_{label}"] = p95
    return figures


def measure(pool: scaleout.ReplicaPool, url: str, clients: int, seconds: float, rounds: int) -> dict[str, Any]:
    username, patients = _nurse_and_patients(url)
    login = httpx.post(f"{pool.url}/api/v1/auth/token", data={"username": username, "password": PASSWORD}, timeout=30)
    login.raise_for_status()
    token = str(login.json()["access_token"])
    _say("warming up both replicas")
    _load(pool.url, token, patients, clients, 3.0)
    _say(f"direct to replica 1 (no LB), {clients} clients, {seconds:.0f} s")
    direct = _load(pool.replicas[0].url, token, patients, clients, seconds)
    by_count: dict[int, list[Round]] = {1: [], 2: []}
    for n in range(rounds):
        for count in (1, 2) if n % 2 == 0 else (2, 1):
            pool.set_serving(count)
            _say(f"round {n + 1}/{rounds}: LB with {count} replica(s), {clients} clients, {seconds:.0f} s")
            by_count[count].append(_load(pool.url, token, patients, clients, seconds))
    pool.set_serving(len(pool.replicas))
    figures: dict[str, Any] = {}
    figures.update(_figures("1", _merge(by_count[1])))
    figures.update(_figures("2", _merge(by_count[2])))
    figures.update(_figures("direct_1", direct))
    one, two = figures["api_rps_1"], figures["api_rps_2"]
    figures["speedup_2_vs_1"] = round(two / one, 2) if one else None
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--readings", type=int, default=2_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one load round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per configuration (alternating)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept bench database instead of building")
    args = parser.parse_args()

    os.environ.setdefault("VARDE_HOME", str(ROOT / ".varde" / "bench-scaleout"))
    from varde import stack

    home = Path(os.environ["VARDE_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    with stack.running(home, services=False) as state:
        database_url = state["database_url"]
        url = _bench_url(database_url)
        build: dict[str, float] = {}
        if _create_database(database_url, args.reuse):
            _say(f"building 10 000 patients and {args.readings} readings")
            build = _fill(url, args.readings)
        env = {"VARDE_DATABASE_URL": url, "VARDE_JWT_SECRET": secrets.token_urlsafe(32)}
        with scaleout.replicas(home, 2, env=env) as pool:
            result = measure(pool, url, args.clients, args.seconds, args.rounds)
        if not args.keep:
            drop_database(database_url)
    result.update(
        {
            "readings": args.readings,
            "clients": args.clients,
            "seconds_per_round": args.seconds,
            "rounds": args.rounds,
            "build_seconds": build,
            "load_balancer": "HAProxy, round robin, /healthz checks",
            "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
