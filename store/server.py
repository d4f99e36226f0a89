"""The database server's own administration, as the local stack, the restore check and the high-availability
cluster need it: whether a database exists (and making it), whether a server has finished recovery, role passwords
and server settings, and the pg_auto_failover monitor's view of its nodes. None of it is Varde's data; it lives
here so that every statement the cloud side runs is in `store/`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import psycopg
from psycopg import sql
from psycopg.rows import class_row, scalar_row


def ensure_database(conn: psycopg.Connection[Any], name: str) -> bool:
    """Create the database unless it exists (`conn` in autocommit); True when it was created."""
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None:
        return False
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


def in_recovery(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server is still in recovery (a standby, or a restore not yet finished)."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return bool(cur.execute("SELECT pg_is_in_recovery()").fetchone())


def answers(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server runs a statement."""
    return conn.execute("SELECT 1").fetchone() is not None


def set_role_password(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))


def set_server_settings(conn: psycopg.Connection[Any], settings: Mapping[str, str]) -> None:
    """ALTER SYSTEM each setting (dotted names are extension settings), then reload the configuration."""
    for key, value in settings.items():
        conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(*key.split(".")), sql.Literal(value)))
    conn.execute("SELECT pg_reload_conf()")


class FailoverNode(NamedTuple):
    """A data node as the pg_auto_failover monitor sees it."""

    name: str
    port: int
    reported_state: str
    assigned_state: str
    health: int


def failover_nodes(conn: psycopg.Connection[Any], formation: str) -> list[FailoverNode]:
    """The formation's nodes, in the order they joined (on the monitor's database)."""
    with conn.cursor(row_factory=class_row(FailoverNode)) as cur:
        return cur.execute(
            "SELECT nodename AS name, nodeport AS port, reportedstate::text AS reported_state, "
            "goalstate::text AS assigned_state, health FROM pgautofailover.node WHERE formationid = %s "
            "ORDER BY nodeid",
            (formation,),
        ).fetchall()


__all__ = [
    "FailoverNode",
    "answers",
    "ensure_database",
    "failover_nodes",
    "in_recovery",
    "set_role_password",
    "set_server_settings",
]
