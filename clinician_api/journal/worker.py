"""The journal worker (`varde journal run`): feeds the measurement subscriptions into the outbox and delivers due
outbox entries to their record systems, with exponential back-off while a system is down and a dead letter when
it refuses. Several workers may run: entries and subscriptions are claimed with FOR UPDATE SKIP LOCKED, and the
Bundle identifiers make a resend harmless. Workers wake on `NOTIFY varde_journal` (an entry was written) and
`varde_events` (ingest stored readings), else when the earliest retry is due or the poll interval has passed."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg

from clinician_api import consent
from clinician_api.journal import feed, identity, metrics
from clinician_api.journal.credentials import TokenCache
from clinician_api.journal.delivery import Endpoint, send
from store import events, journal
from store.service import Service
from store.settings import Settings, get_settings

log = logging.getLogger("varde.journal")

WITHHELD = "withheld: a patient in this entry reserved against sharing with the record"


@dataclass
class PassResult:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    batches: int = 0
    resumed: set[UUID] = field(default_factory=set)


class JournalWorker:
    """One worker's loop over its own database connection; `run_once` is one pass (feed, then deliver)."""

    def __init__(self, database_url: str, *, poll_seconds: float = 5.0, name: str = "varde-journal") -> None:
        self._url = database_url
        self._poll = poll_seconds
        self._name = name
        self.tokens = TokenCache()
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._url, application_name=self._name)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def run_once(self, max_deliveries: int = 200) -> PassResult:
        conn = self._connection()
        result = PassResult()
        conn.rollback()
        for subscription_id in journal.active_subscription_ids(conn):
            conn.commit()
            result.batches += feed.feed(conn, subscription_id)
        conn.commit()
        endpoints: dict[UUID, Endpoint] = {}
        for _ in range(max_deliveries):
            if not self._deliver_one(conn, endpoints, result):
                break
        metrics.PASSES.inc()
        metrics.refresh_outbox(conn)
        conn.commit()
        return result

    def _deliver_one(self, conn: psycopg.Connection[Any], endpoints: dict[UUID, Endpoint], result: PassResult) -> bool:
        resume = False
        with conn.transaction():
            entry = journal.claim(conn)
            if entry is None:
                return False
            endpoint = endpoints.get(entry.endpoint_id)
            if endpoint is None:
                endpoint = endpoints[entry.endpoint_id] = _endpoint(conn, entry.endpoint_id)
            withheld = consent.reserved_among(conn, "record_sharing", entry.patient_ids)
            if withheld:
                # Queued before the patient reserved against sharing: it stays home (a retry asks again).
                _mark_failed(conn, entry.id, None, WITHHELD, None)
                result.failed += 1
                log.warning(
                    "journal_withheld entry=%s kind=%s patients_reserved=%d", entry.id, entry.kind, len(withheld)
                )
                return True
            outcome = send(endpoint, entry.bundle, self.tokens)
            attempt = entry.attempts + 1
            fields = {"entry": str(entry.id), "kind": entry.kind, "endpoint": endpoint.name, "attempt": attempt}
            if outcome.result == "delivered":
                journal.mark_delivered(conn, entry.id, outcome.status or 200, outcome.location)
                result.delivered += 1
                metrics.DELIVERIES.labels(kind=entry.kind).inc()
                log.info("journal_delivered %s status=%s", _kv(fields), outcome.status)
                if endpoint.id not in result.resumed:
                    result.resumed.add(endpoint.id)
                    resume = True
            elif outcome.result == "retry" and attempt < endpoint.max_attempts:
                delay = max(outcome.retry_after or 0.0, endpoint.backoff(attempt))
                _mark_failed(conn, entry.id, outcome.status, outcome.detail, delay)
                journal.pause_endpoint(conn, endpoint.id, delay)
                result.retried += 1
                metrics.FAILURES.labels(outcome="retry", status_class=metrics.status_class(outcome.status)).inc()
                result.resumed.discard(endpoint.id)
                log.warning("journal_retry %s status=%s in=%.1fs", _kv(fields), outcome.status, delay)
            else:
                detail = outcome.detail
                if outcome.result == "retry":
                    detail = f"gave up after {attempt} attempts: {detail}"
                _mark_failed(conn, entry.id, outcome.status, detail, None)
                result.failed += 1
                metrics.FAILURES.labels(outcome="failed", status_class=metrics.status_class(outcome.status)).inc()
                log.error("journal_failed %s status=%s", _kv(fields), outcome.status)
        if resume:
            # After the outcome is committed, so this worker holds no entry while it touches the others.
            with conn.transaction():
                woken = journal.resume_endpoint(conn, entry.endpoint_id)
            if woken:
                log.info("journal_endpoint_resumed endpoint=%s due_now=%d", endpoint.name, woken)
        return True

    def wait_seconds(self) -> float:
        conn = self._connection()
        due = journal.next_due_in(conn)
        conn.commit()
        return self._poll if due is None else min(self._poll, due)

    def run(self, stop: threading.Event) -> None:
        """Until `stop` is set: a pass, then sleep until woken by a NOTIFY, a due retry or the poll interval."""
        listener: psycopg.Connection[Any] | None = None
        while not stop.is_set():
            try:
                if listener is None or listener.closed:
                    listener = psycopg.connect(self._url, autocommit=True, application_name=f"{self._name}-listen")
                    events.listen(listener, events.Channel.JOURNAL, events.Channel.CHANGES)
                result = self.run_once()
                if result.delivered or result.failed or result.batches:
                    log.info(
                        "journal_pass delivered=%d retried=%d failed=%d batches=%d",
                        result.delivered,
                        result.retried,
                        result.failed,
                        result.batches,
                    )
                timeout = self.wait_seconds()
                if timeout > 0:
                    woken = False
                    for _ in listener.notifies(timeout=timeout, stop_after=1):
                        woken = True
                    if woken:
                        # Ingest notifies on every batch: gather what arrives meanwhile into one pass.
                        stop.wait(_COALESCE_S)
                        for _ in listener.notifies(timeout=0.01):
                            pass
            except psycopg.Error as exc:
                # The database went away (or refused a statement): start again on fresh connections.
                log.warning("journal_database_error error=%s", type(exc).__name__)
                self.close()
                if listener is not None:
                    listener.close()
                listener = None
                stop.wait(2.0)
        if listener is not None:
            listener.close()
        self.close()


def _endpoint(conn: psycopg.Connection[Any], endpoint_id: UUID) -> Endpoint:
    row = journal.endpoint(conn, endpoint_id)
    assert row is not None
    return Endpoint.of(row)


def _mark_failed(
    conn: psycopg.Connection[Any], entry_id: UUID, status: int | None, error: str, retry_in: float | None
) -> None:
    """A failed attempt, its error kept with national ids masked (`identity.redact`), at most 2000 characters."""
    journal.mark_attempt_failed(conn, entry_id, status, identity.redact(error)[:2000], retry_in)


_COALESCE_S = 0.5
"""After a wake-up, how long to let further notifications gather before the next pass."""


def _kv(fields: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in fields.items())


def run_worker(settings: Settings | None = None, poll_seconds: float = 5.0, metrics_port: int | None = None) -> None:
    """Run one journal worker until SIGTERM or SIGINT."""
    service = Service("journal", settings or get_settings())
    service.serve_ops(metrics_port)
    stop = service.stop
    worker = JournalWorker(service.settings.require_database_url(), poll_seconds=poll_seconds)
    log.info("journal_worker_started poll=%.1fs", poll_seconds)
    started = time.monotonic()
    worker.run(stop)
    log.info("journal_worker_stopped after=%.0fs", time.monotonic() - started)
