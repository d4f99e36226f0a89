"""Benchmark of the clinician API on a large database: alarm queue and 90-day hourly trend, through real HTTP.

Builds, in one run, a separate database on the bench stack's PostgreSQL (`varde_bench`, created and dropped here):
10 000 patients in 20 care teams, one gateway each, and `--readings` readings (default 50 M) spread over the
last two years, generated server-side with `INSERT … SELECT generate_series` (indexes built after the load; the
reading partitions are UNLOGGED — a bench database, never a pattern for production), plus open and resolved
alarms, then ANALYZE. An API process (uvicorn, the production entry point) serves that database, and the bench
measures p50/p95 latency of

- the alarm queue (`GET /api/v1/alarms?limit=50`) of a nurse in one team of 500 patients, and
- a 90-day hourly SpO2 trend (`GET /api/v1/patients/{id}/measurements?kind=spo2&bucket=hour`) of random patients,

each with a baseline in the same run: the same SQL run directly through psycopg, so the difference is the API's
own overhead (HTTP, auth, duty-of-care check, audit insert, serialisation). Prints one JSON line.

    python bench/api.py [--readings 50000000] [--requests 300] [--keep] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from varde.net import free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from clinician_api.passwords import hash_password  # noqa: E402
from store.migrate import migrate  # noqa: E402

BENCH_DB = "varde_bench"
N_PATIENTS = 10_000
N_TEAMS = 20
KINDS = [  # (kind, typical value, spread, share of readings)
    ("spo2", 95.0, 2.5, 0.25),
    ("pulse_rate", 72.0, 10.0, 0.25),
    ("bp_systolic", 132.0, 15.0, 0.15),
    ("bp_diastolic", 82.0, 8.0, 0.15),
    ("body_weight", 80.0, 12.0, 0.1),
    ("body_temperature", 36.8, 0.4, 0.1),
]
SPAN_DAYS = 730
PASSWORD = "bench-password-123"


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return round(p50, 2), round(p95, 2)


def _timed(fn: Callable[[], Any], n: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


# --- database ---------------------------------------------------------------------------------------------------


def _admin_url(database_url: str) -> str:
    return database_url.rsplit("/", 1)[0] + "/postgres"


def _bench_url(database_url: str) -> str:
    return database_url.rsplit("/", 1)[0] + "/" + BENCH_DB


def _create_database(database_url: str, reuse: bool) -> bool:
    """True when a fresh database was created (and must be filled)."""
    with psycopg.connect(_admin_url(database_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone()
        if exists and reuse:
            return False
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    return True


def drop_database(database_url: str) -> None:
    with psycopg.connect(_admin_url(database_url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def _fill(url: str, n_readings: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    with psycopg.connect(url) as conn:
        migrate(conn)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        start = time.perf_counter()
        conn.execute(
            "INSERT INTO care_teams (name) SELECT 'team-' || lpad(t::text, 2, '0') FROM generate_series(1, %s) t",
            (N_TEAMS,),
        )
        conn.execute(
            "INSERT INTO patients (display_name, team_id, protocol) "
            "SELECT 'Pasient ' || lpad(i::text, 5, '0'), (SELECT id FROM care_teams ORDER BY name "
            " OFFSET (i %% %s) LIMIT 1), "
            "(ARRAY['general','heart_failure','copd','diabetes','hypertension'])[1 + i %% 5] "
            "FROM generate_series(1, %s) i",
            (N_TEAMS, N_PATIENTS),
        )
        conn.execute(
            "INSERT INTO gateways (id, patient_id, secret_hash, state, last_seen_at, outbox_depth) "
            "SELECT 'gw-' || substr(md5(id::text), 1, 12), id, 'sha256:x', 'online', now(), 0 FROM patients"
        )
        conn.execute(
            "INSERT INTO devices (gateway_id, address, type, model, battery_percent) "
            "SELECT id, 'A4:C1:38:00:00:01', 'pulse_oximeter', 'PO-60', 80 FROM gateways"
        )
        password_hash = hash_password(PASSWORD)
        conn.execute(
            "INSERT INTO users (username, role, password_hash) SELECT 'nurse-' || substr(name, 6), 'nurse', %s "
            "FROM care_teams",
            (password_hash,),
        )
        conn.execute(
            "INSERT INTO team_memberships (user_id, team_id) SELECT u.id, t.id FROM users u "
            "JOIN care_teams t ON u.username = 'nurse-' || substr(t.name, 6)"
        )
        # Open alarms on ~3 % of patients, and a history of resolved ones.
        conn.execute(
            "INSERT INTO alarms (patient_id, rule, kind, severity, state, opened_at, updated_at, last_value, "
            "explanation_nb, explanation_en, resolved_at, resolution) "
            "SELECT p.id, 'threshold.spo2.low.' || g, 'spo2', CASE WHEN random() < 0.3 THEN 'red' ELSE 'yellow' END, "
            " CASE WHEN g = 0 AND random() < 0.03 THEN 'open' ELSE 'resolved' END, "
            " now() - random() * interval '60 days', now(), 88, 'SpO2 88 %% under grensen', 'SpO2 88 %% below limit', "
            " now(), 'ok' FROM patients p CROSS JOIN generate_series(0, 4) g"
        )
        conn.execute("UPDATE alarms SET resolved_at = NULL, resolution = NULL WHERE state = 'open'")
        timings["seed_s"] = time.perf_counter() - start

        start = time.perf_counter()
        conn.execute("ALTER TABLE readings DROP CONSTRAINT readings_pkey")
        conn.execute("DROP INDEX readings_patient_kind_time_idx")
        for (name,) in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'readings'::regclass"
        ).fetchall():
            conn.execute(f"ALTER TABLE {name} SET UNLOGGED")
    _load_readings(url, n_readings)
    timings["load_s"] = time.perf_counter() - start
    with psycopg.connect(url, autocommit=True) as conn:
        start = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        conn.execute("ALTER TABLE readings ADD PRIMARY KEY (id, measured_at)")
        conn.execute("CREATE INDEX readings_patient_kind_time_idx ON readings (patient_id, kind, measured_at)")
        timings["index_s"] = time.perf_counter() - start
        start = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        timings["analyze_s"] = time.perf_counter() - start
    return {k: round(v, 1) for k, v in timings.items()}


def _load_readings(url: str, n_readings: int, workers: int = 2, chunk_patients: int = 250) -> None:
    """Each patient gets n/N_PATIENTS readings over SPAN_DAYS, split over the kinds; chunks of patients are loaded by
    `workers` connections in parallel."""
    per_patient = max(1, n_readings // N_PATIENTS)
    with psycopg.connect(url) as conn:
        patients = [r[0] for r in conn.execute("SELECT id FROM patients ORDER BY id").fetchall()]
    chunks = [patients[i : i + chunk_patients] for i in range(0, len(patients), chunk_patients)]
    lock = threading.Lock()
    done = [0]
    started = time.perf_counter()

    def work() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET synchronous_commit = off")
            conn.execute("SET work_mem = '64MB'")
            while True:
                with lock:
                    if not chunks:
                        return
                    chunk = chunks.pop()
                for kind, typical, spread, share in KINDS:
                    count = max(1, int(per_patient * share))
                    step = timedelta(days=SPAN_DAYS) / count
                    conn.execute(
                        "INSERT INTO readings (id, patient_id, gateway_id, kind, value, measured_at, received_at, "
                        "device_address, device_type, device_model) "
                        "SELECT gen_random_uuid(), p.pid, 'gw-' || substr(md5(p.pid::text), 1, 12), %s, "
                        " round((%s + %s * (random() + random() + random() - 1.5))::numeric, 1), "
                        " now() - i * %s - random() * interval '30 minutes', now() - i * %s, "
                        " 'A4:C1:38:00:00:01', 'pulse_oximeter', 'PO-60' "
                        "FROM unnest(%s::uuid[]) AS p(pid) CROSS JOIN generate_series(0, %s - 1) AS i",
                        (kind, typical, spread, step, step, chunk, count),
                    )
                with lock:
                    done[0] += len(chunk)
                    rate = done[0] * per_patient / (time.perf_counter() - started)
                    _say(f"readings: {done[0]}/{N_PATIENTS} patients ({rate / 1e6:.2f} M rows/s)")

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# --- the API process --------------------------------------------------------------------------------------------


def _start_api(url: str, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "VARDE_HOME": str(home),
        "VARDE_DATABASE_URL": url,
        "VARDE_JWT_SECRET": secrets.token_urlsafe(32),
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "varde", "api", "run", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(home / "api.log", "wb"),  # noqa: SIM115 - handed to the child
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the API did not start; see {home / 'api.log'}")


# --- measurements -----------------------------------------------------------------------------------------------

QUEUE_SQL = (
    "SELECT a.id, a.patient_id, p.display_name, p.team_id, a.rule, a.kind, a.severity, a.state, a.opened_at, "
    "a.updated_at, a.count, a.first_value, a.last_value, a.limit_value, a.last_measured_at, a.explanation_nb, "
    "a.explanation_en, a.back_in_range, a.escalated_at, a.assignee_id, u.display_name, a.acknowledged_at, "
    "a.acknowledged_by, a.resolved_at, a.resolved_by, a.resolution, a.severity_rank "
    "FROM alarms a JOIN patients p ON p.id = a.patient_id LEFT JOIN users u ON u.id = a.assignee_id "
    "WHERE (p.team_id = ANY(%s::uuid[]) OR EXISTS (SELECT 1 FROM emergency_access e WHERE e.user_id = %s "
    "AND e.patient_id = p.id AND e.expires_at > now())) AND a.state = ANY(%s) "
    "ORDER BY a.severity_rank, a.opened_at, a.id LIMIT 51"
)
TREND_SQL = (
    "SELECT date_trunc('hour', measured_at, %s) AS b, min(value), avg(value), max(value), count(*) FROM readings "
    "WHERE patient_id = %s AND kind = 'spo2' AND measured_at >= %s AND measured_at < %s GROUP BY b ORDER BY b"
)


def measure(url: str, base: str, n_requests: int) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        team_id, user_id, username = conn.execute(
            "SELECT t.id, u.id, u.username FROM care_teams t JOIN team_memberships m ON m.team_id = t.id "
            "JOIN users u ON u.id = m.user_id ORDER BY t.name LIMIT 1"
        ).fetchone() or (None, None, None)
        team_patients = [r[0] for r in conn.execute("SELECT id FROM patients WHERE team_id = %s", (team_id,))]
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM patients), (SELECT count(*) FROM alarms WHERE state <> 'resolved'), "
            "(SELECT count(*) FROM alarms)"
        ).fetchone()
        readings = conn.execute(
            "SELECT sum(c.reltuples)::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'readings'::regclass"
        ).fetchone()
        assert counts is not None and readings is not None
        rng = secrets.SystemRandom()
        end = datetime.now(UTC)
        start = end - timedelta(days=90)

        queue_sql = _timed(
            lambda: conn.execute(QUEUE_SQL, ([team_id], user_id, ["open", "acknowledged"])).fetchall(), n_requests
        )
        trend_sql = _timed(
            lambda: conn.execute(TREND_SQL, ("Europe/Oslo", rng.choice(team_patients), start, end)).fetchall(),
            n_requests,
        )

    token = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        queue_page = client.get("/api/v1/alarms", params={"limit": 50}).json()

        def queue() -> None:
            response = client.get("/api/v1/alarms", params={"limit": 50})
            assert response.status_code == 200

        trend_points: list[int] = []

        def trend() -> None:
            response = client.get(
                f"/api/v1/patients/{rng.choice(team_patients)}/measurements",
                params={"kind": "spo2", "bucket": "hour", "from": start.isoformat(), "to": end.isoformat()},
            )
            assert response.status_code == 200
            trend_points.append(len(response.json()["items"]))

        def patient_list() -> None:
            assert client.get("/api/v1/patients", params={"limit": 50}).status_code == 200

        queue_api = _timed(queue, n_requests)
        trend_api = _timed(trend, n_requests)
        list_api = _timed(patient_list, max(50, n_requests // 3))

    q50, q95 = _percentiles(queue_api)
    t50, t95 = _percentiles(trend_api)
    bq50, bq95 = _percentiles(queue_sql)
    bt50, bt95 = _percentiles(trend_sql)
    l50, l95 = _percentiles(list_api)
    return {
        "patients": counts[0],
        "readings": int(readings[0]),
        "open_alarms": counts[1],
        "alarms": counts[2],
        "queue_items_per_page": len(queue_page["items"]),
        "trend_buckets_mean": round(statistics.mean(trend_points), 1) if trend_points else 0,
        "queue_p50_ms": q50,
        "queue_p95_ms": q95,
        "trend_p50_ms": t50,
        "trend_p95_ms": t95,
        "patient_list_p50_ms": l50,
        "patient_list_p95_ms": l95,
        "baseline_queue_sql_p50_ms": bq50,
        "baseline_queue_sql_p95_ms": bq95,
        "baseline_trend_sql_p50_ms": bt50,
        "baseline_trend_sql_p95_ms": bt95,
        "requests_each": n_requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=50_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept bench database instead of building")
    args = parser.parse_args()

    os.environ.setdefault("VARDE_HOME", str(ROOT / ".varde" / "bench"))
    from varde import stack

    home = Path(os.environ["VARDE_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    with stack.running(home, services=False) as state:
        database_url = state["database_url"]
        url = _bench_url(database_url)
        build: dict[str, float] = {}
        if _create_database(database_url, args.reuse):
            _say(f"building {N_PATIENTS} patients and {args.readings} readings in {BENCH_DB}")
            build = _fill(url, args.readings)
        with tempfile.TemporaryDirectory() as tmp:
            proc, base = _start_api(url, Path(tmp))
            try:
                result = measure(url, base, args.requests)
            finally:
                proc.terminate()
                proc.wait(15)
        if not args.keep:
            drop_database(database_url)
    result.update(
        {
            "build_seconds": build,
            "targets": {"queue_p95_ms": 50, "trend_p95_ms": 100},
            "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
