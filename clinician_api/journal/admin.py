"""Configuration of the record integration, used by `varde journal …` and the tests: organisations (with their
organisation number), which care teams belong to them, their record endpoints and measurement subscriptions.
Checks what an operator typed and says what is wrong; `store.journal` writes it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

from store import journal
from vitals import Kind


class JournalConfigError(ValueError):
    pass


_ORG_NUMBER = re.compile(r"^[0-9]{9}$")


def add_organisation(conn: Connection[Any], name: str, org_number: str) -> UUID:
    """Create or rename an organisation by its organisation number (idempotent)."""
    org_number = org_number.replace(" ", "")
    if not _ORG_NUMBER.match(org_number):
        raise JournalConfigError(f"organisation number must be 9 digits, got {org_number!r}")
    return journal.upsert_organisation(conn, name, org_number)


def _organisation_id(conn: Connection[Any], organisation: str) -> UUID:
    found = journal.find_organisation(conn, organisation)
    if found is None:
        raise JournalConfigError(f"no organisation {organisation!r}; add it with `varde journal organisation add`")
    return found


def link_team(conn: Connection[Any], team: str, organisation: str) -> UUID:
    """Make a care team part of an organisation: its patients' alarms go to that organisation's record system."""
    organisation_id = _organisation_id(conn, organisation)
    team_id = journal.link_team(conn, team, organisation_id)
    if team_id is None:
        raise JournalConfigError(f"no care team {team!r}")
    return team_id


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
    return journal.upsert_endpoint(
        conn,
        journal.EndpointSettings(
            organisation_id=organisation_id,
            name=name,
            base_url=base_url.rstrip("/"),
            token_url=token_url,
            client_id=client_id,
            client_secret_ref=client_secret_ref,
            scope=scope,
            journal_alarms=journal_alarms,
            max_attempts=max_attempts,
            backoff_base_seconds=backoff_base_seconds,
            backoff_max_seconds=backoff_max_seconds,
            timeout_seconds=timeout_seconds,
        ),
    )


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
    subscription_id = journal.add_subscription(
        conn, organisation_id, endpoint_id, kinds=kinds, batch_size=batch_size, bundle_type=bundle_type, since=since
    )
    if subscription_id is None:
        raise JournalConfigError("the endpoint does not belong to the organisation")
    return subscription_id
