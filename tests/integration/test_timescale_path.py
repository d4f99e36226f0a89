"""The TimescaleDB path, checked as far as a machine without the extension allows (docs/timescaledb.md says what is
and is not verified): the migrator's choice of variant, the timescale migrations' SQL against real PostgreSQL with
stand-ins for TimescaleDB's functions, and the trend query on the hourly aggregate against the plain one."""

from __future__ import annotations

import random
import re
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo

from store.migrate import Variant, available_migrations, detect_variant, migrate
from store.settings import Settings
from store.trends import HOURLY_AGGREGATE_SQL, READINGS_SQL, trend_rows

pytestmark = pytest.mark.integration

# --- variant selection -------------------------------------------------------------------------------------------


def test_this_machine_has_no_timescaledb_so_the_postgres_variant_is_detected(db: psycopg.Connection[Any]) -> None:
    if db.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone():
        pytest.skip("this PostgreSQL has TimescaleDB: the stack took the timescale path")
    assert detect_variant(db) == "postgres"
    variants = {r[0] for r in db.execute("SELECT DISTINCT variant FROM schema_migrations").fetchall()}
    assert variants == {"postgres"}


def test_probe_picks_timescale_when_pg_available_extensions_lists_timescaledb(db: psycopg.Connection[Any]) -> None:
    # A catalog view of the same name earlier in the search path stands in for a server with the extension.
    with db.transaction(force_rollback=True):
        db.execute("CREATE SCHEMA fake_catalog")
        db.execute(
            "CREATE VIEW fake_catalog.pg_available_extensions AS "
            "SELECT * FROM pg_catalog.pg_available_extensions UNION ALL "
            "SELECT 'timescaledb'::name, '2.17.2'::text, NULL::text, 'Time-series data'::text"
        )
        db.execute("SET LOCAL search_path = fake_catalog, pg_catalog, public")
        assert detect_variant(db) == "timescale"
        db.execute("SET LOCAL search_path = pg_catalog, public")
        assert detect_variant(db) == "postgres"


@pytest.fixture
def empty_database(db: psycopg.Connection[Any], settings: Settings) -> Iterator[str]:
    name = f"varde_migrate_{secrets.token_hex(4)}"
    db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(settings.require_database_url(), dbname=name)
    finally:
        db.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_migrator_on_an_empty_database_applies_the_postgres_files_when_the_probe_finds_no_timescaledb(
    empty_database: str,
) -> None:
    seen: list[Variant] = []

    def probe(conn: psycopg.Connection[Any]) -> Variant:
        seen.append(detect_variant(conn))
        return seen[-1]

    with psycopg.connect(empty_database) as conn:
        applied = migrate(conn, probe=probe)
        assert seen == ["postgres"]
        assert applied == [m.name for m in available_migrations("postgres")]
        assert {"0002_readings", "0060_readings_hourly"} <= set(applied)
        recorded = conn.execute("SELECT DISTINCT variant FROM schema_migrations").fetchall()
        assert recorded == [("postgres",)]
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'readings'").fetchone() == ("p",)
        # Plain PostgreSQL's hourly rollup is a table kept by triggers on readings (0225), not a continuous aggregate.
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'readings_hourly'").fetchone() == ("r",)
        triggers = conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'readings'::regclass AND tgname LIKE 'readings_hourly%' "
            "ORDER BY 1"
        ).fetchall()
        ops = ("delete", "insert", "truncate", "update")
        assert [t[0] for t in triggers] == [f"readings_hourly_{op}" for op in ops]
        assert migrate(conn, probe=probe) == [] and seen == ["postgres"], "a migrated database is not probed again"


def test_migrator_applies_the_timescale_files_when_the_probe_says_timescaledb(empty_database: str) -> None:
    # Without the extension the timescale variant must fail at its first TimescaleDB statement, which proves the
    # migrator chose the .timescale file (the .postgres one succeeds, above).
    with psycopg.connect(empty_database) as conn:
        with pytest.raises(psycopg.Error, match="timescaledb"):
            migrate(conn, probe=lambda _: "timescale")
        rows = conn.execute("SELECT version, variant FROM schema_migrations ORDER BY version").fetchall()
        assert rows == [("0001", "timescale")], "0001 is shared; 0002 is the first timescale file and rolled back"
        assert conn.execute("SELECT to_regclass('readings')").fetchone() == (None,)


