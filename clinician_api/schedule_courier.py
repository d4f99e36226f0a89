"""The plan courier: publishes a patient's plan again when their schedule in force changed outside a request (a step
up committed by ingest, a step down by the timed rules), on the retained plan topic of each of their gateways.

`patient_schedules` is its outbox: a row whose `published_revision` lags its `revision` is due. The API process runs
one `PlanCourier` thread that wakes on `varde_schedules` notifications (within a second of the commit) and every
POLL_SECONDS, claims due rows with `FOR UPDATE SKIP LOCKED` (several replicas may run), publishes and marks them; a
broker that cannot take the plan leaves the row due, with the error, for the next round. The rows are
`store.schedules`' and `store.gateways`'.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg

from clinician_api.background import ListeningWorker
from clinician_api.gateway_link import GatewayPublisher, GatewayUnavailable
from store.events import Channel
from store.gateways import enabled_ids
from store.schedules import active_plans, lock_next_due, record_publication, wire_plan
from vitals import plan_topic

log = logging.getLogger("varde.schedules")
POLL_SECONDS = 5.0


def deliver_due(conn: psycopg.Connection[Any], publisher: GatewayPublisher, limit: int = 50) -> int:
    """Publish every due schedule (one transaction per patient); returns how many were delivered."""
    delivered = 0
    while delivered < limit:
        with conn.transaction():
            due = lock_next_due(conn)
            if due is None:
                return delivered
            error = _publish(conn, publisher, due.patient_id)
            record_publication(conn, due, error)
        if error is not None:
            log.warning("schedule_publish_failed revision=%d error=%s", due.revision, error)
            return delivered
        delivered += 1
        log.info("schedule_published revision=%d", due.revision)
    return delivered


def _publish(conn: psycopg.Connection[Any], publisher: GatewayPublisher, patient_id: UUID) -> str | None:
    plan = active_plans(conn, [patient_id]).get(patient_id)
    if plan is None:
        return None  # the plan was retired meanwhile: nothing to publish, the retirement cleared the topic
    payload = wire_plan(conn, plan).to_json()
    gateways = enabled_ids(conn, patient_id)
    try:
        for gateway_id in gateways:
            publisher.publish(plan_topic(gateway_id), payload, retain=True)
    except GatewayUnavailable as exc:
        return str(exc)[:500]
    return None


class PlanCourier(ListeningWorker):
    """The API process's courier thread: wakes on `varde_schedules` and every POLL_SECONDS."""

    def __init__(self, database_url: Callable[[], str], publisher: GatewayPublisher) -> None:
        super().__init__(
            "plan-courier",
            Channel.SCHEDULES,
            database_url,
            lambda conn: deliver_due(conn, publisher),
            poll_seconds=POLL_SECONDS,
            autocommit=True,
        )


__all__ = ["POLL_SECONDS", "PlanCourier", "deliver_due"]
