"""Retention with pg_partman on a clock moved forward, in a database of its own on the test stack's server: old
yearly partitions of readings are dropped as configured, the current readings are not touched, and audit rows and
dead letters go by their own retention; the audit log refuses deletes by everyone but role varde_retention."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from store.migrate import migrate
from store.retention import RetentionPolicy, apply_retention
from store.settings import Settings

pytestmark = pytest.mark.integration

POLICY = RetentionPolicy(readings_years=3, audit_log_years=5, dead_letter_days=30)


@pytest.fixture
def retention_db(db: psycopg.Connection[Any], settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    name = f"varde_retention_{uuid.uuid4().hex[:8]}"
    db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(make_conninfo(settings.require_database_url(), dbname=name)) as conn:
            migrate(conn)
            conn.autocommit = True
            yield conn
    finally:
        db.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _add_reading(conn: psycopg.Connection[Any], at: datetime) -> uuid.UUID:
    reading_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO readings (id, patient_id, gateway_id, kind, value, measured_at) "
        "VALUES (%s, %s, 'gw-retention', 'spo2', 96, %s)",
        (reading_id, uuid.uuid4(), at),
    )
    return reading_id


def _rollup_hours(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT patient_id, bucket, n FROM readings_hourly ORDER BY 1, 2").fetchall()


def _reading_hours(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT patient_id, date_trunc('hour', measured_at, 'UTC'), count(*) FROM readings GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()


def _partitions(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute("SELECT partition_tablename FROM partman.show_partitions('public.readings')").fetchall()
    return {r[0] for r in rows}


def test_pg_partman_drops_partitions_past_retention_on_a_clock_moved_forward(
    retention_db: psycopg.Connection[Any],
) -> None:
    conn = retention_db
    now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    year = now.astimezone(UTC).year
    assert {f"readings_p{year - 11}", f"readings_p{year}", f"readings_p{year + 2}"} <= _partitions(conn)
    current = _add_reading(conn, now - timedelta(minutes=5))
    two_years = _add_reading(conn, datetime(year - 2, 6, 1, tzinfo=UTC))
    _add_reading(conn, datetime(year - 5, 6, 1, tzinfo=UTC))
    old_audit = conn.execute(
        "INSERT INTO audit_log (at, action, resource, outcome) VALUES (%s, 'read', 'test', 'ok') RETURNING id",
        (now - timedelta(days=365 * 7),),
    ).fetchone()[0]  # type: ignore[index]
    conn.execute(
        "INSERT INTO rejected_messages (received_at, topic, reason, detail, dedupe_key, payload) "
        "VALUES (%s, 't', 'bad_json', 'old', %s, ''), (%s, 't', 'bad_json', 'new', %s, '')",
        (now - timedelta(days=40), uuid.uuid4().bytes, now - timedelta(days=1), uuid.uuid4().bytes),
    )

    today = apply_retention(conn, POLICY)
    # Three years kept: the partitions whose whole year ended more than three years ago are gone.
    assert f"readings_p{year - 4}" in today.partitions_dropped and f"readings_p{year - 5}" in today.partitions_dropped
    assert f"readings_p{year - 3}" not in today.partitions_dropped
    assert today.audit_rows_deleted == 1 and today.dead_letters_deleted == 1
    ids = {r[0] for r in conn.execute("SELECT id FROM readings").fetchall()}
    assert ids == {current, two_years}
    # The hourly rollup (kept by triggers that a dropped partition does not fire) lost the dropped reading's hour.
    assert today.hourly_rows_deleted == 1
    assert _rollup_hours(conn) == _reading_hours(conn)
    assert conn.execute("SELECT count(*) FROM audit_log WHERE id = %s", (old_audit,)).fetchone() == (0,)

    # Two years on: the reading from two years back is now past retention; the current one stays, and the
    # partitions of the coming years exist relative to the moved clock.
    later = apply_retention(conn, POLICY, now + timedelta(days=2 * 365 + 30))
    assert f"readings_p{year - 2}" in later.partitions_dropped
    assert f"readings_p{year}" not in later.partitions_dropped
    assert {f"readings_p{year + 3}", f"readings_p{year + 4}"} <= set(later.partitions_created)
    assert {r[0] for r in conn.execute("SELECT id FROM readings").fetchall()} == {current}
    assert later.hourly_rows_deleted == 1 and _rollup_hours(conn) == _reading_hours(conn)
    assert conn.execute("SELECT count(*) FROM partman.part_config WHERE retention = '3 years'").fetchone() == (1,)
    runs = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'retention.run'").fetchone()
    assert runs == (2,), "each run leaves an audit row"


def test_audit_log_deletes_are_refused_for_every_role_but_varde_retention(
    retention_db: psycopg.Connection[Any],
) -> None:
    conn = retention_db
    conn.execute("INSERT INTO audit_log (action, resource, outcome) VALUES ('read', 'test', 'ok')")
    role = f"varde_app_{uuid.uuid4().hex[:6]}"
    conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    try:
        conn.execute(sql.SQL("GRANT ALL ON audit_log TO {}").format(sql.Identifier(role)))
        for acting in (None, role, "varde_retention"):
            with conn.transaction():
                if acting:
                    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(acting)))
                for statement in ("UPDATE audit_log SET outcome = 'changed'", "TRUNCATE audit_log"):
                    with pytest.raises(psycopg.Error, match=r"append-only|permission denied"), conn.transaction():
                        conn.execute(statement)
                if acting != "varde_retention":
                    with pytest.raises(psycopg.Error, match="append-only"), conn.transaction():
                        conn.execute("DELETE FROM audit_log")
        with conn.transaction():
            conn.execute("SET LOCAL ROLE varde_retention")
            assert conn.execute("DELETE FROM audit_log WHERE action = 'read'").rowcount == 1
    finally:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_pgaudit_logs_ddl_and_role_changes_to_the_server_log(db: psycopg.Connection[Any]) -> None:
    from store.settings import varde_home

    assert "pgaudit" in db.execute("SHOW shared_preload_libraries").fetchone()[0]  # type: ignore[index]
    marker = uuid.uuid4().hex[:10]
    role, table = f"audit_probe_{marker}", f"audit_probe_{marker}"
    db.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    db.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT 1").format(sql.Identifier(role)))
    db.execute(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(table)))
    db.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
    db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    db.execute("SELECT 1")  # not audited: reads are in the application's own audit log
    log = varde_home() / "logs" / "postgres.log"

    def audited() -> list[str]:
        return [line for line in log.read_text(errors="replace").splitlines() if "AUDIT:" in line and marker in line]

    from tests.integration.conftest import wait_for

    lines = wait_for(lambda: len(audited()) >= 5 and audited(), timeout=15, what="pgaudit lines in the server log")
    kinds = {(line.split(",")[3], line.split(",")[4]) for line in lines}
    assert {("ROLE", "CREATE ROLE"), ("ROLE", "ALTER ROLE"), ("DDL", "CREATE TABLE"), ("DDL", "DROP TABLE")} <= kinds
