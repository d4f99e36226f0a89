"""The journal outbox and its configuration: entries (`Entry`) waiting for, delivered to or refused by a record
system, the worker's claims and outcomes, the record systems' pauses, the measurement subscriptions with their
high-water marks and shared readings, and the organisations and record endpoints they belong to (an endpoint found
by organisation number and name, its subscriptions and undelivered entries dropped when it goes away).

Everything runs in the caller's transaction; an entry is written in the same one as what it records. Entries and
subscriptions are claimed with FOR UPDATE SKIP LOCKED, so several workers never hold the same one. What an entry's
Bundle holds is `clinician_api.journal`'s; this module stores it as given. Writing an entry wakes the journal
workers on commit (`store.events.Channel.JOURNAL`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import class_row, scalar_row
from psycopg.types.json import Jsonb

from store.events import Channel, wake
from store.journal_documents import PatientCondition
from store.readings import StoredReading, reading_columns

# --- entries ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """An outbox entry as people see it: ids, state and the record system's last answer, never the Bundle."""

    id: UUID
    kind: str
    state: str
    endpoint_id: UUID
    endpoint_name: str
    patient_ids: list[UUID]
    alarm_id: UUID | None
    subscription_id: UUID | None
    bundle_identifier: str
    resource_count: int
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    location: str | None
    delivered_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EntryPatient:
    id: UUID
    display_name: str
    team_id: UUID


_ENTRY = sql.SQL(
    "SELECT o.id, o.kind, o.state, o.endpoint_id, e.name AS endpoint_name, o.patient_ids, o.alarm_id, "
    "o.subscription_id, o.bundle_identifier, o.resource_count, o.attempts, o.next_attempt_at, o.last_attempt_at, "
    "o.last_status, o.last_error, o.location, o.delivered_at, o.created_at "
    "FROM journal_outbox o JOIN record_endpoints e ON e.id = o.endpoint_id"
)


def insert_entry(
    conn: Connection[Any],
    *,
    entry_id: UUID,
    kind: str,
    dedupe_key: str,
    endpoint_id: UUID,
    patient_ids: Sequence[UUID],
    bundle: dict[str, Any],
    bundle_identifier: str,
    resource_count: int,
    alarm_id: UUID | None = None,
    subscription_id: UUID | None = None,
) -> bool:
    """Add an entry and wake the workers; False when one with the same dedupe key exists (the same thing journaled
    twice)."""
    row = conn.execute(
        "INSERT INTO journal_outbox (id, kind, dedupe_key, endpoint_id, patient_ids, alarm_id, subscription_id, "
        "bundle, bundle_identifier, resource_count) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        (
            entry_id,
            kind,
            dedupe_key,
            endpoint_id,
            sorted(set(patient_ids), key=str),
            alarm_id,
            subscription_id,
            Jsonb(bundle),
            bundle_identifier,
            resource_count,
        ),
    ).fetchone()
    if row is not None:
        wake(conn, Channel.JOURNAL)
    return row is not None


def _visible(visible: sql.Composable | None) -> sql.Composable:
    """Every entry (None), or those naming a patient (`p`) that passes the caller's duty-of-care clause."""
    if visible is None:
        return sql.SQL("true")
    return sql.SQL("EXISTS (SELECT 1 FROM patients p WHERE p.id = ANY(o.patient_ids) AND {})").format(visible)


def entries_page(
    conn: Connection[Any],
    visible: sql.Composable | None,
    visible_params: Sequence[Any],
    states: Sequence[str],
    kinds: Sequence[str] | None,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Entry]:
    """Up to `limit` entries in `states` (and `kinds`), newest first, before the key (created at, id) of the
    previous page's last entry; `visible` as in `_visible`."""
    where: list[sql.Composable] = [_visible(visible), sql.SQL("o.state = ANY(%s)")]
    params: list[Any] = [*visible_params, list(states)]
    if kinds:
        where.append(sql.SQL("o.kind = ANY(%s)"))
        params.append(list(kinds))
    if before is not None:
        where.append(sql.SQL("(o.created_at, o.id) < (%s, %s)"))
        params += list(before)
    query = sql.SQL("{} WHERE {} ORDER BY o.created_at DESC, o.id DESC LIMIT %s").format(
        _ENTRY, sql.SQL(" AND ").join(where)
    )
    with conn.cursor(row_factory=class_row(Entry)) as cur:
        return cur.execute(query, [*params, limit]).fetchall()


