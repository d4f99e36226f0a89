"""Scheduled backups on the rules leader: a full pgBackRest backup every Sunday night and an incremental one every
other night, at the time the production timers use (deploy/ha/systemd/varde-backup-*.timer). Registered only when a
repository is configured (`varde.backup.configured_repository`); each run is recorded in `backup_runs`, whose age
`/metrics` reports, so a run that fails shows as `varde_backup_too_old` and the operators' alert."""

from __future__ import annotations

import logging
import subprocess
from datetime import UTC

import psycopg
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from varde.backup import BackupError, BackupKind, Repository, backup

log = logging.getLogger("varde.rules")

AT_HOUR, AT_MINUTE = 1, 30  # UTC, as the systemd timers
SCHEDULE: dict[str, tuple[BackupKind, str]] = {
    "backup-full": ("full", "sun"),
    "backup-incr": ("incr", "mon-sat"),
}
"""Job id → (backup type, days of the week)."""


def add_backup_jobs(scheduler: BaseScheduler, repository: Repository | None, database_url: str) -> list[str]:
    """Register the weekly full and nightly incremental backup; none without a repository. Returns the job ids."""
    if repository is None:
        log.info("backups_not_scheduled reason=no_repository")
        return []
    for job_id, (kind, days) in SCHEDULE.items():
        scheduler.add_job(
            take_backup,
            CronTrigger(day_of_week=days, hour=AT_HOUR, minute=AT_MINUTE, timezone=UTC),
            args=(repository, kind, database_url),
            id=job_id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,  # a leader that took over within the hour still takes that night's backup
        )
    return list(SCHEDULE)


def take_backup(repository: Repository, kind: BackupKind, database_url: str) -> bool:
    """One scheduled backup; a failure is logged (the backup's age in /metrics then grows) rather than raised."""
    try:
        result = backup(repository, kind, database_url)
    except (BackupError, psycopg.Error, subprocess.TimeoutExpired, OSError) as exc:
        log.warning("backup_failed type=%s error=%s detail=%s", kind, type(exc).__name__, str(exc)[-300:])
        return False
    log.info("backup_taken type=%s label=%s size_bytes=%d", result.kind, result.label, result.size_bytes)
    return True
