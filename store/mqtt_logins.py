"""Broker logins and their ACL rows for the EMQX variant (`mqtt_logins`, `mqtt_acl`; EMQX reads them through the
views of migration 0070), and the PostgreSQL role EMQX logs in as. What a login may do and how its password is
hashed is `varde.emqx`'s; this module writes the rows in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql


def upsert(
    conn: psycopg.Connection[Any],
    username: str,
    gateway_id: str | None,
    password_hash: str,
    salt: str,
    acls: Sequence[tuple[str, str]],
) -> None:
    """The login enabled with this password hash, and its ACL replaced by `acls` ((action, topic) allow rows)."""
    conn.execute(
        "INSERT INTO mqtt_logins (username, gateway_id, password_hash, salt) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, salt = EXCLUDED.salt, "
        "enabled = true, updated_at = now()",
        (username, gateway_id, password_hash, salt),
    )
    conn.execute("DELETE FROM mqtt_acl WHERE username = %s", (username,))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO mqtt_acl (username, action, topic) VALUES (%s, %s, %s)",
            [(username, action, topic) for action, topic in acls],
        )


def disable_gateway(conn: psycopg.Connection[Any], gateway_id: str) -> None:
    conn.execute("UPDATE mqtt_logins SET enabled = false, updated_at = now() WHERE gateway_id = %s", (gateway_id,))


def delete(conn: psycopg.Connection[Any], usernames: Sequence[str]) -> None:
    conn.execute("DELETE FROM mqtt_logins WHERE username = ANY(%s)", (list(usernames),))


def ensure_reader_role(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    """Create or update `role` as a login with SELECT on the two views EMQX reads, nothing else (idempotent)."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(role), sql.Literal(password)
        )
    )
    conn.execute(sql.SQL("GRANT SELECT ON mqtt_auth, mqtt_acl_rules TO {}").format(sql.Identifier(role)))


__all__ = ["delete", "disable_gateway", "ensure_reader_role", "upsert"]
