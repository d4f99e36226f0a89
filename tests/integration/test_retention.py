"""Retention with pg_partman on a clock moved forward, in a database of its own on the test stack's server: old
yearly partitions of readings are dropped as configured, the current readings are not touched, and audit rows and
dead letters go by their own retention; the audit log refuses deletes by everyone but role varde_retention."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def test_the_documented_retention_command_applies_the_retention_set_in_the_environment(
    retention_db: psycopg.Connection[Any], settings: Settings
) -> None:
    """`varde db retention --now T --json` as docs/operations.md gives it, configured only by VARDE_DATABASE_URL and
    VARDE_RETENTION_*: the settings reach the job (the defaults, 10 years, would drop none of these partitions)."""
    conn = retention_db
    now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    year = now.astimezone(UTC).year
    at = datetime(year + 2, 7, 1, tzinfo=UTC)  # three years back from here is mid-year: no partition on the boundary
    current = _add_reading(conn, now - timedelta(minutes=5))
    last_year = _add_reading(conn, datetime(year - 1, 3, 1, tzinfo=UTC))
    _add_reading(conn, datetime(year - 2, 6, 1, tzinfo=UTC))
    audit = conn.execute(
        "INSERT INTO audit_log (at, action, resource, outcome) VALUES (%s, 'read', 't', 'ok'), (%s, 'read', 't', 'ok') "
        "RETURNING id",
        (datetime(year - 4, 1, 1, tzinfo=UTC), datetime(year - 1, 1, 1, tzinfo=UTC)),
    ).fetchall()
    conn.execute(
        "INSERT INTO rejected_messages (received_at, topic, reason, detail, dedupe_key, payload) "
        "VALUES (%s, 't', 'bad_json', 'old', %s, ''), (%s, 't', 'bad_json', 'new', %s, '')",
        (at - timedelta(days=40), uuid.uuid4().bytes, at - timedelta(days=1), uuid.uuid4().bytes),
    )
    before = _partitions(conn)
    expected = {name for name in before if name[len("readings_p") :].isdigit() and int(name[-4:]) <= year - 2}
    assert f"readings_p{year - 2}" in expected and f"readings_p{year - 1}" not in expected

    env = {k: v for k, v in os.environ.items() if not k.startswith("VARDE_RETENTION_")}
    env |= {
        "VARDE_DATABASE_URL": make_conninfo(settings.require_database_url(), dbname=conn.info.dbname),
        "VARDE_RETENTION_READINGS_YEARS": "3",
        "VARDE_RETENTION_AUDIT_LOG_YEARS": "5",
        "VARDE_RETENTION_DEAD_LETTER_DAYS": "30",
    }
    done = subprocess.run(
        [sys.executable, "-m", "varde", "db", "retention", "--now", at.isoformat(), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)

    assert set(report["partitions_dropped"]) == expected == before - _partitions(conn)
    assert {f"readings_p{year + 3}", f"readings_p{year + 4}"} <= set(report["partitions_created"])
    assert {r[0] for r in conn.execute("SELECT id FROM readings").fetchall()} == {current, last_year}
    assert report["audit_rows_deleted"] == 1 and report["dead_letters_deleted"] == 1
    kept = {r[0] for r in conn.execute("SELECT id FROM audit_log WHERE action = 'read'").fetchall()}
    assert kept == {audit[1][0]}
    assert conn.execute("SELECT retention FROM partman.part_config").fetchone() == ("3 years",)


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


def _audit_lines(marker: str) -> list[str]:
    """The pgaudit lines in the test stack's server log that mention `marker`."""
    from store.settings import varde_home

    log = varde_home() / "logs" / "postgres.log"
    return [line for line in log.read_text(errors="replace").splitlines() if "AUDIT:" in line and marker in line]


def _kinds(lines: list[str]) -> set[tuple[str, str]]:
    """(class, command) of each pgaudit line, e.g. ("ROLE", "CREATE ROLE") or ("WRITE", "DELETE")."""
    return {(line.split(",")[3], line.split(",")[4]) for line in lines}


def test_pgaudit_logs_ddl_and_role_changes_to_the_server_log(db: psycopg.Connection[Any]) -> None:
    from tests.stack_plugin import wait_for

    assert "pgaudit" in db.execute("SHOW shared_preload_libraries").fetchone()[0]  # type: ignore[index]
    marker = uuid.uuid4().hex[:10]
    role, table = f"audit_probe_{marker}", f"audit_probe_{marker}"
    db.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    db.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT 1").format(sql.Identifier(role)))
    db.execute(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(table)))
    db.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
    db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    db.execute("SELECT 1")  # not audited: reads are in the application's own audit log

    lines = wait_for(
        lambda: len(_audit_lines(marker)) >= 5 and _audit_lines(marker),
        timeout=15,
        what="pgaudit lines in the server log",
    )
    assert {("ROLE", "CREATE ROLE"), ("ROLE", "ALTER ROLE"), ("DDL", "CREATE TABLE"), ("DDL", "DROP TABLE")} <= _kinds(
        lines
    )


def test_a_delete_from_audit_log_as_varde_retention_is_in_the_server_log_with_the_set_role(
    retention_db: psycopg.Connection[Any], settings: Settings
) -> None:
    """The services log in as a superuser, which may SET ROLE varde_retention and delete audit rows; both the SET ROLE
    and the DELETE reach the server log (migration 0220), and so does a refused attempt."""
    from tests.stack_plugin import wait_for

    marker, unaudited = uuid.uuid4().hex[:10], uuid.uuid4().hex[:10]
    url = make_conninfo(settings.require_database_url(), dbname=retention_db.info.dbname)
    with psycopg.connect(url, autocommit=True) as conn:  # a new session, as a service opens: the database settings hold
        assert conn.execute("SHOW pgaudit.role").fetchone() == ("varde_auditor",)
        for reason in (marker, unaudited):
            conn.execute(
                "INSERT INTO audit_log (action, resource, outcome, reason) VALUES ('read', 't', 'ok', %s)", (reason,)
            )
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute(f"DELETE FROM audit_log WHERE reason = '{marker}' AND action = 'read' /* refused */")
        # The control: with object auditing switched off in the session the same delete leaves no OBJECT line, so the
        # check below can tell a logged delete from an unlogged one.
        with conn.transaction():
            conn.execute("SET LOCAL pgaudit.role = ''")
            conn.execute("SET LOCAL ROLE varde_retention")
            assert conn.execute(f"DELETE FROM audit_log WHERE reason = '{unaudited}'").rowcount == 1
        with conn.transaction():
            conn.execute(f"/* {marker} */ SET LOCAL ROLE varde_retention")
            assert conn.execute(f"DELETE FROM audit_log WHERE reason = '{marker}'").rowcount == 1

    def logged() -> list[str]:
        lines = _audit_lines(marker)
        return lines if len([line for line in lines if "AUDIT: OBJECT" in line]) >= 2 else []

    lines = wait_for(logged, timeout=15, what="the audit_log deletes in the server log")
    deletes = [line for line in lines if "AUDIT: OBJECT" in line]
    assert all(",WRITE,DELETE,TABLE,public.audit_log," in line for line in deletes), deletes
    assert any("/* refused */" in line for line in deletes), "the refused attempt is logged too"
    assert ("MISC", "SET") in _kinds([line for line in lines if "SET LOCAL ROLE varde_retention" in line])
    assert not [line for line in _audit_lines(unaudited) if "AUDIT: OBJECT" in line]
