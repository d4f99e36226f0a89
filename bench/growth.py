"""Growth benchmark: the API and ingest as the readings table grows. Prints one JSON line (bench/results/growth.jsonl).

One database (`varde_growth` on the bench stack's PostgreSQL) grows through `--sizes` (default 1 M, 10 M, 100 M
readings). Readings arrive as they would in production: in time order across all patients (each load step is a
run of time slices over the last year, each slice the readings of randomly ordered patients), with random UUID ids,
into the logged, partitioned table with its primary key and indexes live — no index built after the load, no VACUUM
trick. The ingest arms' own readings count towards the size.
Alarm queues are full (≥ 50 open alarms in each team).

At each size (and, for ingest, at 0 rows first):
- warm arm: after a warm-up, p50/p95 of the alarm queue, the patient list, a 90-day hourly trend of random patients
  and a FHIR Observation search, through a real API process;
- cold arm: PostgreSQL restarted and the kernel's page cache dropped (where this process may), then the same
  requests, each on a patient not asked before;
- ingest: readings/s end to end (real `varde ingest run` worker, rules on, the fleet of bench/ingest.py with 1 %
  out-of-range readings) into that database.

Targets asserted: queue p95 flat within 1.5× from the first to the last size; trend p95 < 100 ms at the last size;
ingest readings/s at the last size ≥ 0.7× the figure at 0 rows. A database built before is reused when its schema
(the migrations applied) matches and it holds no more readings than the next size asks (`--rebuild` starts again).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VARDE_HOME", str(ROOT / ".varde" / "bench-growth"))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from bench.checks import failed_targets, percentile  # noqa: E402
from bench.results import keep, machine_facts  # noqa: E402

DB = "varde_growth"
N_TEAMS = 20
N_PATIENTS = 10_000
SPAN_DAYS = 365
OPEN_ALARMS_PER_TEAM = 60
PASSWORD = "growth-" + secrets.token_hex(8)
_KINDS = (
    ("spo2", 95, 3, 0.35),
    ("pulse_rate", 72, 12, 0.35),
    ("body_weight", 82, 8, 0.1),
    ("bp_systolic", 130, 15, 0.1),
    ("bp_diastolic", 80, 10, 0.1),
)


# width_bucket bounds giving each kind its share of the readings (1-based index into _KINDS).
_BUCKETS = [0.0] + [sum(k[3] for k in _KINDS[: i + 1]) for i in range(len(_KINDS) - 1)]


def _say(message: str) -> None:
    print(f"[growth] {message}", file=sys.stderr, flush=True)


def _url(database_url: str, name: str) -> str:
    return database_url.rsplit("/", 1)[0] + "/" + name


def schema_version() -> str:
    from store.migrate import available_migrations

    names = [m.version for m in available_migrations("postgres")]
    return hashlib.sha256("|".join(names).encode()).hexdigest()[:12]


def _prepare(database_url: str, rebuild: bool) -> tuple[str, bool]:
    """The growth database's URL; True when it was (re)created and seeded now."""
    from store.migrate import migrate

    url = _url(database_url, DB)
    with psycopg.connect(_url(database_url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone()
    if exists and not rebuild:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT obj_description('readings'::regclass)").fetchone()
            if row and row[0] == f"growth schema {schema_version()}":
                from clinician_api.passwords import hash_password

                # This run's password for the nurses of a database built before.
                conn.execute("UPDATE users SET password_hash = %s WHERE role = 'nurse'", (hash_password(PASSWORD),))
                return url, False
        _say("schema changed since the database was built: rebuilding")
    with psycopg.connect(_url(database_url, "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    with psycopg.connect(url) as conn:
        migrate(conn)
    _seed(url)
    return url, True


def _seed(url: str) -> None:
    from clinician_api.passwords import hash_password

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"COMMENT ON TABLE readings IS 'growth schema {schema_version()}'")
        conn.execute(
            "INSERT INTO care_teams (name) SELECT 'team-' || lpad(t::text, 2, '0') FROM generate_series(1, %s) t",
            (N_TEAMS,),
        )
        conn.execute(
            "INSERT INTO patients (display_name, team_id, protocol) "
            "SELECT 'Pasient ' || lpad(i::text, 5, '0'), (SELECT id FROM care_teams ORDER BY name "
            " OFFSET (i %% %s) LIMIT 1), (ARRAY['heart_failure','copd','diabetes','hypertension'])[1 + i %% 4] "
            "FROM generate_series(1, %s) i",
            (N_TEAMS, N_PATIENTS),
        )
        conn.execute(
            "INSERT INTO gateways (id, patient_id, secret_hash, state, last_seen_at, outbox_depth) "
            "SELECT 'gw-' || substr(md5(id::text), 1, 12), id, 'sha256:x', 'online', now(), 0 FROM patients"
        )
        conn.execute(
            "INSERT INTO users (username, role, password_hash) SELECT 'nurse-' || substr(name, 6), 'nurse', %s "
            "FROM care_teams",
            (hash_password(PASSWORD),),
        )
        conn.execute(
            "INSERT INTO team_memberships (user_id, team_id) SELECT u.id, t.id FROM users u "
            "JOIN care_teams t ON u.username = 'nurse-' || substr(t.name, 6)"
        )
        # A full queue: OPEN_ALARMS_PER_TEAM open alarms in every team, over a history of resolved ones.
        conn.execute(
            "INSERT INTO alarms (patient_id, rule, kind, severity, state, opened_at, updated_at, last_value, "
            "explanation_nb, explanation_en, resolved_at, resolution) "
            "SELECT p.id, 'threshold.spo2.low', 'spo2', CASE WHEN random() < 0.3 THEN 'red' ELSE 'yellow' END, "
            " 'resolved', now() - random() * interval '300 days', now(), 88, 'SpO2 88 %% under grensen', "
            " 'SpO2 88 %% below limit', now(), 'ok' FROM patients p CROSS JOIN generate_series(1, 4)"
        )
        conn.execute(
            "INSERT INTO alarms (patient_id, rule, kind, severity, state, opened_at, updated_at, last_value, "
            "explanation_nb, explanation_en) "
            "SELECT id, 'threshold.spo2.low', 'spo2', CASE WHEN random() < 0.3 THEN 'red' ELSE 'yellow' END, 'open', "
            " now() - random() * interval '2 days', now(), 88, 'SpO2 88 %% under grensen', 'SpO2 88 %% below limit' "
            "FROM (SELECT id, row_number() OVER (PARTITION BY team_id ORDER BY id) AS n FROM patients) p "
            "WHERE n <= %s",
            (OPEN_ALARMS_PER_TEAM,),
        )
        conn.execute("ANALYZE")


def readings_now(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    return int(row[0]) if row else 0


def grow(url: str, have: int, target: int) -> float:
    """Add readings until the table holds `target`: hour slices in time order, every patient in each slice.

    The table's time axis runs over the last SPAN_DAYS; each size step fills the whole span again more densely,
    as more patients and longer follow-up would. Returns the seconds the load took."""
    add = target - have
    if add <= 0:
        return 0.0
    # Hour slices, coarser where a step adds few readings (each INSERT carries at least ~20 000 rows).
    hours = SPAN_DAYS * 24
    slices = max(1, min(hours, add // 20_000))
    slice_len = timedelta(hours=hours / slices)
    per_slice = -(-add // slices)
    started = time.perf_counter()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        done = 0
        for s in range(slices):
            if done >= add:
                break
            n = min(per_slice, add - done)
            hour = end - slice_len * (slices - s)
            conn.execute(
                "INSERT INTO readings (id, patient_id, gateway_id, kind, value, measured_at, received_at, "
                "device_address, device_type) "
                "SELECT gen_random_uuid(), p.id, p.gw, (%s::text[])[p.k], "
                " round(((%s::float8[])[p.k] + (%s::float8[])[p.k] * (random() - 0.5))::numeric, 1), "
                " %s + random() * %s, %s + %s, 'A4:C1:38:00:00:01', 'pulse_oximeter' "
                "FROM (SELECT id, 'gw-' || substr(md5(id::text), 1, 12) AS gw, "
                "      width_bucket(random(), %s::float8[]) AS k "
                "      FROM patients CROSS JOIN generate_series(1, %s) ORDER BY random() LIMIT %s) p",
                (
                    [k[0] for k in _KINDS],
                    [float(k[1]) for k in _KINDS],
                    [float(k[2]) for k in _KINDS],
                    hour,
                    slice_len,
                    hour,
                    slice_len,
                    _BUCKETS,
                    -(-n // N_PATIENTS),
                    n,
                ),
            )
            done += n
            if s % max(1, slices // 20) == 0:
                _say(f"+{done:,} of {add:,} readings ({done / (time.perf_counter() - started):,.0f}/s)")
        conn.execute("ANALYZE readings")
    return time.perf_counter() - started


@contextlib.contextmanager
def api(url: str, home: Path) -> Any:
    from bench.api import _start_api

    proc, base = _start_api(url, home)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(15)


def _timed(fn: Any, args: list[Any]) -> list[float]:
    out = []
    for a in args:
        t0 = time.perf_counter()
        fn(a)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def measure(url: str, base: str, requests: int, fresh_patients: list[Any]) -> dict[str, Any]:
    """p50/p95 (ms) of the queue, the patient list, the 90-day trend and a FHIR search, through the API."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT u.username, m.team_id FROM users u JOIN team_memberships m ON m.user_id = u.id ORDER BY 1 LIMIT 1"
        ).fetchone()
        assert row is not None
        username, team_id = row
        team_patients = [r[0] for r in conn.execute("SELECT id FROM patients WHERE team_id = %s", (team_id,))]
    token = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}).json()
    end = datetime.now(UTC)
    start = end - timedelta(days=90)
    patients = [p for p in fresh_patients if p in set(team_patients)] or team_patients
    picks = [patients[i % len(patients)] for i in range(requests)]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=60) as c:
        queue_len = len(c.get("/api/v1/alarms", params={"limit": 50}).json()["items"])

        def ok(response: httpx.Response) -> None:
            if response.status_code != 200:
                raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:200]}")

        queue = _timed(lambda _: ok(c.get("/api/v1/alarms", params={"limit": 50})), picks)
        plist = _timed(lambda _: ok(c.get("/api/v1/patients", params={"limit": 50})), picks)
        trend = _timed(
            lambda p: ok(
                c.get(
                    f"/api/v1/patients/{p}/measurements",
                    params={"kind": "spo2", "bucket": "hour", "from": start.isoformat(), "to": end.isoformat()},
                )
            ),
            picks,
        )
        fhir = _timed(
            lambda p: ok(
                c.get(
                    f"/fhir/Patient/{p}/Observation",
                    params={"code": "http://loinc.org|59408-5", "date": f"ge{(end - timedelta(days=7)).date()}"},
                )
            ),
            picks,
        )
    figures: dict[str, Any] = {"queue_items": queue_len}
    for name, samples in (("queue", queue), ("patient_list", plist), ("trend", trend), ("fhir_search", fhir)):
        figures[f"{name}_p50_ms"] = round(percentile(samples, 0.5), 1)
        figures[f"{name}_p95_ms"] = round(percentile(samples, 0.95), 1)
    return figures


def make_cold(home: Path) -> bool:
    """Restart PostgreSQL and drop the kernel's page cache where allowed; True when the cache was dropped."""
    from varde import stack

    stack.restart_postgres(home)
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def ingest_rate(home: Path, url: str, readings: int) -> float:
    """Readings/s through one real ingest worker (rules on) into the growth database."""
    from bench.ingest import Workers, wait_stored
    from device_simulators.fleet import Fleet, FleetGateway
    from store.settings import Settings
    from varde.admin import provision_fleet

    settings = Settings().model_copy(update={"database_url": url})
    created = provision_fleet(settings, 200, team=f"Growth ingest {secrets.token_hex(3)}", protocol="heart_failure")
    gateways = [FleetGateway(c.gateway_id, c.password, c.mqtt_host, c.mqtt_port) for c in created]
    os.environ["VARDE_DATABASE_URL"] = url
    try:
        args = argparse.Namespace(extra=[])
        workers = Workers(home, 1, args.extra, "growth")
    finally:
        os.environ.pop("VARDE_DATABASE_URL", None)
    try:
        with Fleet(gateways, batch=100, window=8, alarm_fraction=0.01) as fleet:
            before = workers.stored()
            started = time.monotonic()
            fleet.run(None, 600, max_readings=readings)
        last, stored = wait_stored(workers, before, readings)
    finally:
        workers.stop()
    return stored / (last - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000,100000000")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--ingest-readings", type=int, default=200_000)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]

    from store.settings import varde_home
    from varde import stack

    home = varde_home()
    home.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"bench": "growth", "sizes": {}, "schema": schema_version()}
    with stack.running(home, services=False) as state:
        url, fresh = _prepare(state["database_url"], args.rebuild)
        have = readings_now(url)
        if fresh or have == 0:
            result["ingest_at_0_per_s"] = round(ingest_rate(home, url, args.ingest_readings), 1)
        for size in sizes:
            load_s = grow(url, readings_now(url), size)
            with psycopg.connect(url) as conn:
                never_asked = [r[0] for r in conn.execute("SELECT id FROM patients ORDER BY random()")]
            entry: dict[str, Any] = {"readings": readings_now(url), "load_s": round(load_s, 1)}
            with api(url, home) as base:
                measure(url, base, 20, never_asked[-20:])  # warm-up
                entry["warm"] = measure(url, base, args.requests, never_asked[-args.requests :])
            dropped = make_cold(home)
            with api(url, home) as base:
                entry["cold"] = measure(url, base, args.requests, never_asked[: args.requests])
            entry["cold"]["page_cache_dropped"] = dropped
            entry["ingest_per_s"] = round(ingest_rate(home, url, args.ingest_readings), 1)
            result["sizes"][str(size)] = entry
            _say(f"{size:,}: {entry}")
        machine = machine_facts(url)
    first, last = result["sizes"][str(sizes[0])], result["sizes"][str(sizes[-1])]
    result["queue_p95_growth"] = round(last["warm"]["queue_p95_ms"] / max(0.1, first["warm"]["queue_p95_ms"]), 2)
    result["trend_p95_ms_at_last"] = last["warm"]["trend_p95_ms"]
    if "ingest_at_0_per_s" in result:
        result["ingest_ratio_last_to_0"] = round(last["ingest_per_s"] / result["ingest_at_0_per_s"], 2)
    result["failed"] = failed_targets(
        result,
        {
            "queue_p95_growth": ("<=", 1.5),
            "trend_p95_ms_at_last": ("<", 100.0),
            **({"ingest_ratio_last_to_0": (">=", 0.7)} if "ingest_at_0_per_s" in result else {}),
        },
    )
    keep("growth", result, machine=machine)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
