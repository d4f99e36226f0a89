"""The journal outbox: Bundles waiting for, delivered to or refused by a record system.

An entry is written in the same transaction as what it records (the alarm's resolution, the advance of a
subscription's high-water mark), so nothing is journaled that did not happen and nothing that happened is lost.
Its Bundle is built once, when it is written: every resend carries the same bytes and identifiers.
States: `pending` (due at `next_attempt_at`) → `delivered`, or → `failed` (the dead letter, with the endpoint's
answer) after a refusal or the endpoint's retry limit; a manual retry makes a failed entry pending again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, sql
from psycopg.types.json import Jsonb

from clinician_api import consent, episodes, fhir, fhir_query
from clinician_api.journal import bundles, identity
from store.events import Channel, wake

ENTRY_COLUMNS = (
    "o.id, o.kind, o.state, o.endpoint_id, e.name, o.patient_ids, o.alarm_id, o.subscription_id, "
    "o.bundle_identifier, o.resource_count, o.attempts, o.next_attempt_at, o.last_attempt_at, o.last_status, "
    "o.last_error, o.location, o.delivered_at, o.created_at"
)


@dataclass(frozen=True, slots=True)
class Entry:
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


def notify(conn: Connection[Any]) -> None:
    """Wake the journal workers when the transaction commits."""
    wake(conn, Channel.JOURNAL)


def insert(
    conn: Connection[Any],
    *,
    kind: str,
    dedupe_key: str,
    endpoint_id: UUID,
    patient_ids: Sequence[UUID],
    bundle: dict[str, Any],
    alarm_id: UUID | None = None,
    subscription_id: UUID | None = None,
) -> bool:
    """Add an entry; False when one with the same dedupe key exists (the same thing journaled twice)."""
    row = conn.execute(
        "INSERT INTO journal_outbox (id, kind, dedupe_key, endpoint_id, patient_ids, alarm_id, subscription_id, "
        "bundle, bundle_identifier, resource_count) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        (
            UUID(bundle["id"]),
            kind,
            dedupe_key,
            endpoint_id,
            sorted(set(patient_ids), key=str),
            alarm_id,
            subscription_id,
            Jsonb(bundle),
            bundle["identifier"]["value"],
            len(bundle["entry"]),
        ),
    ).fetchone()
    if row is not None:
        notify(conn)
    return row is not None


def enqueue_alarm_document(conn: Connection[Any], alarm_id: UUID) -> UUID | None:
    """Journal a resolved alarm to the record system of its patient's organisation, in the caller's transaction.
    None when the organisation has no record endpoint for alarms (nothing to do), or when the patient reserved
    against sharing with the record (the document carries measurements)."""
    target = conn.execute(
        sql.SQL(
            "SELECT r.id, o.id, o.name, o.org_number FROM alarms a JOIN patients p ON p.id = "
            "a.patient_id JOIN care_teams t ON t.id = p.team_id JOIN organisations o ON o.id = "
            "t.organisation_id JOIN record_endpoints r ON r.organisation_id = o.id AND "
            "r.journal_alarms WHERE a.id = %s AND {}"
        ).format(consent.not_reserved_sql("record_sharing", "a.patient_id")),
        (alarm_id,),
    ).fetchone()
    if target is None:
        return None
    endpoint_id, organisation = target[0], tuple(target[1:])
    alarm = conn.execute(
        "SELECT id, patient_id, rule, severity, state, opened_at, explanation_en, last_reading_id, acknowledged_at, "
        "resolved_at, resolution, kind, resolved_by, window_start, window_end, explanation_nb FROM alarms "
        "WHERE id = %s",
        (alarm_id,),
    ).fetchone()
    if alarm is None or alarm[4] != "resolved":
        raise ValueError(f"alarm {alarm_id} is not resolved; only a resolved alarm is journaled")
    patient = conn.execute(
        sql.SQL("SELECT {} FROM patients p WHERE p.id = %s").format(sql.SQL(bundles.PatientRow.columns())), (alarm[1],)
    ).fetchone()
    practitioner = conn.execute(
        "SELECT id, username, display_name, hpr_number, role FROM users WHERE id = %s", (alarm[12],)
    ).fetchone()
    assert patient is not None and practitioner is not None
    readings = _alarm_readings(conn, alarm[1], alarm[7], alarm[11], alarm[13], alarm[14])
    devices, gateways = devices_of(conn, readings)
    doc = bundles.AlarmDocument(
        alarm=tuple(alarm[:12]),
        patient=bundles.PatientRow(*patient),
        practitioner=tuple(practitioner),
        organisation=organisation,
        readings=readings,
        devices=devices,
        gateways=gateways,
        explanation_nb=alarm[15],
    )
    bundle = bundles.alarm_document(doc)
    insert(
        conn,
        kind="alarm_document",
        dedupe_key=f"alarm:{alarm_id}",
        endpoint_id=endpoint_id,
        patient_ids=[alarm[1]],
        bundle=bundle,
        alarm_id=alarm_id,
    )
    return UUID(bundle["id"])


_WINDOW_LIMIT = 50
_BP = fhir.BP_KINDS


def _alarm_readings(
    conn: Connection[Any],
    patient_id: UUID,
    last_reading_id: UUID | None,
    kind: str | None,
    window_start: datetime | None,
    window_end: datetime | None,
) -> list[fhir.ReadingRow]:
    """The alarm's last reading and the readings of its window (newest 50), with the other half of a blood
    pressure measurement so the panel is whole."""
    kinds = list(_BP) if kind in _BP else [kind] if kind else []
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM readings WHERE patient_id = %(p)s AND (id = %(last)s OR (kind = "
            "ANY(%(kinds)s) AND measured_at BETWEEN %(ws)s AND %(we)s)) ORDER BY (id = %(last)s) DESC, "
            "measured_at DESC LIMIT %(limit)s"
        ).format(sql.SQL(fhir.ReadingRow.columns())),
        {
            "p": patient_id,
            "last": last_reading_id,
            "kinds": kinds,
            "ws": window_start,
            "we": window_end,
            "limit": _WINDOW_LIMIT,
        },
    ).fetchall()
    readings = {r[0]: fhir.ReadingRow(*r) for r in rows}
    groups = sorted({(r.gateway_id, r.group) for r in readings.values() if r.kind in _BP and r.group})
    if groups:
        partners = conn.execute(
            sql.SQL(
                "SELECT {} FROM readings WHERE patient_id = %s AND kind = ANY(%s) AND (gateway_id, grp) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[]))"
            ).format(sql.SQL(fhir.ReadingRow.columns())),
            (patient_id, list(_BP), [g[0] for g in groups], [g[1] for g in groups]),
        ).fetchall()
        readings.update({r[0]: fhir.ReadingRow(*r) for r in partners})
    return sorted(readings.values(), key=lambda r: (r.measured_at, str(r.id)))


def devices_of(
    conn: Connection[Any], readings: Sequence[fhir.ReadingRow]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The measuring devices and home gateways the readings came through (as `fhir` builder rows)."""
    pairs = sorted({(r.gateway_id, r.device_address) for r in readings if r.device_address})
    gateway_ids = sorted({r.gateway_id for r in readings if r.device_address})
    if not pairs:
        return [], []
    devices = conn.execute(
        "SELECT gateway_id, address, type, model FROM devices WHERE (gateway_id, address) IN "
        "(SELECT * FROM unnest(%s::text[], %s::text[])) ORDER BY gateway_id, address",
        ([p[0] for p in pairs], [p[1] for p in pairs]),
    ).fetchall()
    gateways = conn.execute(
        "SELECT id, patient_id, enabled, agent_version, state FROM gateways WHERE id = ANY(%s) ORDER BY id",
        (gateway_ids,),
    ).fetchall()
    known = {(d[0], d[1]) for d in devices}
    # A reading whose device row is gone still names its device: describe it from the reading itself.
    extra = [
        (r.gateway_id, r.device_address, r.device_type or "device", r.device_model)
        for r in {(r.gateway_id, r.device_address): r for r in readings if r.device_address}.values()
        if (r.gateway_id, r.device_address) not in known
    ]
    return [tuple(d) for d in devices] + extra, [tuple(g) for g in gateways]


