"""Measurement sharing: each active subscription turns the readings of its organisation's patients that arrived
after its high-water mark into Bundles of at most `batch_size` Observations, written to the outbox in the same
transaction that advances the mark. A subscription is locked while it is fed (FOR UPDATE SKIP LOCKED), so several
workers never build the same batch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection, sql

from clinician_api import consent, fhir
from clinician_api.journal import bundles, outbox

_BP = fhir.BP_KINDS
# Components of one measurement act carry one time; the margin only absorbs a device that stamps each one anew.
_PARTNER_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Subscription:
    id: UUID
    organisation_id: UUID
    endpoint_id: UUID
    kinds: list[str] | None
    batch_size: int
    bundle_type: str
    hwm_received_at: datetime
    overlap_seconds: int

    @classmethod
    def columns(cls) -> str:
        return "id, organisation_id, endpoint_id, kinds, batch_size, bundle_type, hwm_received_at, overlap_seconds"


def active_subscription_ids(conn: Connection[Any]) -> list[UUID]:
    return [r[0] for r in conn.execute("SELECT id FROM journal_subscriptions WHERE active ORDER BY id").fetchall()]


def feed(conn: Connection[Any], subscription_id: UUID, max_batches: int = 10) -> int:
    """Write up to `max_batches` batches for one subscription, one transaction each; returns the batches written.
    Returns at once when another worker is feeding the subscription."""
    written = 0
    for _ in range(max_batches):
        with conn.transaction():
            row = conn.execute(
                sql.SQL("SELECT {} FROM journal_subscriptions WHERE id = %s AND active FOR UPDATE SKIP LOCKED").format(
                    sql.SQL(Subscription.columns())
                ),
                (subscription_id,),
            ).fetchone()
            if row is None:
                return written
            if not _one_batch(conn, Subscription(*row)):
                return written
        written += 1
    return written


def _one_batch(conn: Connection[Any], sub: Subscription) -> bool:
    cols = ", ".join(f"r.{c}" for c in fhir.ReadingRow.columns().split(", "))
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM readings r JOIN patients p ON p.id = r.patient_id JOIN care_teams t ON "
            "t.id = p.team_id WHERE t.organisation_id = %(org)s AND r.received_at > %(hwm)s - "
            "make_interval(secs => %(overlap)s) AND (%(kinds)s::text[] IS NULL OR r.kind = "
            "ANY(%(kinds)s::text[])) AND {} AND NOT EXISTS (SELECT 1 FROM journal_shared_readings s "
            "WHERE s.subscription_id = %(sub)s   AND s.reading_id = r.id) ORDER BY r.received_at, r.id "
            "LIMIT %(limit)s"
        ).format(sql.SQL(cols), consent.not_reserved_sql("record_sharing", "r.patient_id")),
        {
            "org": sub.organisation_id,
            "hwm": sub.hwm_received_at,
            "overlap": sub.overlap_seconds,
            "kinds": sub.kinds,
            "sub": sub.id,
            "limit": sub.batch_size,
        },
    ).fetchall()
    if not rows:
        _prune(conn, sub)
        return False
    readings = {r[0]: fhir.ReadingRow(*r) for r in rows}
    _add_bp_partners(conn, sub, readings)
    batch = sorted(readings.values(), key=lambda r: (r.received_at, str(r.id)))
    patient_ids = sorted({r.patient_id for r in batch}, key=str)
    patients = [
        bundles.PatientRow(*p)
        for p in conn.execute(
            sql.SQL("SELECT {} FROM patients p WHERE p.id = ANY(%s)").format(sql.SQL(bundles.PatientRow.columns())),
            (patient_ids,),
        ).fetchall()
    ]
    devices, gateways = outbox.devices_of(conn, batch)
    bundle = bundles.measurement_bundle(sub.id, sub.bundle_type, patients, batch, devices, gateways, datetime.now(UTC))
    outbox.insert(
        conn,
        kind="measurements",
        dedupe_key=f"subscription:{sub.id}:{bundle['id']}",
        endpoint_id=sub.endpoint_id,
        patient_ids=patient_ids,
        bundle=bundle,
        subscription_id=sub.id,
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO journal_shared_readings (subscription_id, reading_id, received_at) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            [(sub.id, r.id, r.received_at) for r in batch],
        )
    conn.execute(
        "UPDATE journal_subscriptions SET hwm_received_at = greatest(hwm_received_at, %s) WHERE id = %s",
        (max(r.received_at for r in batch), sub.id),
    )
    return True


def _add_bp_partners(conn: Connection[Any], sub: Subscription, readings: dict[UUID, fhir.ReadingRow]) -> None:
    """Both halves of a blood pressure measurement travel in one batch, so the panel is never split.

    The components of one cuff inflation share their patient and their measured time, so the lookup is bounded by
    both (the patient/kind/time index, partitions pruned by time) instead of scanning every partition for the
    group ids."""
    bp = [r for r in readings.values() if r.kind in _BP and r.group]
    if not bp:
        return
    groups = sorted({(r.gateway_id, r.group) for r in bp})
    earliest = min(r.measured_at for r in bp) - _PARTNER_MARGIN
    latest = max(r.measured_at for r in bp) + _PARTNER_MARGIN
    cols = ", ".join(f"r.{c}" for c in fhir.ReadingRow.columns().split(", "))
    partners = conn.execute(
        sql.SQL(
            "SELECT {} FROM readings r WHERE r.patient_id = ANY(%s) AND r.kind = ANY(%s) AND "
            "r.measured_at BETWEEN %s AND %s AND (r.gateway_id, r.grp) IN (SELECT * FROM "
            "unnest(%s::text[], %s::text[])) AND NOT EXISTS (SELECT 1 FROM journal_shared_readings s "
            "WHERE s.subscription_id = %s AND s.reading_id = r.id)"
        ).format(sql.SQL(cols)),
        (
            sorted({r.patient_id for r in bp}, key=str),
            list(_BP),
            earliest,
            latest,
            [g[0] for g in groups],
            [g[1] for g in groups],
            sub.id,
        ),
    ).fetchall()
    readings.update({r[0]: fhir.ReadingRow(*r) for r in partners})


def _prune(conn: Connection[Any], sub: Subscription) -> None:
    """Forget shared readings that have fallen behind the re-read window; they are never looked at again."""
    conn.execute(
        "DELETE FROM journal_shared_readings WHERE subscription_id = %s "
        "AND received_at < %s - make_interval(secs => %s)",
        (sub.id, sub.hwm_received_at, sub.overlap_seconds),
    )