def test_the_variants_differ_only_where_timescaledb_does_something_else() -> None:
    postgres = {m.version: m for m in available_migrations("postgres")}
    timescale = {m.version: m for m in available_migrations("timescale")}
    assert postgres.keys() == timescale.keys()
    differing = sorted(v for v in postgres if postgres[v].sql != timescale[v].sql)
    assert differing == ["0002", "0060", "0120", "0225"]
    assert "CREATE TRIGGER" in postgres["0225"].sql and "CREATE" not in timescale["0225"].sql
    assert "create_hypertable" in timescale["0002"].sql and "create_hypertable" not in postgres["0002"].sql
    assert "timescaledb.continuous" in timescale["0060"].sql


# --- the timescale SQL against PostgreSQL with stand-ins ----------------------------------------------------------

# Stand-ins with TimescaleDB's names, parameter names and the checks TimescaleDB itself makes that matter here
# (a hypertable's unique indexes must include the time column; policies need a hypertable or a continuous
# aggregate). time_bucket is emulated exactly for fixed-width buckets: date_bin with TimescaleDB's default origin.
_STUBS = """
CREATE TABLE tsdb_check.stub_hypertables (relation regclass PRIMARY KEY, time_column name, chunk interval);
CREATE TABLE tsdb_check.stub_policies (relation regclass, policy text, setting interval);

CREATE FUNCTION tsdb_check.time_bucket(bucket_width interval, ts timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$ SELECT date_bin(bucket_width, ts, timestamptz '2000-01-03 00:00:00+00') $$;

CREATE FUNCTION tsdb_check.create_hypertable(relation regclass, time_column_name name,
                                             chunk_time_interval interval DEFAULT interval '7 days')
RETURNS regclass LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT atttypid FROM pg_attribute WHERE attrelid = relation AND attname = time_column_name)
       IS DISTINCT FROM 'timestamptz'::regtype THEN
        RAISE EXCEPTION 'create_hypertable: % has no timestamptz column %', relation, time_column_name;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = relation AND i.indisunique AND NOT EXISTS (
               SELECT 1 FROM pg_attribute a WHERE a.attrelid = relation AND a.attname = time_column_name
               AND a.attnum = ANY(i.indkey))) THEN
        RAISE EXCEPTION 'create_hypertable: a unique index of % lacks the time column %', relation, time_column_name;
    END IF;
    INSERT INTO tsdb_check.stub_hypertables VALUES (relation, time_column_name, chunk_time_interval);
    RETURN relation;
END $$;

CREATE FUNCTION tsdb_check.stub_require(relation regclass, kinds text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ((('hypertable' = ANY(kinds)) AND relation IN (SELECT h.relation FROM tsdb_check.stub_hypertables h))
         OR (('continuous_aggregate' = ANY(kinds)) AND (SELECT relkind FROM pg_class WHERE oid = relation) = 'm'))
    THEN
        RAISE EXCEPTION 'policy on %: not a %', relation, array_to_string(kinds, ' or ');
    END IF;
END $$;

CREATE FUNCTION tsdb_check.add_compression_policy(hypertable regclass, compress_after interval) RETURNS integer
LANGUAGE sql AS $$
    SELECT tsdb_check.stub_require(hypertable, ARRAY['hypertable']);
    INSERT INTO tsdb_check.stub_policies VALUES (hypertable, 'compression', compress_after);
    SELECT 1000;
$$;

CREATE FUNCTION tsdb_check.add_retention_policy(relation regclass, drop_after interval) RETURNS integer
LANGUAGE sql AS $$
    SELECT tsdb_check.stub_require(relation, ARRAY['hypertable', 'continuous_aggregate']);
    INSERT INTO tsdb_check.stub_policies VALUES (relation, 'retention', drop_after);
    SELECT 1001;
$$;

CREATE FUNCTION tsdb_check.add_continuous_aggregate_policy(continuous_aggregate regclass, start_offset interval,
    end_offset interval, schedule_interval interval) RETURNS integer
LANGUAGE sql AS $$
    SELECT tsdb_check.stub_require(continuous_aggregate, ARRAY['continuous_aggregate']);
    INSERT INTO tsdb_check.stub_policies VALUES (continuous_aggregate, 'refresh', schedule_interval);
    SELECT 1002;
$$;
"""