# --- the worker's side --------------------------------------------------------------------------------------------


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


def claim(conn: Connection[Any]) -> Claimed | None:
    """The next due entry that no other worker holds, of an endpoint not paused after a failure; call inside a
    transaction that records the outcome."""
    row = conn.execute(
        "SELECT o.id, o.kind, o.endpoint_id, o.bundle, o.bundle_identifier, o.attempts, o.patient_ids "
        "FROM journal_outbox o "
        "JOIN record_endpoints e ON e.id = o.endpoint_id WHERE o.state = 'pending' AND o.next_attempt_at <= now() "
        "AND (e.paused_until IS NULL OR e.paused_until <= now()) "
        "ORDER BY o.next_attempt_at, o.created_at LIMIT 1 FOR UPDATE OF o SKIP LOCKED"
    ).fetchone()
    if row is None:
        return None
    bundle = row[3] if isinstance(row[3], dict) else json.loads(row[3])
    return Claimed(row[0], row[1], row[2], bundle, row[4], row[5], list(row[6] or []))


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
    """A failed attempt: due again in `retry_in` seconds, or dead-lettered (`failed`) when it is None."""
    conn.execute(
        "UPDATE journal_outbox SET attempts = attempts + 1, last_attempt_at = now(), last_status = %s, "
        "last_error = %s, updated_at = now(), "
        "state = CASE WHEN %s::float8 IS NULL THEN 'failed' ELSE 'pending' END, "
        "next_attempt_at = CASE WHEN %s::float8 IS NULL THEN next_attempt_at "
        "ELSE now() + make_interval(secs => %s::float8) END WHERE id = %s",
        (status, identity.redact(error)[:2000], retry_in, retry_in, retry_in, entry_id),
    )