def entry(
    conn: Connection[Any], entry_id: UUID, visible: sql.Composable | None, visible_params: Sequence[Any]
) -> Entry | None:
    """One entry, if `visible` lets the caller see it (as in `_visible`)."""
    with conn.cursor(row_factory=class_row(Entry)) as cur:
        return cur.execute(
            sql.SQL("{} WHERE o.id = %s AND {}").format(_ENTRY, _visible(visible)), [entry_id, *visible_params]
        ).fetchone()


def entry_patients(
    conn: Connection[Any], patient_ids: Sequence[UUID], visible: sql.Composable, visible_params: Sequence[Any]
) -> list[EntryPatient]:
    """Name and care team of those of the patients (`p`) who pass the caller's duty-of-care clause `visible`."""
    with conn.cursor(row_factory=class_row(EntryPatient)) as cur:
        return cur.execute(
            sql.SQL("SELECT p.id, p.display_name, p.team_id FROM patients p WHERE p.id = ANY(%s) AND {}").format(
                visible
            ),
            [list(patient_ids), *visible_params],
        ).fetchall()


def retry(conn: Connection[Any], entry_id: UUID) -> Entry | None:
    """A failed (or waiting) entry made due now, with a fresh attempt budget, and the workers woken; None if there
    is no such entry. A delivered entry is left as it is."""
    conn.execute(
        "UPDATE journal_outbox SET state = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now() "
        "WHERE id = %s AND state <> 'delivered'",
        (entry_id,),
    )
    wake(conn, Channel.JOURNAL)
    with conn.cursor(row_factory=class_row(Entry)) as cur:
        return cur.execute(sql.SQL("{} WHERE o.id = %s").format(_ENTRY), (entry_id,)).fetchone()


# --- the worker's side -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """A due entry, locked (FOR UPDATE SKIP LOCKED) by the claiming transaction until its outcome is written."""

    id: UUID
    kind: str
    endpoint_id: UUID
    bundle: dict[str, Any]
    bundle_identifier: str
    attempts: int
    patient_ids: list[UUID]


@dataclass(frozen=True, slots=True)
class EndpointRow:
    """A record system as the worker sends to it (`clinician_api.journal.delivery.Endpoint` is made from it)."""

    id: UUID
    name: str
    base_url: str
    token_url: str | None
    client_id: str | None
    client_secret_ref: str | None
    scope: str | None
    max_attempts: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    timeout_seconds: float


def claim(conn: Connection[Any]) -> Claimed | None:
    """The next due entry that no other worker holds, of an endpoint not paused after a failure; call inside a
    transaction that records the outcome."""
    with conn.cursor(row_factory=class_row(Claimed)) as cur:
        return cur.execute(
            "SELECT o.id, o.kind, o.endpoint_id, o.bundle, o.bundle_identifier, o.attempts, o.patient_ids "
            "FROM journal_outbox o "
            "JOIN record_endpoints e ON e.id = o.endpoint_id WHERE o.state = 'pending' AND o.next_attempt_at <= now() "
            "AND (e.paused_until IS NULL OR e.paused_until <= now()) "
            "ORDER BY o.next_attempt_at, o.created_at LIMIT 1 FOR UPDATE OF o SKIP LOCKED"
        ).fetchone()


def endpoint(conn: Connection[Any], endpoint_id: UUID) -> EndpointRow | None:
    with conn.cursor(row_factory=class_row(EndpointRow)) as cur:
        return cur.execute(
            "SELECT id, name, base_url, token_url, client_id, client_secret_ref, scope, max_attempts, "
            "backoff_base_seconds, backoff_max_seconds, timeout_seconds FROM record_endpoints WHERE id = %s",
            (endpoint_id,),
        ).fetchone()


def pause_endpoint(conn: Connection[Any], endpoint_id: UUID, seconds: float) -> None:
    """The record system is down: its other entries wait too, so a long outage costs one attempt per back-off."""
    conn.execute(
        "UPDATE record_endpoints SET paused_until = now() + make_interval(secs => %s) WHERE id = %s",
        (seconds, endpoint_id),
    )


def resume_endpoint(conn: Connection[Any], endpoint_id: UUID) -> int:
    """The record system answered again: lift its pause and make its waiting entries due now (those another
    worker holds are left to it). Returns the entries made due."""
    conn.execute(
        "UPDATE record_endpoints SET paused_until = NULL WHERE id = %s AND paused_until IS NOT NULL", (endpoint_id,)
    )
    cur = conn.execute(
        "UPDATE journal_outbox SET next_attempt_at = now(), updated_at = now() WHERE id IN (SELECT id FROM "
        "journal_outbox WHERE endpoint_id = %s AND state = 'pending' AND next_attempt_at > now() "
        "FOR UPDATE SKIP LOCKED)",
        (endpoint_id,),
    )
    return cur.rowcount


