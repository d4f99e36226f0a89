"""Backup and WAL-archive health as Prometheus metrics, read from the database on each scrape (cached briefly): the
newest backup `varde db backup` recorded in `backup_runs` (written here too, `record_run`), and PostgreSQL's own
archiver statistics. Served by the rules scheduler; the operators' alert (deploy/prometheus/alerts.yml) fires on
`varde_backup_too_old`."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class BackupStatusCollector(Collector):
    def __init__(self, database_url: str, max_age_seconds: float, *, cache_seconds: float = 5.0) -> None:
        self._url = database_url
        self._max_age = max_age_seconds
        self._cache = cache_seconds
        self._lock = threading.Lock()
        self._read_at = -1e9
        self._values: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        with self._lock:
            if time.monotonic() - self._read_at < self._cache:
                return self._values
            values: dict[str, float] = {}
            try:
                with psycopg.connect(self._url, connect_timeout=3, application_name="varde-backup-status") as conn:
                    row = conn.execute(
                        "SELECT extract(epoch FROM max(finished_at)), extract(epoch FROM now() - max(finished_at)) "
                        "FROM backup_runs"
                    ).fetchone()
                    archiver = conn.execute(
                        "SELECT extract(epoch FROM last_archived_time), failed_count, "
                        "extract(epoch FROM last_failed_time) FROM pg_stat_archiver"
                    ).fetchone()
                if row is not None and row[0] is not None:
                    values["last"], values["age"] = float(row[0]), float(row[1])
                if archiver is not None:
                    values["archived"] = float(archiver[0]) if archiver[0] is not None else math.nan
                    values["archive_failed"] = float(archiver[1])
                    values["archive_failed_at"] = float(archiver[2]) if archiver[2] is not None else math.nan
            except psycopg.Error:
                values = {}  # unknown: the database check of /readyz says why
            self._values, self._read_at = values, time.monotonic()
            return values

    def collect(self) -> Iterator[GaugeMetricFamily]:
        values = self._read()
        age = values.get("age", math.inf)  # never backed up counts as too old
        yield GaugeMetricFamily(
            "varde_backup_last_success_timestamp_seconds",
            "Unix time the newest recorded backup finished (NaN: none)",
            value=values.get("last", math.nan),
        )
        yield GaugeMetricFamily("varde_backup_age_seconds", "Age of the newest recorded backup (+Inf: none)", value=age)
        yield GaugeMetricFamily(
            "varde_backup_max_age_seconds", "Age beyond which the newest backup is too old", value=self._max_age
        )
        yield GaugeMetricFamily(
            "varde_backup_too_old",
            "1 when the newest backup is older than allowed (or none)",
            value=float(age > self._max_age),
        )
        yield GaugeMetricFamily(
            "varde_wal_archive_last_success_timestamp_seconds",
            "Unix time PostgreSQL last archived a WAL segment (NaN: never)",
            value=values.get("archived", math.nan),
        )
        yield GaugeMetricFamily(
            "varde_wal_archive_failures",
            "WAL segments PostgreSQL failed to archive since its statistics were reset",
            value=values.get("archive_failed", math.nan),
        )


def record_run(
    conn: psycopg.Connection[Any],
    kind: str,
    label: str,
    started_at: datetime,
    finished_at: datetime,
    repository: str,
) -> None:
    """A finished backup, as `varde db backup` took it (what the collector reads the newest of)."""
    conn.execute(
        "INSERT INTO backup_runs (kind, label, started_at, finished_at, repository) VALUES (%s, %s, %s, %s, %s)",
        (kind, label, started_at, finished_at, repository),
    )
