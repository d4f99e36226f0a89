"""Measurement sharing: each active subscription turns the readings of its organisation's patients that arrived
after its high-water mark into Bundles of at most `batch_size` Observations, written to the outbox in the same
transaction that advances the mark. A subscription is locked while it is fed (FOR UPDATE SKIP LOCKED), so several
workers never build the same batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection

from clinician_api import fhir
from clinician_api.journal import bundles, outbox
from store import journal, journal_documents

_BP = fhir.BP_KINDS
# Components of one measurement act carry one time; the margin only absorbs a device that stamps each one anew.
_PARTNER_MARGIN = timedelta(minutes=10)


def feed(conn: Connection[Any], subscription_id: UUID, max_batches: int = 10) -> int:
    """Write up to `max_batches` batches for one subscription, one transaction each; returns the batches written.
    Returns at once when another worker is feeding the subscription."""
    written = 0
    for _ in range(max_batches):
        with conn.transaction():
            sub = journal.lock_subscription(conn, subscription_id)
            if sub is None:
                return written
            if not _one_batch(conn, sub):
                return written
        written += 1
    return written


def _one_batch(conn: Connection[Any], sub: journal.Subscription) -> bool:
    rows = journal.unshared_readings(conn, sub, outbox.may_share)
    if not rows:
        journal.prune_shared(conn, sub)
        return False
    readings = {r.id: r for r in rows}
    _add_bp_partners(conn, sub, readings)
    batch = sorted(readings.values(), key=lambda r: (r.received_at, str(r.id)))
    patient_ids = sorted({r.patient_id for r in batch}, key=str)
    patients = [outbox.patient_row(p) for p in journal_documents.patients(conn, patient_ids)]
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
    journal.record_shared(conn, sub.id, {r.id: r.received_at for r in batch})
    return True


def _add_bp_partners(conn: Connection[Any], sub: journal.Subscription, readings: dict[UUID, fhir.ReadingRow]) -> None:
    """Both halves of a blood pressure measurement travel in one batch, so the panel is never split.

    The components of one cuff inflation share their patient and their measured time, so the lookup is bounded by
    both (the patient/kind/time index, partitions pruned by time) instead of scanning every partition for the
    group ids."""
    bp = [r for r in readings.values() if r.kind in _BP and r.group]
    if not bp:
        return
    groups = sorted({(r.gateway_id, r.group) for r in bp if r.group})
    earliest = min(r.measured_at for r in bp) - _PARTNER_MARGIN
    latest = max(r.measured_at for r in bp) + _PARTNER_MARGIN
    partners = journal.unshared_group_readings(
        conn, sub.id, sorted({r.patient_id for r in bp}, key=str), list(_BP), (earliest, latest), groups
    )
    readings.update({r.id: r for r in partners})
