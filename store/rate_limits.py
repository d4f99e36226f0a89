"""Sign-in attempt budgets shared by every API replica (`rate_limit_hits`, counted by the `rate_limit_take` function of
the schema): take one attempt from each bucket or from none, and give back the attempt of a sign-in that succeeded.
Which buckets and limits apply is `clinician_api.ratelimit`'s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import Connection

_TAKE = "SELECT rate_limit_take(%s::text[], %s::integer[], %s, %s) AS retry_after"
_GIVE_BACK = "DELETE FROM rate_limit_hits WHERE attempt = %s"


def take(conn: Connection[Any], budgets: Sequence[tuple[str, int]], window_seconds: float, attempt: UUID) -> int | None:
    """Take `attempt` from every (bucket, limit); the seconds to wait when one bucket is spent (nothing taken then),
    else None."""
    buckets = [bucket for bucket, _ in budgets]
    limits = [limit for _, limit in budgets]
    row = conn.execute(_TAKE, (buckets, limits, window_seconds, attempt)).fetchone()
    retry_after = None if row is None else row[0]
    return None if retry_after is None else int(retry_after)


def give_back(conn: Connection[Any], attempt: UUID) -> None:
    conn.execute(_GIVE_BACK, (attempt,))


__all__ = ["give_back", "take"]
