"""Retention: how long each kind of row is kept, applied by one job (`varde db retention`, and once a day by the
rules scheduler's leader).

- readings: on plain PostgreSQL pg_partman drops each yearly partition whose whole year is older than the
  retention, and makes the partitions of the coming years; on TimescaleDB the hypertable's retention policy is set to
  the same interval (TimescaleDB's own job then drops chunks on the server's clock). The plain-PostgreSQL hourly
  rollup (`readings_hourly`, kept by triggers that do not see a dropped partition) loses the hours whose readings
  are gone in the same transaction.
- audit_log: rows older than their retention are deleted as role `varde_retention`, the only role the append-only
  trigger lets delete (migration 0121).
- rejected_messages (dead letters): rows older than theirs, likewise.

The clock is a parameter, so a run "some years from now" is a test, not a wait. Every run writes one audit row.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from store import audit
from store.settings import Settings

READINGS_PARENT = "public.readings"
PREMAKE_YEARS = 2


class RetentionError(RuntimeError):
    """The job cannot run as configured; the message says what to change."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    readings_years: int
    audit_log_years: int
    dead_letter_days: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        policy = cls(
            settings.retention_readings_years, settings.retention_audit_log_years, settings.retention_dead_letter_days
        )
        for name, value in asdict(policy).items():
            if value < 0:
                raise RetentionError(f"VARDE_RETENTION_{name.upper()} must be 0 (keep for ever) or more, got {value}")
        return policy


@dataclass(slots=True)
class RetentionReport:
    now: datetime
    variant: str
    partitions_dropped: list[str] = field(default_factory=list)
    partitions_created: list[str] = field(default_factory=list)
    default_partition_rows_deleted: int = 0
    hourly_rows_deleted: int = 0
    audit_rows_deleted: int = 0
    dead_letters_deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["now"] = self.now.isoformat()
        return doc


def apply_retention(
    conn: psycopg.Connection[Any], policy: RetentionPolicy, now: datetime | None = None
) -> RetentionReport:
    """Apply `policy` as of `now` (default: the database's clock) in one transaction (`conn` in autocommit)."""
    with conn.transaction():
        conn.execute("SET LOCAL TimeZone = 'UTC'")
        if now is None:
            row = conn.execute("SELECT now()").fetchone()
            assert row is not None
            now = row[0]
        assert now is not None
        report = RetentionReport(now=now.astimezone(UTC), variant=_variant(conn))
        if report.variant == "timescale":
            _readings_timescale(conn, policy)
        else:
            _readings_partman(conn, policy, report)
        _delete_old_rows(conn, policy, report)
        audit.record(
            conn,
            None,
            "retention.run",
            "retention",
            "ok",
            reason=json.dumps({k: v for k, v in report.as_dict().items() if k != "variant"}),
        )
    return report


def _variant(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT variant FROM schema_migrations ORDER BY version LIMIT 1").fetchone()
    return str(row[0]) if row else "postgres"


def _partitions(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute("SELECT partition_tablename FROM partman.show_partitions(%s)", (READINGS_PARENT,)).fetchall()
    return {str(r[0]) for r in rows}


def _readings_partman(conn: psycopg.Connection[Any], policy: RetentionPolicy, report: RetentionReport) -> None:
    retention = f"{policy.readings_years} years" if policy.readings_years else None
    conn.execute("UPDATE partman.part_config SET retention = %s WHERE parent_table = %s", (retention, READINGS_PARENT))
    before = _partitions(conn)
    conn.execute(
        "SELECT partman.create_partition_time(%s, ARRAY(SELECT date_trunc('year', %s::timestamptz) "
        "+ make_interval(years => k) FROM generate_series(0, %s) AS k), false)",
        (READINGS_PARENT, report.now, PREMAKE_YEARS),
    )
    if retention is not None:
        conn.execute(
            "SELECT partman.drop_partition_time(%s, p_retention => %s::interval, p_keep_table => false, "
            "p_reference_timestamp => %s)",
            (READINGS_PARENT, retention, report.now),
        )
        # Readings from years without a partition wait in the default partition; the same retention holds there.
        cur = conn.execute(
            "DELETE FROM readings_default WHERE measured_at < %s::timestamptz - make_interval(years => %s)",
            (report.now, policy.readings_years),
        )
        report.default_partition_rows_deleted = cur.rowcount
        report.hourly_rows_deleted = _prune_hourly(conn, report.now, policy.readings_years)
    after = _partitions(conn)
    report.partitions_dropped = sorted(before - after)
    report.partitions_created = sorted(after - before)


def _prune_hourly(conn: psycopg.Connection[Any], now: datetime, years: int) -> int:
    """Rollup hours whose readings retention removed: no reading is left below the older of the oldest remaining
    partition's start and the cut (dropped partitions end at or before the cut, the default partition lost what
    lay before it); the hour holding the cut is recomputed from what is left of it."""
    row = conn.execute(
        "SELECT least(date_trunc('hour', %(now)s::timestamptz - make_interval(years => %(years)s)), "
        "(SELECT min(i.child_start_time) FROM partman.show_partitions(%(parent)s) s CROSS JOIN LATERAL "
        "partman.show_partition_info(s.partition_schemaname || '.' || s.partition_tablename, "
        "p_parent_table => %(parent)s) i)), "
        "date_trunc('hour', %(now)s::timestamptz - make_interval(years => %(years)s))",
        {"now": now, "years": years, "parent": READINGS_PARENT},
    ).fetchone()
    assert row is not None
    below, cut_hour = row
    deleted = conn.execute("DELETE FROM readings_hourly WHERE bucket < %s", (below,)).rowcount
    conn.execute(
        "SELECT varde_readings_hourly_recompute(array_agg(patient_id), array_agg(kind), array_agg(bucket)) "
        "FROM readings_hourly WHERE bucket = %s HAVING count(*) > 0",
        (cut_hour,),
    )
    return deleted


def _readings_timescale(conn: psycopg.Connection[Any], policy: RetentionPolicy) -> None:
    conn.execute("SELECT remove_retention_policy('readings', if_exists => true)")
    if policy.readings_years:
        conn.execute("SELECT add_retention_policy('readings', make_interval(years => %s))", (policy.readings_years,))


def _delete_old_rows(conn: psycopg.Connection[Any], policy: RetentionPolicy, report: RetentionReport) -> None:
    try:
        conn.execute("SET LOCAL ROLE varde_retention")
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RetentionError(
            "this database role may not act as varde_retention: GRANT varde_retention TO it, "
            "or give the job its own login in VARDE_RETENTION_DATABASE_URL"
        ) from exc
    if policy.audit_log_years:
        cur = conn.execute(
            "DELETE FROM audit_log WHERE at < %s::timestamptz - make_interval(years => %s)",
            (report.now, policy.audit_log_years),
        )
        report.audit_rows_deleted = cur.rowcount
    if policy.dead_letter_days:
        cur = conn.execute(
            "DELETE FROM rejected_messages WHERE received_at < %s::timestamptz - make_interval(days => %s)",
            (report.now, policy.dead_letter_days),
        )
        report.dead_letters_deleted = cur.rowcount
    conn.execute("RESET ROLE")


def run_retention(settings: Settings, now: datetime | None = None) -> RetentionReport:
    """Open the job's connection from the settings and apply their policy."""
    url = settings.retention_database_url or settings.require_database_url()
    with psycopg.connect(url, application_name="varde-retention", autocommit=True) as conn:
        return apply_retention(conn, RetentionPolicy.from_settings(settings), now)
