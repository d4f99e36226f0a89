"""Schema and migrations on the real PostgreSQL of the local stack."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from store.migrate import available_migrations, migrate

pytestmark = pytest.mark.integration


def test_migrate_twice_changes_nothing_the_second_time(db: psycopg.Connection[Any]) -> None:
    before = db.execute("SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in before] == [m.version for m in available_migrations("postgres")]
    assert migrate(db) == []
    assert migrate(db) == []
    after = db.execute("SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version").fetchall()
    assert after == before


def test_readings_dated_400_days_ago_to_tomorrow_all_insert(db: psycopg.Connection[Any], make_tenant: Any) -> None:
    tenant = make_tenant()
    patient_id = tenant.patients[0]
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=d) for d in range(-1, 401)]
    rows = [(uuid.uuid4(), patient_id, tenant.gateways[0].gateway_id, "body_weight", 80.0, at) for at in days]
    with (
        db.cursor() as cur,
        cur.copy("COPY readings (id, patient_id, gateway_id, kind, value, measured_at) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
    stored = db.execute("SELECT count(*) FROM readings WHERE patient_id = %s", (patient_id,)).fetchone()
    assert stored == (len(days),)
    in_default = db.execute("SELECT count(*) FROM readings_default WHERE patient_id = %s", (patient_id,)).fetchone()
    assert in_default == (0,), "every accepted date has a real partition"


def test_a_reading_outside_the_partitioned_years_still_inserts_and_moves_into_its_partition_later(
    db: psycopg.Connection[Any], make_tenant: Any
) -> None:
    tenant = make_tenant()
    far = datetime(2199, 6, 1, tzinfo=UTC)
    reading_id = uuid.uuid4()
    db.execute(
        "INSERT INTO readings (id, patient_id, gateway_id, kind, value, measured_at) VALUES (%s, %s, %s, %s, %s, %s)",
        (reading_id, tenant.patients[0], tenant.gateways[0].gateway_id, "spo2", 95.0, far),
    )
    assert db.execute("SELECT count(*) FROM readings_default WHERE id = %s", (reading_id,)).fetchone() == (1,)
    db.execute("SELECT varde_ensure_reading_partitions(2199, 2199)")
    assert db.execute("SELECT count(*) FROM readings_p2199 WHERE id = %s", (reading_id,)).fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM readings_default WHERE id = %s", (reading_id,)).fetchone() == (0,)
    db.execute("DELETE FROM readings WHERE id = %s", (reading_id,))
    db.execute("ALTER TABLE readings DETACH PARTITION readings_p2199")
    db.execute("DROP TABLE readings_p2199")


def test_the_same_reading_id_is_stored_once(db: psycopg.Connection[Any], make_tenant: Any) -> None:
    tenant = make_tenant()
    reading_id, at = uuid.uuid4(), datetime.now(UTC)
    for _ in range(3):
        db.execute(
            "INSERT INTO readings (id, patient_id, gateway_id, kind, value, measured_at) "
            "VALUES (%s, %s, %s, 'spo2', 95, %s) ON CONFLICT DO NOTHING",
            (reading_id, tenant.patients[0], tenant.gateways[0].gateway_id, at),
        )
    assert db.execute("SELECT count(*) FROM readings WHERE id = %s", (reading_id,)).fetchone() == (1,)


def test_audit_log_refuses_update_and_delete(db: psycopg.Connection[Any]) -> None:
    db.execute("INSERT INTO audit_log (action, resource, outcome) VALUES ('test', 'audit', 'ok')")
    for statement in ("UPDATE audit_log SET outcome = 'changed'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            db.execute(statement)


def test_migration_variant_is_chosen_by_extension_availability() -> None:
    postgres = {m.name for m in available_migrations("postgres")}
    timescale = {m.name for m in available_migrations("timescale")}
    assert "0002_readings" in postgres and "0002_readings" in timescale
    pg_sql = next(m.sql for m in available_migrations("postgres") if m.version == "0002")
    ts_sql = next(m.sql for m in available_migrations("timescale") if m.version == "0002")
    assert "PARTITION BY RANGE" in pg_sql and "create_hypertable" not in pg_sql
    assert "create_hypertable" in ts_sql


def test_detect_variant_reports_postgres_without_timescaledb(db: psycopg.Connection[Any]) -> None:
    from store.migrate import detect_variant

    has_tsdb = db.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    assert detect_variant(db) == ("timescale" if has_tsdb else "postgres")
