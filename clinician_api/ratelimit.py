"""The sign-in and enrolment rate limit, kept in PostgreSQL so every API replica draws on the same budget.

An attempt takes one place in each of its buckets before the password (or enrolment code) is checked and gives it
back when it succeeds: what counts is failures and attempts still in flight, so a burst of parallel guesses cannot
slip past the count, and a nurse who signs in at the first try uses nothing. Sign-in has two buckets: the account
(`VARDE_LOGIN_ATTEMPTS_PER_ACCOUNT` per minute, from any address) and the client address
(`VARDE_LOGIN_ATTEMPTS_PER_ADDRESS`, over all accounts, set higher: a hospital's users may share one address).
The SQL is `rate_limit_take` in store/migrations/0085_rate_limit.sql.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Connection

from store import rate_limits

WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Budget:
    """One bucket of attempts: `limit` per window, named by what it limits (`account:kari`, `address:10.0.0.7`)."""

    bucket: str
    limit: int


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of taking an attempt: `retry_after` seconds when refused, else the id to give back on success."""

    attempt_id: UUID
    retry_after: int | None

    @property
    def refused(self) -> bool:
        return self.retry_after is not None


def take(conn: Connection[Any], budgets: list[Budget], window_seconds: float = WINDOW_SECONDS) -> Attempt:
    """Take one attempt from every budget, or from none when one is spent. Commits, so the attempt counts for every
    replica at once and the buckets' locks are not held while a password is verified."""
    attempt_id = uuid.uuid4()
    retry_after = rate_limits.take(conn, [(b.bucket, b.limit) for b in budgets], window_seconds, attempt_id)
    conn.commit()
    return Attempt(attempt_id, retry_after)


def give_back(conn: Connection[Any], attempt: Attempt) -> None:
    """A successful attempt does not count (in the caller's transaction)."""
    rate_limits.give_back(conn, attempt.attempt_id)


def address_bucket(addr: str | None) -> str:
    return f"address:{addr or 'unknown'}"


__all__ = ["WINDOW_SECONDS", "Attempt", "Budget", "address_bucket", "give_back", "take"]