_TIMESCALE_OPTIONS = re.compile(r"\bWITH\s*\(\s*timescaledb\.[^)]*\)", re.IGNORECASE)


def split_statements(script: str) -> list[str]:
    """SQL statements of a migration file, split at top-level semicolons (outside quotes, dollar quotes and
    comments)."""
    statements: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(script):
        if script.startswith("--", i):
            end = script.find("\n", i)
            i = len(script) if end < 0 else end
            continue
        dollar = re.match(r"\$[A-Za-z_]*\$", script[i:])
        if dollar or script[i] == "'":
            quote = dollar.group(0) if dollar else "'"
            end = script.index(quote, i + len(quote)) + len(quote)
            current.append(script[i:end])
            i = end
            continue
        if script[i] == ";":
            statements.append("".join(current).strip())
            current = []
        else:
            current.append(script[i])
        i += 1
    tail = "".join(current).strip()
    return [s for s in [*statements, tail] if s]


def _apply_with_stubs(db: psycopg.Connection[Any], script: str) -> list[str]:
    """Run one timescale migration statement by statement; returns what could only be checked as far as the
    grammar (and the parse analysis of the query inside)."""
    grammar_only: list[str] = []
    for statement in split_statements(script):
        if re.match(r"CREATE EXTENSION", statement, re.IGNORECASE):
            with (
                pytest.raises((errors.FeatureNotSupported, errors.UndefinedFile), match="timescaledb"),
                db.transaction(),
            ):
                db.execute(statement.encode())
            grammar_only.append(statement)
            continue
        if re.search(r"\btimescaledb\.", statement):
            # PostgreSQL parses the statement (and analyses a view's query) before it refuses the option namespace.
            with pytest.raises(errors.InvalidParameterValue, match='namespace "timescaledb"'), db.transaction():
                db.execute(statement.encode())
            grammar_only.append(statement)
            if re.match(r"CREATE MATERIALIZED VIEW", statement, re.IGNORECASE):
                db.execute(_TIMESCALE_OPTIONS.sub("", statement).encode())
            continue
        db.execute(statement.encode())
    return grammar_only


@pytest.fixture
def timescale_schema(db: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """The timescale variants of every migration that has one, applied in a throwaway schema with stand-ins;
    everything is rolled back afterwards."""
    with db.transaction(force_rollback=True):
        db.execute("CREATE SCHEMA tsdb_check")
        db.execute(_STUBS.encode())
        db.execute("SET LOCAL search_path = tsdb_check, public")
        postgres = {m.version: m.sql for m in available_migrations("postgres")}
        for migration in available_migrations("timescale"):
            if migration.sql != postgres[migration.version]:
                _apply_with_stubs(db, migration.sql)
        yield db


def test_timescale_migrations_run_on_postgresql_with_stand_ins(timescale_schema: psycopg.Connection[Any]) -> None:
    db = timescale_schema
    hypertables = db.execute("SELECT relation::text, time_column, chunk FROM tsdb_check.stub_hypertables").fetchall()
    assert hypertables == [("readings", "measured_at", timedelta(days=7))]
    policies = db.execute(
        "SELECT relation::text, policy, setting FROM tsdb_check.stub_policies ORDER BY 1, 2"
    ).fetchall()
    assert policies == [
        ("readings", "compression", timedelta(days=30)),
        ("readings", "retention", timedelta(days=3650)),
        ("readings_hourly", "refresh", timedelta(minutes=10)),
        ("readings_hourly", "retention", timedelta(days=3650)),
    ]
    columns = [
        r[0]
        for r in db.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'tsdb_check.readings_hourly'::regclass AND attnum > 0 "
            "ORDER BY attnum"
        ).fetchall()
    ]
    assert columns == ["patient_id", "kind", "bucket", "min_value", "max_value", "sum_value", "n"]
    # The compression settings name columns that exist (PostgreSQL itself only parses that statement).
    script = {m.version: m.sql for m in available_migrations("timescale")}["0002"]
    segment = re.search(r"compress_segmentby\s*=\s*'([^']*)'", script)
    order = re.search(r"compress_orderby\s*=\s*'([^']*)'", script)
    assert segment and order
    table_columns = {
        r[0]
        for r in db.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'tsdb_check.readings'::regclass AND attnum > 0"
        ).fetchall()
    }
    named = [c.strip() for c in segment.group(1).split(",")] + [order.group(1).split()[0]]
    assert set(named) <= table_columns


