"""Storage per reading in PostgreSQL: bytes of the readings table and all its indexes per row, for the sizing guide.

Creates a separate database (`varde_storage`, dropped afterwards) on a private bench stack, applies the real
migrations (plain-PostgreSQL path: yearly partitions, the primary key, the patient/kind/time and received-at
indexes, all in place during the load as in production) and inserts `--readings` rows shaped like the ones ingest
writes: 1 000 patients, one gateway each, a year of measurement acts in time order (blood pressure as four rows
sharing a group id, oximetry as SpO2 + pulse, weight, temperature, glucose), random UUIDv4 ids. Then VACUUM ANALYZE
and `pg_total_relation_size` over every partition. Baseline in the same run: the bare heap (`pg_relation_size`),
so the index share is visible. Prints one JSON line.

    python bench/storage.py [--readings 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from store.migrate import migrate  # noqa: E402

DB = "varde_storage"
PATIENTS = 1000
# (device type, model, kinds of one measurement act, typical values); acts are shared out evenly
ACTS = [
    (
        "blood_pressure_monitor",
        "UA-651BLE",
        ["bp_systolic", "bp_diastolic", "bp_mean", "pulse_rate"],
        [132, 82, 99, 72],
    ),
    ("pulse_oximeter", "PO-60", ["spo2", "pulse_rate"], [95, 74]),
    ("weight_scale", "UC-352BLE", ["body_weight"], [81.4]),
    ("thermometer", "FT95", ["body_temperature"], [36.8]),
    ("glucose_meter", "Contour Next One", ["glucose"], [6.4]),
]


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _insert(conn: psycopg.Connection[object], n_readings: int) -> float:
    """Acts spread evenly over the last 365 days, inserted oldest first in chunks, as a year of ingest would."""
    rows_per_act = sum(len(kinds) for _, _, kinds, _ in ACTS) / len(ACTS)
    acts = int(n_readings / rows_per_act)
    chunks = 20
    started = time.perf_counter()
    for chunk in range(chunks):
        first, last = chunk * acts // chunks, (chunk + 1) * acts // chunks
        for act, (device_type, model, kinds, values) in enumerate(ACTS):
            conn.execute(
                "INSERT INTO readings (id, patient_id, gateway_id, kind, value, measured_at, received_at, "
                " device_address, device_type, device_model, grp) "
                "SELECT gen_random_uuid(), p.id, 'gw-' || substr(md5(p.id::text), 1, 8), k.kind, "
                " round((k.v * (0.9 + 0.2 * random()))::numeric, 1), a.at, a.at + interval '3 seconds', "
                " 'A4:C1:38:' || upper(substr(md5(p.id::text || %s), 1, 2)) || ':' "
                "  || upper(substr(md5(p.id::text || %s), 3, 2)) || ':' || upper(substr(md5(p.id::text), 5, 2)), "
                " %s, %s, CASE WHEN %s > 1 THEN a.grp END "
                "FROM (SELECT i, now() - interval '365 days' * (1 - i::float8 / %s) AS at, "
                "      gen_random_uuid()::text AS grp, ((i / %s) %% %s) AS pidx FROM generate_series(%s, %s - 1) i) a "
                "JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS pidx FROM patients) p ON p.pidx = a.pidx "
                "CROSS JOIN unnest(%s::text[], %s::float8[]) AS k(kind, v) "
                "WHERE a.i %% %s = %s",
                (
                    device_type,
                    device_type,
                    device_type,
                    model,
                    len(kinds),
                    acts,
                    len(ACTS),
                    PATIENTS,
                    first,
                    last,
                    kinds,
                    values,
                    len(ACTS),
                    act,
                ),
            )
        _say(f"inserted chunk {chunk + 1}/{chunks}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    args = parser.parse_args()
    os.environ.setdefault("VARDE_HOME", str(ROOT / ".varde" / "bench-storage"))
    from varde import stack

    home = Path(os.environ["VARDE_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    with stack.running(home, services=False) as state:
        admin = state["database_url"].rsplit("/", 1)[0] + "/postgres"
        url = state["database_url"].rsplit("/", 1)[0] + "/" + DB
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {DB}")
        try:
            with psycopg.connect(url) as conn:
                migrate(conn)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("INSERT INTO care_teams (name) VALUES ('storage')")
                conn.execute(
                    "INSERT INTO patients (display_name, team_id, protocol) SELECT 'Pasient ' || i, "
                    "(SELECT id FROM care_teams), 'heart_failure' FROM generate_series(1, %s) i",
                    (PATIENTS,),
                )
                insert_s = _insert(conn, args.readings)
                conn.execute("VACUUM ANALYZE readings")
                row = conn.execute("SELECT count(*) FROM readings").fetchone()
                sizes = conn.execute(
                    "SELECT sum(pg_total_relation_size(c.oid)), sum(pg_relation_size(c.oid)), "
                    " sum(pg_indexes_size(c.oid)) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'readings'::regclass"
                ).fetchone()
                version = conn.execute("SHOW server_version").fetchone()
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    assert row is not None and sizes is not None and version is not None
    rows = int(row[0])
    total, heap, indexes = (int(v) for v in sizes)
    print(
        json.dumps(
            {
                "readings": rows,
                "bytes_per_reading_total": round(total / rows, 1),
                "bytes_per_reading_heap": round(heap / rows, 1),
                "bytes_per_reading_indexes": round(indexes / rows, 1),
                "total_mb": round(total / 2**20, 1),
                "insert_rows_per_s": round(rows / insert_s),
                "postgresql": version[0],
                "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
            }
        )
    )


if __name__ == "__main__":
    main()