def next_due_in(conn: Connection[Any]) -> float | None:
    """Seconds until the earliest pending entry is due (0 when one is due now); None when none is pending."""
    # Not greatest(0, ...) in SQL: GREATEST skips NULLs, so an empty outbox would read as "due now" and an idle
    # worker would spin through passes without ever sleeping.
    row = conn.execute(
        "SELECT extract(epoch FROM min(greatest(o.next_attempt_at, e.paused_until)) - now()) "
        "FROM journal_outbox o JOIN record_endpoints e ON e.id = o.endpoint_id WHERE o.state = 'pending'"
    ).fetchone()
    return max(0.0, float(row[0])) if row and row[0] is not None else None


# --- the API's side -----------------------------------------------------------------------------------------------


def entry_from_row(row: Sequence[Any]) -> Entry:
    return Entry(*row)


def retry(conn: Connection[Any], entry_id: UUID) -> Entry | None:
    """A failed (or waiting) entry made due now, with a fresh attempt budget; None if there is no such entry.
    A delivered entry is left as it is."""
    conn.execute(
        "UPDATE journal_outbox SET state = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now() "
        "WHERE id = %s AND state <> 'delivered'",
        (entry_id,),
    )
    notify(conn)
    row = conn.execute(
        sql.SQL(
            "SELECT {} FROM journal_outbox o JOIN record_endpoints e ON e.id = o.endpoint_id WHERE o.id = %s"
        ).format(sql.SQL(ENTRY_COLUMNS)),
        (entry_id,),
    ).fetchone()
    return entry_from_row(row) if row else None


_NOTE_SECTIONS = (
    ("Situasjon / Situation", "situation"),
    ("Plan", "plan"),
    ("Åpne alarmer / Open alarms", "open_alarms"),
    ("Følg med på / What to watch", "watch"),
)