def mark_delivered(conn: Connection[Any], entry_id: UUID, status: int, location: str | None) -> None:
    conn.execute(
        "UPDATE journal_outbox SET state = 'delivered', attempts = attempts + 1, last_attempt_at = now(), "
        "last_status = %s, last_error = NULL, location = %s, delivered_at = now(), updated_at = now() WHERE id = %s",
        (status, location, entry_id),
    )


def mark_attempt_failed(
    conn: Connection[Any], entry_id: UUID, status: int | None, error: str, retry_in: float | None
) -> None:
    """A failed attempt: due again in `retry_in` seconds, or dead-lettered (`failed`) when it is None. `error` is
    stored as given (the caller redacts it)."""
    conn.execute(
        "UPDATE journal_outbox SET attempts = attempts + 1, last_attempt_at = now(), last_status = %s, "
        "last_error = %s, updated_at = now(), "
        "state = CASE WHEN %s::float8 IS NULL THEN 'failed' ELSE 'pending' END, "
        "next_attempt_at = CASE WHEN %s::float8 IS NULL THEN next_attempt_at "
        "ELSE now() + make_interval(secs => %s::float8) END WHERE id = %s",
        (status, error, retry_in, retry_in, retry_in, entry_id),
    )


def next_due_in(conn: Connection[Any]) -> float | None:
    """Seconds until the earliest pending entry is due (0 when one is due now); None when none is pending."""
    # Not greatest(0, ...) in SQL: GREATEST skips NULLs, so an empty outbox would read as "due now" and an idle
    # worker would spin through passes without ever sleeping.
    with conn.cursor(row_factory=scalar_row) as cur:
        due_in: Decimal | None = cur.execute(
            "SELECT extract(epoch FROM min(greatest(o.next_attempt_at, e.paused_until)) - now()) "
            "FROM journal_outbox o JOIN record_endpoints e ON e.id = o.endpoint_id WHERE o.state = 'pending'"
        ).fetchone()
    return max(0.0, float(due_in)) if due_in is not None else None


@dataclass(frozen=True, slots=True)
class StateCount:
    """The outbox's entries in one state: how many, the age of the oldest, how many have failed at least once."""

    state: str
    entries: int
    oldest_age_seconds: Decimal
    retried: int


def state_counts(conn: Connection[Any]) -> list[StateCount]:
    """One row per state that has entries (one statement over the state index)."""
    with conn.cursor(row_factory=class_row(StateCount)) as cur:
        return cur.execute(
            "SELECT state, count(*) AS entries, "
            "COALESCE(extract(epoch FROM now() - min(created_at)), 0) AS oldest_age_seconds, "
            "count(*) FILTER (WHERE attempts > 0) AS retried FROM journal_outbox GROUP BY state"
        ).fetchall()


# --- measurement subscriptions ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscription:
    id: UUID
    organisation_id: UUID
    endpoint_id: UUID
    kinds: list[str] | None
    batch_size: int
    bundle_type: str
    hwm_received_at: datetime
    overlap_seconds: int


def active_subscription_ids(conn: Connection[Any]) -> list[UUID]:
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute("SELECT id FROM journal_subscriptions WHERE active ORDER BY id").fetchall()


def lock_subscription(conn: Connection[Any], subscription_id: UUID) -> Subscription | None:
    """The subscription, locked until the transaction ends; None when it is inactive, gone, or another worker is
    feeding it (SKIP LOCKED)."""
    with conn.cursor(row_factory=class_row(Subscription)) as cur:
        return cur.execute(
            "SELECT id, organisation_id, endpoint_id, kinds, batch_size, bundle_type, hwm_received_at, "
            "overlap_seconds FROM journal_subscriptions WHERE id = %s AND active FOR UPDATE SKIP LOCKED",
            (subscription_id,),
        ).fetchone()


