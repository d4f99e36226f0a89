"""Leadership of the timed rules (`rules_engine.scheduler`): a PostgreSQL session-level advisory lock, held by the
one process that runs the scheduled jobs; the others wait as hot standbys. The lock lives as long as the session
that took it, so a lost connection (a database restart, a failover) is lost leadership."""

from __future__ import annotations

from typing import Any

from psycopg import Connection

RULES_LEADER_LOCK = 0x76617264_6C656164  # "vard" "lead"


def try_lead(conn: Connection[Any], lock: int = RULES_LEADER_LOCK) -> bool:
    """Take the lock on this session if no other session holds it; never waits."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock,)).fetchone()
    return bool(row and row[0])


def session_alive(conn: Connection[Any]) -> bool:
    """The session (and so the lock it holds) is still there; raises psycopg.OperationalError once it is lost."""
    return conn.execute("SELECT 1").fetchone() is not None


__all__ = ["RULES_LEADER_LOCK", "session_alive", "try_lead"]