def test_stand_ins_refuse_what_timescaledb_refuses(db: psycopg.Connection[Any]) -> None:
    # The checks above can fail: a table whose primary key lacks the time column is no hypertable.
    with db.transaction(force_rollback=True):
        db.execute("CREATE SCHEMA tsdb_check")
        db.execute(_STUBS.encode())
        db.execute("CREATE TABLE tsdb_check.bad (id uuid PRIMARY KEY, at timestamptz NOT NULL)")
        with pytest.raises(errors.RaiseException, match="lacks the time column"), db.transaction():
            db.execute("SELECT tsdb_check.create_hypertable('tsdb_check.bad', 'at')")
        with pytest.raises(errors.RaiseException, match="not a hypertable"), db.transaction():
            db.execute("SELECT tsdb_check.add_compression_policy('tsdb_check.bad', interval '1 day')")
        with pytest.raises(errors.InvalidParameterValue, match='namespace "timescaledb"'), db.transaction():
            db.execute("ALTER TABLE tsdb_check.bad SET (timescaledb.compress)")
        with pytest.raises(errors.SyntaxError), db.transaction():
            db.execute("ALTER TABLE tsdb_check.bad SET timescaledb.compress")


def test_split_statements_keeps_function_bodies_and_strings_whole() -> None:
    script = "-- a; comment\nSELECT 'a;b';\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\nSELECT 2"
    assert split_statements(script) == [
        "SELECT 'a;b'",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$",
        "SELECT 2",
    ]


# --- the trend query on the hourly aggregate -----------------------------------------------------------------------


def _insert(
    db: psycopg.Connection[Any], patient: UUID, gateway: str, kind: str, rows: list[tuple[datetime, float]]
) -> None:
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (id, patient_id, gateway_id, kind, value, measured_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [(uuid.uuid4(), patient, gateway, kind, v, t) for t, v in rows],
        )


def _spread(start: datetime, hours: int, seed: int) -> list[tuple[datetime, float]]:
    """Readings at uneven minutes over `hours`, several in some hours and none in others."""
    rng = random.Random(seed)
    out = []
    for h in range(hours):
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            at = start + timedelta(hours=h, minutes=rng.randrange(60), seconds=rng.randrange(60))
            out.append((at, round(rng.uniform(85, 100), 1)))
    return out


