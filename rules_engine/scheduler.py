"""Timed rules, run by one leader at a time: the process holding a PostgreSQL advisory lock (`store.leader`) runs
the jobs, others wait as hot standbys. Each job is one set-based statement, never one job per patient: escalation of red
alarms left open, step-downs of need-driven schedules after green days (`rules_engine.schedules`), questionnaires
not answered by their deadline (`rules_engine.questionnaires`), and repeat measurements that did not come in time
(`rules_engine.repeat_store.expire_due`); daily the personal baselines (`rules_engine.baselines`) and retention
(`store.retention`); nightly the backups (`rules_engine.backups`)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from apscheduler.schedulers.blocking import BlockingScheduler

from rules_engine import metrics
from rules_engine.missed import record_missed
from rules_engine.questionnaires import check_missed_questionnaires
from rules_engine.repeat_store import expire_due
from rules_engine.schedules import review_schedules
from store.alarms import escalate_overdue
from store.leader import RULES_LEADER_LOCK, session_alive, try_lead
from store.service import Service
from store.settings import Settings, get_settings

log = logging.getLogger("varde.rules")

LEADER_LOCK = RULES_LEADER_LOCK
ESCALATE_AFTER_MINUTES = 15


def escalate_unacknowledged(conn: psycopg.Connection[Any], after_minutes: int = ESCALATE_AFTER_MINUTES) -> int:
    """Red alarms left open (not acknowledged) for too long are escalated once, with an alarm event."""
    with conn.transaction():
        return len(escalate_overdue(conn, after_minutes))


class Leader:
    """Holds the advisory lock on its own session; losing the session loses leadership."""

    def __init__(self, settings: Settings) -> None:
        self._url = settings.require_database_url()
        self._conn: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._url, autocommit=True, application_name="varde-rules-leader")
            return try_lead(self._conn, LEADER_LOCK)
        except psycopg.OperationalError:
            self._conn = None
            return False

    def still_leader(self) -> bool:
        try:
            return self._conn is not None and session_alive(self._conn)
        except psycopg.OperationalError:
            self._conn = None
            return False


def run_scheduler(
    settings: Settings | None = None, interval_seconds: int = 30, metrics_port: int | None = None
) -> None:
    service = Service("rules", settings or get_settings())
    settings = service.settings
    service.serve_ops(metrics_port)
    from store.backup_status import BackupStatusCollector
    from store.observability import REGISTRY

    REGISTRY.register(BackupStatusCollector(settings.require_database_url(), settings.backup_max_age_hours * 3600))
    metrics.LEADER.set(0)
    leader = Leader(settings)
    stop = service.stop
    # Leadership is lost when the leader's session is (a database restart, a failover): then wait to take the lead
    # again, as a standby does, rather than leave the platform without scheduled rules.
    while not stop.is_set():
        while not stop.is_set() and not leader.try_acquire():
            stop.wait(5)
        if stop.is_set():
            break
        _lead(settings, leader, stop, interval_seconds)


def _lead(settings: Settings, leader: Leader, stop: threading.Event, interval_seconds: int) -> None:
    """Run the scheduled rules until `stop` is set or leadership is lost."""
    metrics.LEADER.set(1)
    log.info("rules_leader_acquired")
    scheduler = BlockingScheduler(timezone="UTC")
    lost = threading.Event()

    def tick() -> None:
        if not leader.still_leader():
            metrics.LEADER.set(0)
            log.error("rules_leadership_lost")
            lost.set()
            return
        started = time.perf_counter()
        try:
            with psycopg.connect(settings.require_database_url()) as conn:
                escalated = escalate_unacknowledged(conn)
                stepped_down = review_schedules(conn)
                missed = record_missed(conn)
                missed_questionnaires = check_missed_questionnaires(conn)
                repeats_expired = expire_due(conn)
            if escalated:
                log.info("alarms_escalated count=%d", escalated)
            if stepped_down:
                log.info("schedules_stepped_down count=%d", stepped_down)
            if missed:
                log.info("missed_measurements count=%d", len(missed))
            if repeats_expired:
                log.info("repeat_requests_expired alarms=%d", len(repeats_expired))
            if missed_questionnaires:
                log.info("questionnaires_missed alarms=%d", len(missed_questionnaires))
        except psycopg.Error as exc:
            metrics.TICKS.labels(outcome="error").inc()
            log.warning("rules_tick_failed error=%s", type(exc).__name__)
            return
        metrics.ALARMS_ESCALATED.inc(escalated)
        metrics.TICKS.labels(outcome="ok").inc()
        metrics.TICK_SECONDS.observe(time.perf_counter() - started)
        metrics.LAST_TICK.set_to_current_time()

    scheduler.add_job(
        tick,
        "interval",
        seconds=interval_seconds,
        id="rules-tick",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),  # the first run at once on taking the lead, then every interval
    )

    def retention() -> None:
        from store.retention import RetentionError, run_retention

        try:
            report = run_retention(settings)
        except (psycopg.Error, RetentionError) as exc:
            log.warning("retention_failed error=%s", type(exc).__name__)
            return
        log.info(
            "retention_applied partitions_dropped=%d audit_rows_deleted=%d dead_letters_deleted=%d",
            len(report.partitions_dropped),
            report.audit_rows_deleted,
            report.dead_letters_deleted,
        )

    # Daily, first a few minutes after taking the lead (a restarting stack does not drop partitions at once).
    scheduler.add_job(
        retention,
        "interval",
        hours=24,
        id="retention",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC) + timedelta(minutes=5),
    )

    # Weekly full and nightly incremental backups when a pgBackRest repository is configured (rules_engine.backups).
    from rules_engine.backups import add_backup_jobs
    from store.settings import varde_home
    from varde.backup import configured_repository

    add_backup_jobs(scheduler, configured_repository(varde_home(), settings), settings.require_database_url())

    def personal_limits() -> None:
        from rules_engine.baselines import recompute_personal_limits

        try:
            with psycopg.connect(settings.require_database_url()) as conn:
                written = recompute_personal_limits(conn)
        except psycopg.Error as exc:
            log.warning("personal_limits_failed error=%s", type(exc).__name__)
            return
        log.info("personal_limits_recomputed versions=%d", written)

    # Daily (rules_engine.baselines): the personal baselines after the run-in, first a minute after taking the lead.
    scheduler.add_job(
        personal_limits,
        "interval",
        hours=24,
        id="personal-limits",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC) + timedelta(minutes=1),
    )

    def shut_down_when_done() -> None:
        while not (stop.is_set() or lost.is_set()):
            stop.wait(0.5)
        scheduler.shutdown(wait=False)

    threading.Thread(target=shut_down_when_done, daemon=True).start()
    scheduler.start()
    metrics.LEADER.set(0)