def enqueue_episode_step(conn: Connection[Any], event_id: int) -> list[UUID]:
    """Journal one step of an episode (enrolment, change, hand-over, discharge) to the record system of every
    organisation it concerns (for a hand-over: the sending and the receiving team's), in the caller's transaction.
    Nothing for organisations without a record endpoint, or when the patient reserved against record sharing."""
    event = conn.execute(
        "SELECT v.id, v.kind, v.at, v.episode_id, v.user_id, v.team_id, v.handover_id, e.patient_id, "
        "e.discharge_summary FROM care_episode_events v JOIN care_episodes e ON e.id = v.episode_id WHERE v.id = %s",
        (event_id,),
    ).fetchone()
    if event is None or event[4] is None:
        return []
    kind, at, episode_id, user_id, team_id, handover_id, patient_id, summary = event[1:]
    teams = [team_id]
    note: list[tuple[str, str]] = []
    if handover_id is not None:
        handover = conn.execute(
            "SELECT from_team_id, to_team_id, situation, plan, open_alarms, watch, decline_reason "
            "FROM care_handovers WHERE id = %s",
            (handover_id,),
        ).fetchone()
        assert handover is not None
        teams = [handover[0], handover[1]]
        note = [(title, handover[2 + i]) for i, (title, _) in enumerate(_NOTE_SECTIONS)]
        if handover[6]:
            note.append(("Begrunnelse for avslag / Reason for declining", handover[6]))
    elif kind == "discharged" and summary:
        note = [("Oppsummering / Summary", summary)]
    targets = conn.execute(
        sql.SQL(
            "SELECT DISTINCT r.id, o.id, o.name, o.org_number FROM care_teams t JOIN organisations o "
            "ON o.id = t.organisation_id JOIN record_endpoints r ON r.organisation_id = o.id AND "
            "r.journal_alarms WHERE t.id = ANY(%s::uuid[]) AND {} ORDER BY r.id"
        ).format(consent.not_reserved_sql("record_sharing", "%s::uuid")),
        (teams, patient_id),
    ).fetchall()
    if not targets:
        return []
    episode_row = conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE e.id = %s").format(
            sql.SQL(fhir.EPISODE_COLUMNS), sql.SQL(episodes.EPISODE_FROM)
        ),
        (episode_id,),
    ).fetchone()
    patient = conn.execute(
        sql.SQL("SELECT {} FROM patients p WHERE p.id = %s").format(sql.SQL(bundles.PatientRow.columns())),
        (patient_id,),
    ).fetchone()
    practitioner = conn.execute(
        "SELECT id, username, display_name, hpr_number, role FROM users WHERE id = %s", (user_id,)
    ).fetchone()
    assert episode_row is not None and patient is not None and practitioner is not None
    plan = conn.execute(
        sql.SQL(
            "SELECT {} FROM self_management_plans WHERE patient_id = %s AND status = 'active' ORDER BY "
            "version DESC LIMIT 1"
        ).format(sql.SQL(fhir_query.PLAN_COLUMNS)),
        (patient_id,),
    ).fetchone()
    entries = []
    for endpoint_id, *organisation in targets:
        doc = bundles.EpisodeDocument(
            event_id=event_id,
            kind=kind,
            at=at,
            endpoint_id=endpoint_id,
            episode=tuple(episode_row),
            patient=bundles.PatientRow(*patient),
            practitioner=tuple(practitioner),
            organisation=tuple(organisation),
            note=note,
            plan=tuple(plan) if plan is not None else None,
        )
        bundle = bundles.episode_document(doc)
        insert(
            conn,
            kind="episode_document",
            dedupe_key=f"episode-event:{event_id}:{endpoint_id}",
            endpoint_id=endpoint_id,
            patient_ids=[patient_id],
            bundle=bundle,
        )
        entries.append(UUID(bundle["id"]))
    return entries