@pytest.mark.parametrize("bucket", ["hour", "day", "week"])
def test_hourly_aggregate_gives_the_same_buckets_as_the_readings_query(
    timescale_schema: psycopg.Connection[Any], make_tenant: Any, bucket: str
) -> None:
    db = timescale_schema
    tenant = make_tenant()
    patient, gateway = tenant.patients[0], tenant.gateways[0].gateway_id
    db.execute("UPDATE patients SET timezone = 'Europe/Oslo' WHERE id = %s", (patient,))
    # Six weeks around the end of summer time (2026-10-25), with range ends inside an hour.
    first = datetime(2026, 10, 1, 0, 0, tzinfo=UTC)
    _insert(db, patient, gateway, "spo2", _spread(first, 24 * 42, seed=7))
    _insert(db, patient, gateway, "pulse_rate", _spread(first, 24 * 42, seed=8))
    start, end = first + timedelta(days=2, minutes=17, seconds=5), first + timedelta(days=40, hours=5, minutes=41)
    # Readings inside the partial hours at both ends, just in and just out of the range.
    edges = [(start - timedelta(minutes=5), 70.0), (start + timedelta(minutes=10), 71.0)]
    edges += [(end - timedelta(minutes=3), 72.0), (end + timedelta(minutes=2), 73.0)]
    _insert(db, patient, gateway, "spo2", edges)
    db.execute("REFRESH MATERIALIZED VIEW tsdb_check.readings_hourly")

    aggregate = trend_rows(db, patient, "spo2", bucket, start, end)
    plain = trend_rows(db, patient, "spo2", bucket, start, end, source="readings")

    assert aggregate.source == "hourly_aggregate", "the aggregate exists in the search path, so it is chosen"
    assert len(plain.rows) > {"hour": 300, "day": 35, "week": 5}[bucket]
    assert plain.rows[0][1] == 71.0 and 72.0 in (plain.rows[-1][1], plain.rows[-1][3])
    assert [(r[0], r[1], r[3], r[4]) for r in aggregate.rows] == [(r[0], r[1], r[3], r[4]) for r in plain.rows]
    for got, want in zip(aggregate.rows, plain.rows, strict=True):
        assert got[2] == pytest.approx(want[2], rel=1e-12), "avg: sum/count of hourly sums, equal up to rounding"
    counted = db.execute(
        "SELECT count(*) FROM readings WHERE patient_id = %s AND kind = 'spo2' "
        "AND measured_at >= %s AND measured_at < %s",
        (patient, start, end),
    ).fetchone()
    assert counted == (sum(r[4] for r in aggregate.rows),)


def test_trend_source_follows_the_capability_and_the_patients_zone(
    timescale_schema: psycopg.Connection[Any], make_tenant: Any
) -> None:
    db = timescale_schema
    tenant = make_tenant(patients=2)
    oslo, kolkata = tenant.patients
    db.execute("UPDATE patients SET timezone = 'Asia/Kolkata' WHERE id = %s", (kolkata,))
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)
    for patient in (oslo, kolkata):
        _insert(db, patient, tenant.gateways[0].gateway_id, "spo2", _spread(start, 24 * 7, seed=3))
    db.execute("REFRESH MATERIALIZED VIEW tsdb_check.readings_hourly")

    assert trend_rows(db, oslo, "spo2", "day", start, end).source == "hourly_aggregate"
    # UTC+05:30: local midnight is not a whole UTC hour, so hourly rows cannot be regrouped into local days.
    india = trend_rows(db, kolkata, "spo2", "day", start, end)
    assert india.source == "readings"
    assert india.rows == trend_rows(db, kolkata, "spo2", "day", start, end, source="readings").rows

    db.execute("SET LOCAL search_path = public")  # plain PostgreSQL: the rollup table of 0225 is chosen the same way
    assert trend_rows(db, oslo, "spo2", "day", start, end).source == "hourly_aggregate"
    assert trend_rows(db, kolkata, "spo2", "day", start, end).source == "readings"


def test_both_trend_queries_are_valid_sql_on_plain_postgresql(db: psycopg.Connection[Any]) -> None:
    params = {
        "bucket": "day",
        "tz": "Europe/Oslo",
        "patient": uuid.uuid4(),
        "kind": "spo2",
        "start": datetime(2026, 1, 1, tzinfo=UTC),
        "end": datetime(2026, 2, 1, tzinfo=UTC),
        "inner_start": datetime(2026, 1, 1, tzinfo=UTC),
        "inner_end": datetime(2026, 2, 1, tzinfo=UTC),
    }
    assert db.execute(READINGS_SQL, params).fetchall() == []
    # On plain PostgreSQL the aggregate query reads the rollup table (0225).
    assert db.execute(HOURLY_AGGREGATE_SQL, params).fetchall() == []
