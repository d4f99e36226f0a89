"""Configuration of the record integration, used by `varde journal …` and the tests: organisations (with their
organisation number), which care teams belong to them, their record endpoints and measurement subscriptions."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, sql

from vitals import Kind


class JournalConfigError(ValueError):
    pass


_ORG_NUMBER = re.compile(r"^[0-9]{9}$")


def add_organisation(conn: Connection[Any], name: str, org_number: str) -> UUID:
    """Create or rename an organisation by its organisation number (idempotent)."""
    org_number = org_number.replace(" ", "")
    if not _ORG_NUMBER.match(org_number):
        raise JournalConfigError(f"organisation number must be 9 digits, got {org_number!r}")
    row = conn.execute(
        "INSERT INTO organisations (name, org_number) VALUES (%s, %s) "
        "ON CONFLICT (org_number) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        (name, org_number),
    ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def _organisation_id(conn: Connection[Any], organisation: str) -> UUID:
    row = conn.execute(
        "SELECT id FROM organisations WHERE org_number = %s OR id::text = %s OR name = %s ORDER BY created_at LIMIT 1",
        (organisation, organisation, organisation),
    ).fetchone()
    if row is None:
        raise JournalConfigError(f"no organisation {organisation!r}; add it with `varde journal organisation add`")
    return UUID(str(row[0]))


def link_team(conn: Connection[Any], team: str, organisation: str) -> UUID:
    """Make a care team part of an organisation: its patients' alarms go to that organisation's record system."""
    organisation_id = _organisation_id(conn, organisation)
    row = conn.execute(
        "UPDATE care_teams SET organisation_id = %s WHERE name = %s OR id::text = %s RETURNING id",
        (organisation_id, team, team),
    ).fetchone()
    if row is None:
        raise JournalConfigError(f"no care team {team!r}")
    return UUID(str(row[0]))


def add_endpoint(
    conn: Connection[Any],
    organisation: str,
    name: str,
    base_url: str,
    *,
    token_url: str | None = None,
    client_id: str | None = None,
    client_secret_ref: str | None = None,
    scope: str | None = None,
    journal_alarms: bool = True,
    max_attempts: int = 30,
    backoff_base_seconds: float = 5.0,
    backoff_max_seconds: float = 900.0,
    timeout_seconds: float = 15.0,
) -> UUID:
    """Add or update a record endpoint (a FHIR base URL, optionally with OAuth2 client credentials)."""
    if client_secret_ref is not None and not re.match(r"^(env|file):.+$", client_secret_ref):
        raise JournalConfigError("the client secret is given as env:NAME or file:/path, never as the secret itself")
    organisation_id = _organisation_id(conn, organisation)
    values = {
        "organisation_id": organisation_id,
        "name": name,
        "base_url": base_url.rstrip("/"),
        "token_url": token_url,
        "client_id": client_id,
        "client_secret_ref": client_secret_ref,
        "scope": scope,
        "journal_alarms": journal_alarms,
        "max_attempts": max_attempts,
        "backoff_base_seconds": backoff_base_seconds,
        "backoff_max_seconds": backoff_max_seconds,
        "timeout_seconds": timeout_seconds,
    }
    updates = sql.SQL(", ").join(
        sql.SQL("{column} = EXCLUDED.{column}").format(column=sql.Identifier(c))
        for c in values
        if c not in ("organisation_id", "name")
    )
    row = conn.execute(
        sql.SQL(
            "INSERT INTO record_endpoints ({}) VALUES ({}) ON CONFLICT (organisation_id, name) DO "
            "UPDATE SET {} RETURNING id"
        ).format(
            sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(sql.Placeholder() * len(values)),
            updates,
        ),
        list(values.values()),
    ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def add_subscription(
    conn: Connection[Any],
    organisation: str,
    endpoint_id: UUID,
    *,
    kinds: Sequence[str] | None = None,
    batch_size: int = 100,
    bundle_type: str = "transaction",
    since: datetime | None = None,
) -> UUID:
    """Share new measurements of the organisation's patients with an endpoint, from `since` (default: now)."""
    if bundle_type not in ("transaction", "collection"):
        raise JournalConfigError("bundle type must be transaction or collection")
    unknown = sorted(set(kinds or ()) - {k.value for k in Kind})
    if unknown:
        raise JournalConfigError(f"unknown measurement kinds: {', '.join(unknown)}")
    organisation_id = _organisation_id(conn, organisation)
    row = conn.execute(
        "INSERT INTO journal_subscriptions (organisation_id, endpoint_id, kinds, batch_size, bundle_type, "
        "hwm_received_at) SELECT %s, e.id, %s, %s, %s, coalesce(%s, now()) FROM record_endpoints e "
        "WHERE e.id = %s AND e.organisation_id = %s RETURNING id",
        (organisation_id, list(kinds) if kinds else None, batch_size, bundle_type, since, endpoint_id, organisation_id),
    ).fetchone()
    if row is None:
        raise JournalConfigError("the endpoint does not belong to the organisation")
    return UUID(str(row[0]))
