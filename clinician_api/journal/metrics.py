"""Prometheus metrics of the journal worker: deliveries and failures as they happen, and the outbox as a whole
(entries by state, age of the oldest entry still waiting) read from the database after each pass."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Gauge
from psycopg import Connection

from store import journal
from store.observability import REGISTRY

STATES = ("pending", "delivered", "failed")

PASSES = Counter("varde_journal_passes_total", "Passes of the journal worker (feed, then deliver)", registry=REGISTRY)
DELIVERIES = Counter(
    "varde_journal_deliveries_total", "Bundles accepted by a record system, by entry kind", ["kind"], registry=REGISTRY
)
FAILURES = Counter(
    "varde_journal_failures_total",
    "Delivery attempts that failed, by outcome (retry, failed) and the endpoint's status class (4xx, 5xx, network)",
    ["outcome", "status_class"],
    registry=REGISTRY,
)
ENTRIES = Gauge("varde_journal_entries", "Outbox entries by state", ["state"], registry=REGISTRY)
BACKLOG_AGE = Gauge(
    "varde_journal_backlog_age_seconds",
    "Age of the oldest outbox entry not yet delivered (0 when none waits)",
    registry=REGISTRY,
)
RETRY_BACKLOG = Gauge(
    "varde_journal_retry_backlog_entries", "Pending entries that have failed at least once", registry=REGISTRY
)


def status_class(status: int | None) -> str:
    return "network" if status is None else f"{status // 100}xx"


REFRESH_SECONDS = 5.0
"""The outbox gauges are read at most this often: the worker passes after every ingest batch under load."""
_last_refresh = -REFRESH_SECONDS


def refresh_outbox(conn: Connection[Any]) -> None:
    """Read the outbox's state counts and backlog age (one statement over the state index), at most every
    REFRESH_SECONDS."""
    global _last_refresh
    if time.monotonic() - _last_refresh < REFRESH_SECONDS:
        return
    _last_refresh = time.monotonic()
    by_state = {s.state: s for s in journal.state_counts(conn)}
    for state in STATES:
        counted = by_state.get(state)
        ENTRIES.labels(state=state).set(counted.entries if counted else 0)
    pending = by_state.get("pending")
    BACKLOG_AGE.set(float(pending.oldest_age_seconds) if pending else 0.0)
    RETRY_BACKLOG.set(pending.retried if pending else 0)
