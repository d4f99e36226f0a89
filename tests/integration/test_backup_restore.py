"""The restore drill on a stack of its own (PostgreSQL archiving WAL to its pgBackRest repository): back up, write
more, note a time T, drop a table by mistake, restore to T into a fresh instance with `varde db restore`, and every
reading written up to T is there; the backup's age reaches the rules scheduler's /metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from store.settings import varde_home

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def drill_home() -> Iterator[Path]:
    from varde import stack

    home = varde_home().parent / f"{varde_home().name}-backup-drill"  # one per xdist worker
    with stack.running(home, services=False):
        yield home


def _varde(home: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "VARDE_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "varde", *args, "--json"], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _write(conn: psycopg.Connection[Any], n: int) -> set[uuid.UUID]:
    ids = {uuid.uuid4() for _ in range(n)}
    with (
        conn.cursor() as cur,
        cur.copy("COPY readings (id, patient_id, gateway_id, kind, value, measured_at) FROM STDIN") as copy,
    ):
        for reading_id in ids:
            copy.write_row((reading_id, uuid.uuid4(), "gw-drill", "spo2", 96.0, datetime.now().astimezone()))
    return ids


def test_restore_to_a_moment_before_a_table_was_dropped_brings_back_every_reading(drill_home: Path) -> None:
    from varde import backup, stack

    state = stack.load_state(stack.StackPaths(drill_home))
    url = state["database_url"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS drill_notes")
        before_backup = _write(conn, 2000)
        full = _varde(drill_home, "db", "backup", "--type", "full")
        assert full["kind"] == "full"
        after_backup = _write(conn, 3000)
        incr = _varde(drill_home, "db", "backup", "--type", "incr")
        assert incr["kind"] == "incr"
        after_incr = _write(conn, 1000)
        moment = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        conn.execute("DROP TABLE readings CASCADE")  # the mistake
        conn.execute("SELECT pg_switch_wal()")

    restored = _varde(drill_home, "db", "restore", "--to", moment.isoformat())
    secret = json.loads((drill_home / "secrets.json").read_text())
    restored_url = f"postgresql://varde:{secret['postgres_password']}@127.0.0.1:{restored['port']}/varde"
    try:
        with psycopg.connect(restored_url) as conn:
            ids = {r[0] for r in conn.execute("SELECT id FROM readings WHERE gateway_id = 'gw-drill'").fetchall()}
            backups = conn.execute("SELECT kind FROM backup_runs ORDER BY id").fetchall()
        expected = before_backup | after_backup | after_incr
        print(f"\nrestore drill: written up to T {len(expected)}, restored {len(ids)}, missing {len(expected - ids)}")
        assert expected <= ids
        assert [b[0] for b in backups][-2:] == ["full", "incr"]
    finally:
        target = backup.resolve(drill_home, _settings(drill_home))
        backup.stop_restored(target.repo, target.bindir, Path(restored["pgdata"]))
    # The drill's own cluster is broken on purpose: start it over next time.
    stack.down(drill_home)
    _remove(drill_home)


def _settings(home: Path) -> Any:
    from store.settings import Settings

    previous = os.environ.get("VARDE_HOME")
    os.environ["VARDE_HOME"] = str(home)
    try:
        return Settings()
    finally:
        os.environ["VARDE_HOME"] = previous or ""


def _remove(home: Path) -> None:
    import shutil

    shutil.rmtree(home, ignore_errors=True)


def test_backup_age_is_in_the_rules_metrics_and_too_old_until_a_backup_is_taken(stack: dict[str, Any]) -> None:
    from tests.integration.ops import metrics_port, scrape, value
    from tests.stack_plugin import wait_for

    port = metrics_port("rules")
    with psycopg.connect(stack["database_url"]) as conn:
        recorded = conn.execute("SELECT count(*) FROM backup_runs").fetchone()[0]  # type: ignore[index]
    samples, names = scrape(port)
    assert {"varde_backup_age_seconds", "varde_backup_too_old", "varde_wal_archive_failures"} <= names
    if recorded == 0:
        assert value(samples, "varde_backup_too_old") == 1.0, "no backup at all is an alarm"
    result = _varde(varde_home(), "db", "backup", "--type", "incr")
    assert result["kind"] in ("full", "incr")

    def fresh() -> bool:
        now, _ = scrape(port)
        return value(now, "varde_backup_too_old") == 0.0 and value(now, "varde_backup_age_seconds") < 600

    wait_for(fresh, timeout=30, interval=1.0, what="the new backup's age in /metrics")
    assert value(scrape(port)[0], "varde_backup_max_age_seconds") == 26 * 3600


def test_the_rules_leaders_scheduled_backup_backs_up_the_local_stack_and_records_it(stack: dict[str, Any]) -> None:
    """What the `backup-incr` job runs (rules_engine.backups), on the repository the stack configured."""
    from rules_engine.backups import take_backup
    from store.settings import Settings
    from varde.backup import configured_repository

    repository = configured_repository(varde_home(), Settings())
    assert repository is not None, "varde stack up configures a repository, so the leader schedules backups"
    with psycopg.connect(stack["database_url"]) as conn:
        before = conn.execute("SELECT coalesce(max(id), 0) FROM backup_runs").fetchone()[0]  # type: ignore[index]
    assert take_backup(repository, "incr", stack["database_url"]) is True
    newest = repository.info()[-1]
    with psycopg.connect(stack["database_url"]) as conn:
        runs = conn.execute("SELECT kind, label FROM backup_runs WHERE id > %s", (before,)).fetchall()
    assert runs == [(newest["type"], newest["label"])]


@pytest.fixture
def status_db(db: psycopg.Connection[Any], settings: Any) -> Iterator[str]:
    """A database of its own, migrated, so its backup_runs hold only what the test writes."""
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    from store.migrate import migrate

    name = f"varde_backup_status_{uuid.uuid4().hex[:8]}"
    db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(settings.require_database_url(), dbname=name)
    try:
        with psycopg.connect(url) as conn:
            migrate(conn)
        yield url
    finally:
        db.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_backup_older_than_allowed_is_too_old_and_a_fresh_one_is_not(status_db: str) -> None:
    from store.backup_status import BackupStatusCollector

    def gauges() -> dict[str, float]:
        collector = BackupStatusCollector(status_db, 26 * 3600, cache_seconds=0)
        return {m.name: m.samples[0].value for m in collector.collect()}

    with psycopg.connect(status_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO backup_runs (kind, label, started_at, finished_at, repository) "
            "VALUES ('full', 'old', now() - interval '30 hours', now() - interval '29 hours', 'test')"
        )
        old = gauges()
        assert old["varde_backup_too_old"] == 1.0
        assert 29 * 3600 <= old["varde_backup_age_seconds"] < 29 * 3600 + 60
        conn.execute(
            "INSERT INTO backup_runs (kind, label, started_at, finished_at, repository) "
            "VALUES ('incr', 'new', now() - interval '2 hours', now() - interval '1 hour', 'test')"
        )
        new = gauges()
        assert new["varde_backup_too_old"] == 0.0
        assert 3600 <= new["varde_backup_age_seconds"] < 3600 + 60