def unshared_readings(conn: Connection[Any], sub: Subscription, may_share: PatientCondition) -> list[StoredReading]:
    """The next batch (at most `batch_size`, oldest arrival first) of readings of the organisation's patients that
    arrived after the mark, less the overlap, of the subscription's kinds, not yet shared, of patients passing
    `may_share`."""
    with conn.cursor(row_factory=class_row(StoredReading)) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT {} FROM readings r JOIN patients p ON p.id = r.patient_id JOIN care_teams t ON "
                "t.id = p.team_id WHERE t.organisation_id = %(org)s AND r.received_at > %(hwm)s - "
                "make_interval(secs => %(overlap)s) AND (%(kinds)s::text[] IS NULL OR r.kind = "
                "ANY(%(kinds)s::text[])) AND {} AND NOT EXISTS (SELECT 1 FROM journal_shared_readings s "
                "WHERE s.subscription_id = %(sub)s   AND s.reading_id = r.id) ORDER BY r.received_at, r.id "
                "LIMIT %(limit)s"
            ).format(reading_columns("r"), may_share("r.patient_id")),
            {
                "org": sub.organisation_id,
                "hwm": sub.hwm_received_at,
                "overlap": sub.overlap_seconds,
                "kinds": sub.kinds,
                "sub": sub.id,
                "limit": sub.batch_size,
            },
        ).fetchall()


def unshared_group_readings(
    conn: Connection[Any],
    subscription_id: UUID,
    patient_ids: Sequence[UUID],
    kinds: Sequence[str],
    measured_between: tuple[datetime, datetime],
    groups: Sequence[tuple[str, str]],
) -> list[StoredReading]:
    """The readings of `kinds` in the measurement acts `groups` (gateway id, group) of the patients, measured in the
    interval, that the subscription has not shared yet. Bounded by patient and time, so the patient/kind/time
    index serves it and partitions are pruned by time."""
    with conn.cursor(row_factory=class_row(StoredReading)) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT {} FROM readings r WHERE r.patient_id = ANY(%s) AND r.kind = ANY(%s) AND "
                "r.measured_at BETWEEN %s AND %s AND (r.gateway_id, r.grp) IN (SELECT * FROM "
                "unnest(%s::text[], %s::text[])) AND NOT EXISTS (SELECT 1 FROM journal_shared_readings s "
                "WHERE s.subscription_id = %s AND s.reading_id = r.id)"
            ).format(reading_columns("r")),
            (
                list(patient_ids),
                list(kinds),
                measured_between[0],
                measured_between[1],
                [g[0] for g in groups],
                [g[1] for g in groups],
                subscription_id,
            ),
        ).fetchall()


