"""The rules leader's backup schedule: a full backup on Sunday nights and an incremental one the other nights, only
when a pgBackRest repository is configured (the local stack's, or VARDE_PGBACKREST_CONFIG); a failed run is logged
and does not stop the scheduler."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from rules_engine.backups import add_backup_jobs, take_backup
from store.settings import Settings
from varde.backup import Repository, configured_repository

URL = "postgresql://varde@127.0.0.1:1/varde"


def _fire_times(scheduler: BackgroundScheduler, job_id: str, days: int = 14) -> list[datetime]:
    trigger = scheduler.get_job(job_id).trigger
    start = datetime(2026, 12, 7, tzinfo=UTC)  # a Monday
    times, previous = [], None
    now = start
    while (nxt := trigger.get_next_fire_time(previous, now)) is not None and nxt < start + timedelta(days=days):
        times.append(nxt)
        previous, now = nxt, nxt + timedelta(seconds=1)
    return times


def test_a_configured_repository_gets_a_weekly_full_and_a_nightly_incremental_backup() -> None:
    scheduler = BackgroundScheduler(timezone="UTC")
    repo = Repository(Path("/srv/backup/pgbackrest.conf"))
    assert add_backup_jobs(scheduler, repo, URL) == ["backup-full", "backup-incr"]

    full = _fire_times(scheduler, "backup-full")
    incr = _fire_times(scheduler, "backup-incr")
    assert [t.strftime("%a %H:%M") for t in full] == ["Sun 01:30", "Sun 01:30"]
    assert len(incr) == 12 and {t.strftime("%a") for t in incr} == {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
    assert {t.strftime("%H:%M") for t in incr} == {"01:30"}
    nights = sorted(t.date() for t in full + incr)
    assert nights == [datetime(2026, 12, 7, tzinfo=UTC).date() + timedelta(days=d) for d in range(14)], "every night"
    assert scheduler.get_job("backup-full").args == (repo, "full", URL)
    assert scheduler.get_job("backup-incr").args == (repo, "incr", URL)


def test_no_repository_no_backup_jobs() -> None:
    scheduler = BackgroundScheduler(timezone="UTC")
    assert add_backup_jobs(scheduler, None, URL) == []
    assert scheduler.get_jobs() == []


def test_the_repository_is_the_local_stacks_or_the_configured_one(tmp_path: Path) -> None:
    settings = Settings(database_url=URL, pgbackrest_config=None)
    assert configured_repository(tmp_path, settings) is None, "a home without a stack has no repository"

    config = tmp_path / "data" / "backup" / "pgbackrest.conf"
    (tmp_path / "stack.json").write_text(json.dumps({"backup": {"config": str(config), "run_as": "varde"}}))
    (tmp_path / "secrets.json").write_text(json.dumps({"postgres_password": "pw"}))
    assert configured_repository(tmp_path, settings) == Repository(config, "varde", "varde", "pw")

    production = Settings(database_url=URL, pgbackrest_config=Path("/etc/pgbackrest/pgbackrest.conf"))
    assert configured_repository(tmp_path, production) == Repository(Path("/etc/pgbackrest/pgbackrest.conf"), "varde")


def test_a_failed_backup_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A real pgBackRest run against a configuration that does not exist.
    missing = Repository(tmp_path / "absent" / "pgbackrest.conf")
    with caplog.at_level(logging.WARNING, logger="varde.rules"):
        assert take_backup(missing, "incr", URL) is False
    assert any("backup_failed type=incr" in r.getMessage() for r in caplog.records)
