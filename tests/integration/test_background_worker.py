"""The API's background workers (clinician_api/background.py) against the test stack's PostgreSQL: a notification
wakes the work at once, no notification means one run per `poll_seconds`, and `stop()` ends a worker that is waiting
within a fraction of a second (an API shutdown waited for each worker's whole poll before)."""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from types import SimpleNamespace
from typing import Any, cast

import psycopg
import pytest

from clinician_api.background import ListeningWorker
from store.events import Channel
from store.settings import Settings
from tests.stack_plugin import wait_for

pytestmark = pytest.mark.integration


def _worker(settings: Settings, poll_seconds: float) -> tuple[ListeningWorker, list[float], str]:
    channel = f"test_background_{secrets.token_hex(4)}"
    runs: list[float] = []
    lock = threading.Lock()

    def work(conn: psycopg.Connection[Any]) -> None:
        with lock:
            runs.append(time.monotonic())

    url = settings.require_database_url()
    # A private channel (not one of `Channel`'s), so no service of the shared test stack wakes this worker; the
    # worker only reads the channel's `value`.
    private = cast(Channel, SimpleNamespace(value=channel))
    return ListeningWorker("test-background", private, lambda: url, work, poll_seconds), runs, channel


def test_a_notification_wakes_the_worker_at_once_and_stop_ends_it_within_a_second(settings: Settings) -> None:
    worker, runs, channel = _worker(settings, poll_seconds=30.0)
    worker.start()
    try:
        wait_for(lambda: len(runs) == 1, timeout=30, what="the first run on start")
        time.sleep(1.0)  # the worker is now waiting, with 29 s of its poll left
        assert len(runs) == 1
        with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
            conn.execute(f"NOTIFY {channel}")
        wait_for(lambda: len(runs) == 2, timeout=10, what="the run a notification wakes")
        assert runs[1] - runs[0] < 15
    finally:
        started = time.monotonic()
        worker.stop()
        stopped_in = time.monotonic() - started
    assert worker._thread is not None and not worker._thread.is_alive()
    assert stopped_in < 2.0, f"stop() took {stopped_in:.1f} s"


def test_without_notifications_the_work_runs_once_per_poll(settings: Settings) -> None:
    worker, runs, _ = _worker(settings, poll_seconds=1.0)
    worker.start()
    try:
        wait_for(lambda: len(runs) >= 4, timeout=30, what="four polls")
    finally:
        worker.stop()
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert all(gap >= 0.95 for gap in gaps), gaps
