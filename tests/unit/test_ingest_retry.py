"""Ingest's retry while the database is away: a batch that meets a read-only server (the old primary demoted under
an open connection during a failover) is tried again, not dead-lettered; a fault of the message is not retried."""

from __future__ import annotations

import psycopg
import pytest

from ingest_service import metrics
from ingest_service.worker import RETRYABLE_DB_ERRORS, retry_while_database_away


class Flaky:
    """Work that fails with `error` the first `failures` times, then returns "committed"."""

    def __init__(self, error: Exception, failures: int) -> None:
        self.error, self.failures, self.calls = error, failures, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "committed"


def _read_only() -> psycopg.Error:
    # The class psycopg raises for SQLSTATE 25006 "cannot execute INSERT in a read-only transaction".
    return psycopg.errors.lookup("25006")("cannot execute INSERT in a read-only transaction")


def test_a_batch_refused_by_a_read_only_server_is_retried_until_it_commits() -> None:
    health = metrics.HealthState()
    pauses: list[float] = []
    before = metrics.DB_ERRORS._value.get()
    work = Flaky(_read_only(), failures=3)

    seen_unhealthy: list[bool] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        seen_unhealthy.append(not health.db_ok)

    assert retry_while_database_away("write", work, health, sleep=sleep) == "committed"
    assert work.calls == 4
    assert pauses == pytest.approx([0.2, 0.4, 0.6]), "a growing pause between attempts"
    assert all(seen_unhealthy) and health.db_ok, "not ready while it retries, ready again after the commit"
    assert metrics.DB_ERRORS._value.get() - before == 3


def test_read_only_is_among_the_errors_that_mean_the_database_is_changing_hands() -> None:
    assert isinstance(_read_only(), RETRYABLE_DB_ERRORS)
    assert isinstance(psycopg.OperationalError("server closed the connection"), RETRYABLE_DB_ERRORS)


def test_a_fault_of_the_message_is_raised_at_once_not_retried() -> None:
    health = metrics.HealthState()
    work = Flaky(psycopg.errors.lookup("22P02")("invalid input syntax for type uuid"), failures=1)
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        retry_while_database_away("write", work, health, sleep=lambda _s: pytest.fail("must not pause"))
    assert work.calls == 1