def record_shared(conn: Connection[Any], subscription_id: UUID, shared: Mapping[UUID, datetime]) -> None:
    """The readings (id → received at) went out in an entry of the subscription: remember them and advance its
    mark to the latest arrival among them."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO journal_shared_readings (subscription_id, reading_id, received_at) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            [(subscription_id, reading_id, received_at) for reading_id, received_at in shared.items()],
        )
    conn.execute(
        "UPDATE journal_subscriptions SET hwm_received_at = greatest(hwm_received_at, %s) WHERE id = %s",
        (max(shared.values()), subscription_id),
    )


def prune_shared(conn: Connection[Any], sub: Subscription) -> None:
    """Forget shared readings that have fallen behind the re-read window; they are never looked at again."""
    conn.execute(
        "DELETE FROM journal_shared_readings WHERE subscription_id = %s "
        "AND received_at < %s - make_interval(secs => %s)",
        (sub.id, sub.hwm_received_at, sub.overlap_seconds),
    )


# --- configuration: organisations, their care teams, record endpoints, subscriptions --------------------------------


def upsert_organisation(conn: Connection[Any], name: str, org_number: str) -> UUID:
    """Create or rename an organisation by its organisation number."""
    with conn.cursor(row_factory=scalar_row) as cur:
        found: UUID | None = cur.execute(
            "INSERT INTO organisations (name, org_number) VALUES (%s, %s) "
            "ON CONFLICT (org_number) DO UPDATE SET name = EXCLUDED.name RETURNING id",
            (name, org_number),
        ).fetchone()
    assert found is not None
    return found


def find_organisation(conn: Connection[Any], organisation: str) -> UUID | None:
    """An organisation by its number, id or name (the oldest of that name)."""
    with conn.cursor(row_factory=scalar_row) as cur:
        found: UUID | None = cur.execute(
            "SELECT id FROM organisations WHERE org_number = %s OR id::text = %s OR name = %s "
            "ORDER BY created_at LIMIT 1",
            (organisation, organisation, organisation),
        ).fetchone()
    return found


def link_team(conn: Connection[Any], team: str, organisation_id: UUID) -> UUID | None:
    """Make the care team (by name or id) part of the organisation; None when there is no such team."""
    with conn.cursor(row_factory=scalar_row) as cur:
        found: UUID | None = cur.execute(
            "UPDATE care_teams SET organisation_id = %s WHERE name = %s OR id::text = %s RETURNING id",
            (organisation_id, team, team),
        ).fetchone()
    return found


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """A record endpoint as configured (`upsert_endpoint`); the client secret only as a reference to it."""

    organisation_id: UUID
    name: str
    base_url: str
    token_url: str | None
    client_id: str | None
    client_secret_ref: str | None
    scope: str | None
    journal_alarms: bool
    max_attempts: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    timeout_seconds: float


_ENDPOINT_KEY = ("organisation_id", "name")


def upsert_endpoint(conn: Connection[Any], settings: EndpointSettings) -> UUID:
    """Add a record endpoint, or update the one of that name in the organisation."""
    columns = [f.name for f in fields(EndpointSettings)]
    updates = sql.SQL(", ").join(
        sql.SQL("{column} = EXCLUDED.{column}").format(column=sql.Identifier(c))
        for c in columns
        if c not in _ENDPOINT_KEY
    )
    with conn.cursor(row_factory=scalar_row) as cur:
        found: UUID | None = cur.execute(
            sql.SQL(
                "INSERT INTO record_endpoints ({}) VALUES ({}) ON CONFLICT (organisation_id, name) DO "
                "UPDATE SET {} RETURNING id"
            ).format(
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                updates,
            ),
            [getattr(settings, c) for c in columns],
        ).fetchone()
    assert found is not None
    return found


def add_subscription(
    conn: Connection[Any],
    organisation_id: UUID,
    endpoint_id: UUID,
    *,
    kinds: Sequence[str] | None,
    batch_size: int,
    bundle_type: str,
    since: datetime | None,
) -> UUID | None:
    """Share new measurements of the organisation's patients with one of its endpoints, from `since` (default:
    now); None when the endpoint is not the organisation's."""
    with conn.cursor(row_factory=scalar_row) as cur:
        found: UUID | None = cur.execute(
            "INSERT INTO journal_subscriptions (organisation_id, endpoint_id, kinds, batch_size, bundle_type, "
            "hwm_received_at) SELECT %s, e.id, %s, %s, %s, coalesce(%s, now()) FROM record_endpoints e "
            "WHERE e.id = %s AND e.organisation_id = %s RETURNING id",
            (
                organisation_id,
                list(kinds) if kinds else None,
                batch_size,
                bundle_type,
                since,
                endpoint_id,
                organisation_id,
            ),
        ).fetchone()
    return found


def endpoint_ids(conn: Connection[Any], org_number: str, name: str) -> list[UUID]:
    """The record endpoints of this name in the organisation with this number."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute(
            "SELECT e.id FROM record_endpoints e JOIN organisations o ON o.id = e.organisation_id "
            "WHERE o.org_number = %s AND e.name = %s",
            (org_number, name),
        ).fetchall()


def drop_subscriptions(conn: Connection[Any], endpoint_ids: Sequence[UUID]) -> None:
    """Stop sharing measurements with these endpoints."""
    conn.execute("DELETE FROM journal_subscriptions WHERE endpoint_id = ANY(%s)", (list(endpoint_ids),))


def drop_undelivered(conn: Connection[Any], endpoint_ids: Sequence[UUID]) -> None:
    """Forget the entries not yet delivered to these endpoints (delivered ones stay on the record page)."""
    conn.execute(
        "DELETE FROM journal_outbox WHERE endpoint_id = ANY(%s) AND state <> 'delivered'", (list(endpoint_ids),)
    )


__all__ = [
    "Claimed",
    "EndpointRow",
    "EndpointSettings",
    "Entry",
    "EntryPatient",
    "StateCount",
    "Subscription",
    "active_subscription_ids",
    "add_subscription",
    "claim",
    "drop_subscriptions",
    "drop_undelivered",
    "endpoint",
    "endpoint_ids",
    "entries_page",
    "entry",
    "entry_patients",
    "find_organisation",
    "insert_entry",
    "link_team",
    "lock_subscription",
    "mark_attempt_failed",
    "mark_delivered",
    "next_due_in",
    "pause_endpoint",
    "prune_shared",
    "record_shared",
    "resume_endpoint",
    "retry",
    "state_counts",
    "unshared_group_readings",
    "unshared_readings",
    "upsert_endpoint",
    "upsert_organisation",
]
