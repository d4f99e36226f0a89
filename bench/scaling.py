"""Scaling risks in the readings SQL, before and after their fixes, on one database in one run. Prints one JSON line
(kept in bench/results/scaling.jsonl).

A database (`varde_scaling` on the bench stack's PostgreSQL, plain-PostgreSQL migrations: yearly partitions, the
hourly rollup's triggers live) is loaded by COPY through the `readings` parent, in chunks, with every index live:
one pulse oximeter patient with an SpO2 reading every 3 s over the last 90 days (2.59 M rows, the issue's "1 Hz
oximeter" figure) and `--patients` others with blood pressure (four rows per cuff inflation sharing a group id),
SpO2 and weight spread over five calendar years (five yearly partitions). Ids are random UUIDs, in `reading_ids` as
ingest writes them. ANALYZE after the load (no VACUUM FULL, no index rebuilt).

Each query is run as it was before its fix (the baseline, SQL text kept here) and as the code runs it now (SQL
imported from the package), alternated ABAB `--repeats` times, with EXPLAIN (ANALYZE, BUFFERS): median execution
ms, shared buffers touched, readings partitions whose scan ran and rows read from readings:
- `id_lookup`: a reading by id alone (`clinician_api/deps.py`), before by id only, now through `reading_ids`;
  `id_lookup_unknown` the same for an id never stored (a 404);
- `last_measured`: the patient list's "last measured" for 50 patients (`store/patients.py`);
- `trend_90d`: the oximeter's 90-day daily trend (`store/trends.py`), raw readings against the hourly rollup;
- `bp_partners`: the journal feed's blood-pressure partner lookup for one batch (`journal/feed.py`, fixed before
  this bench: the baseline is the SQL of before 3bb18dc);
- `ingest_copy`: what the rollup trigger costs ingest: a 2 500-reading COPY batch with the trigger against the same
  with the trigger disabled, ms per batch.

    python bench/scaling.py [--patients 500] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VARDE_HOME", str(ROOT / ".varde" / "bench-scaling"))

import psycopg  # noqa: E402

from bench.results import keep, machine_facts  # noqa: E402
from clinician_api.journal.feed import _PARTNER_MARGIN  # noqa: E402
from store.access import READING_PATIENT_SQL  # noqa: E402
from store.migrate import migrate  # noqa: E402
from store.patients import _LAST_MEASURED  # noqa: E402
from store.trends import HOURLY_AGGREGATE_SQL, READINGS_SQL, whole_hours_inside  # noqa: E402

DB = "varde_scaling"
OXIMETER_DAYS = 90
OXIMETER_EVERY_S = 3
YEARS = 5
CHUNK = 200_000
COLUMNS = "id, patient_id, gateway_id, kind, value, measured_at, received_at, device_address, device_type, grp"
TYPES = ["uuid", "uuid", "text", "text", "float8", "timestamptz", "timestamptz", "text", "text", "text"]

BEFORE_ID_LOOKUP = "SELECT patient_id FROM readings WHERE id = %s LIMIT 1"
BEFORE_LAST_MEASURED = (
    "(SELECT max(l.measured_at) FROM unnest(%(kinds)s::text[]) AS k(kind) CROSS JOIN LATERAL "
    "(SELECT r.measured_at FROM readings r WHERE r.patient_id = p.id AND r.kind = k.kind "
    "ORDER BY r.measured_at DESC LIMIT 1) AS l)"
)
_BP = ["bp_systolic", "bp_diastolic", "bp_mean", "pulse_rate"]
_PARTNER_COLS = "r.id, r.patient_id, r.kind, r.value, r.measured_at, r.grp"
BEFORE_BP_PARTNERS = (
    f"SELECT {_PARTNER_COLS} FROM readings r WHERE r.kind = ANY(%(kinds)s) "
    "AND (r.gateway_id, r.grp) IN (SELECT * FROM unnest(%(gateways)s::text[], %(groups)s::text[])) "
    "AND NOT EXISTS (SELECT 1 FROM journal_shared_readings s WHERE s.subscription_id = %(sub)s "
    "AND s.reading_id = r.id)"
)
# journal/feed.py's _add_bp_partners query, with the columns this bench reads.
AFTER_BP_PARTNERS = (
    f"SELECT {_PARTNER_COLS} FROM readings r WHERE r.patient_id = ANY(%(patients)s) AND r.kind = ANY(%(kinds)s) "
    "AND r.measured_at BETWEEN %(earliest)s AND %(latest)s "
    "AND (r.gateway_id, r.grp) IN (SELECT * FROM unnest(%(gateways)s::text[], %(groups)s::text[])) "
    "AND NOT EXISTS (SELECT 1 FROM journal_shared_readings s WHERE s.subscription_id = %(sub)s "
    "AND s.reading_id = r.id)"
)


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _oximeter_rows(patient: uuid.UUID, now: datetime, days: int) -> Iterator[tuple[Any, ...]]:
    start = now - timedelta(days=days)
    for i in range(days * 86400 // OXIMETER_EVERY_S):
        at = start + timedelta(seconds=i * OXIMETER_EVERY_S)
        yield (
            uuid.uuid4(),
            patient,
            "gw-oximeter",
            "spo2",
            90.0 + (i * 7919 % 90) / 10,
            at,
            at,
            "A4:C1:38:00:00:01",
            "pulse_oximeter",
            None,
        )


def _background_rows(patients: list[uuid.UUID], now: datetime, per_patient: int) -> Iterator[tuple[Any, ...]]:
    """Measurement acts spread over the last five calendar years, patients interleaved as they arrive."""
    first = datetime(now.year - YEARS + 1, 1, 1, tzinfo=UTC)
    span = (now - first).total_seconds()
    acts = per_patient // 2
    for a in range(acts):
        for n, patient in enumerate(patients):
            at = first + timedelta(seconds=span * (a + (n % 97) / 97) / acts)
            gw = f"gw-{patient.hex[:12]}"
            if a % 3 == 0:
                grp = uuid.uuid4().hex
                for kind, value in zip(_BP, (132.0, 82.0, 99.0, 72.0), strict=True):
                    yield (
                        uuid.uuid4(),
                        patient,
                        gw,
                        kind,
                        value + a % 7,
                        at,
                        at,
                        "A4:C1:38:00:00:02",
                        "blood_pressure_monitor",
                        grp,
                    )
            elif a % 3 == 1:
                yield (
                    uuid.uuid4(),
                    patient,
                    gw,
                    "spo2",
                    95.0 - a % 4,
                    at,
                    at,
                    "A4:C1:38:00:00:03",
                    "pulse_oximeter",
                    None,
                )
            else:
                yield (
                    uuid.uuid4(),
                    patient,
                    gw,
                    "body_weight",
                    82.0 + a % 5 / 10,
                    at,
                    at,
                    "A4:C1:38:00:00:04",
                    "weight_scale",
                    None,
                )


def _copy(conn: psycopg.Connection[Any], rows: Iterator[tuple[Any, ...]]) -> int:
    """COPY in chunks of CHUNK rows, one transaction each, reading_ids first as ingest does."""
    total = 0
    done = False
    while not done:
        chunk = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == CHUNK:
                break
        else:
            done = True
        if not chunk:
            break
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy("COPY reading_ids (id, measured_at) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["uuid", "timestamptz"])
                for r in chunk:
                    copy.write_row((r[0], r[5]))
            with cur.copy(f"COPY readings ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(TYPES)
                for r in chunk:
                    copy.write_row(r)
        total += len(chunk)
        _say(f"loaded {total:,}")
    return total


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _walk(child)


def _explain(conn: psycopg.Connection[Any], sql: str, params: Any) -> dict[str, Any]:
    plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params).fetchone()
    assert plan is not None
    doc = plan[0][0]
    scans = [
        n
        for n in _walk(doc["Plan"])
        if str(n.get("Relation Name", "")).startswith("readings_") and n.get("Relation Name") != "readings_hourly"
    ]
    ran = [n for n in scans if n.get("Actual Loops", 0) > 0]
    top = doc["Plan"]
    return {
        "ms": doc["Execution Time"] + doc.get("Planning Time", 0.0),
        "buffers": top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0),
        "partitions_scanned": len({n["Relation Name"] for n in ran}),
        "readings_rows": int(sum(n.get("Actual Rows", 0) * n.get("Actual Loops", 1) for n in ran)),
    }


def _compare(
    conn: psycopg.Connection[Any], repeats: int, before: tuple[str, Any], after: tuple[str, Any]
) -> dict[str, Any]:
    """ABAB: each arm `repeats` times, alternated; medians, with the range of the times."""
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    _explain(conn, *before)  # warm-up of both arms
    _explain(conn, *after)
    for _ in range(repeats):
        runs["before"].append(_explain(conn, *before))
        runs["after"].append(_explain(conn, *after))
    out: dict[str, Any] = {}
    for arm, rs in runs.items():
        ms = [r["ms"] for r in rs]
        out[arm] = {
            "ms_median": round(statistics.median(ms), 3),
            "ms_range": [round(min(ms), 3), round(max(ms), 3)],
            "buffers": int(statistics.median(r["buffers"] for r in rs)),
            "partitions_scanned": rs[-1]["partitions_scanned"],
            "readings_rows": rs[-1]["readings_rows"],
        }
    out["speedup"] = round(out["before"]["ms_median"] / max(out["after"]["ms_median"], 1e-3), 1)
    return out


def _ingest_copy(conn: psycopg.Connection[Any], patients: list[uuid.UUID], repeats: int) -> dict[str, Any]:
    """A 2 500-reading batch over all the bench's patients, a few seconds apart (so about one reading per patient and
    UTC hour), COPY into reading_ids and readings as ingest does, rolled back; the rollup trigger on against off,
    alternated, after one warm-up batch of each."""
    times: dict[str, list[float]] = {"trigger_on": [], "trigger_off": []}
    for i in range(repeats * 2 + 2):
        arm = "trigger_on" if i % 2 == 0 else "trigger_off"
        now = datetime.now(UTC)
        rows = [
            (
                uuid.uuid4(),
                patients[j % len(patients)],
                "gw-ingest",
                "spo2",
                95.0,
                now - timedelta(seconds=j),
                now,
                "A4:C1:38:00:00:09",
                "pulse_oximeter",
                None,
            )
            for j in range(2500)
        ]
        tx = conn.transaction(force_rollback=True)
        with tx, conn.cursor() as cur:
            if arm == "trigger_off":
                cur.execute("ALTER TABLE readings DISABLE TRIGGER readings_hourly_insert")
            started = time.perf_counter()
            with cur.copy("COPY reading_ids (id, measured_at) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["uuid", "timestamptz"])
                for r in rows:
                    copy.write_row((r[0], r[5]))
            with cur.copy(f"COPY readings ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(TYPES)
                for r in rows:
                    copy.write_row(r)
            elapsed = (time.perf_counter() - started) * 1000
        if i >= 2:
            times[arm].append(elapsed)
    return {
        arm: {"ms_median": round(statistics.median(t), 2), "ms_range": [round(min(t), 2), round(max(t), 2)]}
        for arm, t in times.items()
    } | {
        "trigger_cost_ratio": round(statistics.median(times["trigger_on"]) / statistics.median(times["trigger_off"]), 2)
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--per-patient", type=int, default=1600, help="background rows per patient (about)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--oximeter-days", type=int, default=OXIMETER_DAYS, help="a smaller trial run: fewer")
    args = parser.parse_args()
    from varde import stack

    home = Path(os.environ["VARDE_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"bench": "scaling"}
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
                conn.execute("INSERT INTO care_teams (name) VALUES ('scaling')")
                patients = [
                    r[0]
                    for r in conn.execute(
                        "INSERT INTO patients (display_name, team_id, protocol) SELECT 'Pasient ' || i, "
                        "(SELECT id FROM care_teams), 'copd' FROM generate_series(1, %s) i RETURNING id",
                        (args.patients + 1,),
                    ).fetchall()
                ]
                oximeter, others = patients[0], patients[1:]
                now = datetime.now(UTC).replace(microsecond=0)
                started = time.perf_counter()
                loaded = _copy(conn, _oximeter_rows(oximeter, now, args.oximeter_days))
                loaded += _copy(conn, _background_rows(others, now, args.per_patient))
                result["load_s"] = round(time.perf_counter() - started, 1)
                conn.execute("ANALYZE")
                facts = conn.execute(
                    "SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM readings_hourly), "
                    "(SELECT count(*) FROM pg_inherits WHERE inhparent = 'readings'::regclass), "
                    "(SELECT count(DISTINCT tableoid) FROM readings)"
                ).fetchone()
                assert facts is not None
                result["readings"], result["hourly_rows"], result["partitions"], result["partitions_with_rows"] = facts
                result["load_rows_per_s"] = round(loaded / result["load_s"])

                picked = conn.execute(
                    "SELECT id FROM readings TABLESAMPLE SYSTEM (1) WHERE patient_id <> %s LIMIT 1", (oximeter,)
                ).fetchone()
                assert picked is not None
                result["id_lookup"] = _compare(
                    conn, args.repeats, (BEFORE_ID_LOOKUP, (picked[0],)), (READING_PATIENT_SQL, (picked[0], picked[0]))
                )

                unknown = uuid.uuid4()  # the 404 of a read by an id never stored: every partition, before
                result["id_lookup_unknown"] = _compare(
                    conn, args.repeats, (BEFORE_ID_LOOKUP, (unknown,)), (READING_PATIENT_SQL, (unknown, unknown))
                )

                page = {"kinds": ["spo2", "pulse_rate", "body_weight", *_BP], "team": others[:50]}
                list_sql = "SELECT p.id, {} FROM patients p WHERE p.id = ANY(%(team)s)"
                result["last_measured"] = _compare(
                    conn,
                    args.repeats,
                    (list_sql.format(BEFORE_LAST_MEASURED), page),
                    (list_sql.format(_LAST_MEASURED), page),
                )
                before_rows = conn.execute(list_sql.format(BEFORE_LAST_MEASURED) + " ORDER BY 1", page).fetchall()
                after_rows = conn.execute(list_sql.format(_LAST_MEASURED) + " ORDER BY 1", page).fetchall()
                result["last_measured"]["same_answer"] = before_rows == after_rows

                start, end = now - timedelta(days=OXIMETER_DAYS), now
                inner_start, inner_end = whole_hours_inside(start, end)
                trend = {
                    "bucket": "day",
                    "tz": "Europe/Oslo",
                    "patient": oximeter,
                    "kind": "spo2",
                    "start": start,
                    "end": end,
                    "inner_start": inner_start,
                    "inner_end": inner_end,
                }
                result["trend_90d"] = _compare(conn, args.repeats, (READINGS_SQL, trend), (HOURLY_AGGREGATE_SQL, trend))
                raw = conn.execute(READINGS_SQL, trend).fetchall()
                rolled = conn.execute(HOURLY_AGGREGATE_SQL, trend).fetchall()
                result["trend_90d"]["same_answer"] = [(r[0], r[1], r[3], r[4]) for r in raw] == [
                    (r[0], r[1], r[3], r[4]) for r in rolled
                ] and all(abs(a[2] - b[2]) < 1e-9 for a, b in zip(raw, rolled, strict=True))

                batch = conn.execute(
                    "SELECT patient_id, gateway_id, grp, measured_at FROM readings TABLESAMPLE SYSTEM (1) "
                    "WHERE kind = 'bp_systolic' LIMIT 50"
                ).fetchall()
                bp = {
                    "kinds": _BP,
                    "patients": sorted({b[0] for b in batch}),
                    "gateways": [b[1] for b in batch],
                    "groups": [b[2] for b in batch],
                    "sub": uuid.uuid4(),
                    "earliest": min(b[3] for b in batch) - _PARTNER_MARGIN,
                    "latest": max(b[3] for b in batch) + _PARTNER_MARGIN,
                }
                result["bp_partners"] = _compare(conn, args.repeats, (BEFORE_BP_PARTNERS, bp), (AFTER_BP_PARTNERS, bp))
                result["bp_partners"]["batch_readings"] = len(batch)
                result["bp_partners"]["same_answer"] = sorted(
                    conn.execute(BEFORE_BP_PARTNERS, bp).fetchall()
                ) == sorted(conn.execute(AFTER_BP_PARTNERS, bp).fetchall())

            with psycopg.connect(url) as conn:
                result["ingest_copy"] = _ingest_copy(conn, patients, args.repeats)
            machine = machine_facts(url)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    keep("scaling", result, machine=machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
