"""The journal outbox's documents: what is journaled for a resolved alarm, a step of an episode of follow-up, or a
batch of shared measurements, built into a Bundle once, when its entry is written (`store.journal` stores it), so
every resend carries the same bytes and identifiers.

An entry is written in the same transaction as what it records (the alarm's resolution, the advance of a
subscription's high-water mark), so nothing is journaled that did not happen and nothing that happened is lost.
States: `pending` (due at `next_attempt_at`) → `delivered`, or → `failed` (the dead letter, with the endpoint's
answer) after a refusal or the endpoint's retry limit; a manual retry makes a failed entry pending again.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any
from uuid import UUID

from psycopg import Connection

from clinician_api import consent, fhir
from clinician_api.journal import bundles
from store import episodes, journal, journal_documents
from store.fhir_search import DeviceRow, GatewayRow, IssueRow
from store.journal_documents import PatientCondition

may_share: PatientCondition = partial(consent.not_reserved_sql, "record_sharing")
"""The patient has not reserved against sharing with the record (asked by every read that picks what to send)."""


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
    """Add an entry for the Bundle (its id is the entry's); False when one with the same dedupe key exists (the
    same thing journaled twice)."""
    return journal.insert_entry(
        conn,
        entry_id=UUID(bundle["id"]),
        kind=kind,
        dedupe_key=dedupe_key,
        endpoint_id=endpoint_id,
        patient_ids=patient_ids,
        bundle=bundle,
        bundle_identifier=bundle["identifier"]["value"],
        resource_count=len(bundle["entry"]),
        alarm_id=alarm_id,
        subscription_id=subscription_id,
    )


# --- the builders' rows, by name ---------------------------------------------------------------------------------


def patient_row(row: journal_documents.RecordPatient) -> bundles.PatientRow:
    return bundles.PatientRow(row.id, row.display_name, row.national_id, row.birth_date, row.active)


# --- an alarm's document -----------------------------------------------------------------------------------------


def enqueue_alarm_document(conn: Connection[Any], alarm_id: UUID) -> UUID | None:
    """Journal a resolved alarm to the record system of its patient's organisation, in the caller's transaction.
    None when the organisation has no record endpoint for alarms (nothing to do), or when the patient reserved
    against sharing with the record (the document carries measurements)."""
    target = journal_documents.alarm_target(conn, alarm_id, may_share)
    if target is None:
        return None
    alarm = journal_documents.alarm(conn, alarm_id)
    if alarm is None or alarm.state != "resolved":
        raise ValueError(f"alarm {alarm_id} is not resolved; only a resolved alarm is journaled")
    patient = journal_documents.patient(conn, alarm.patient_id)
    practitioner = journal_documents.practitioner(conn, alarm.resolved_by)
    assert patient is not None and practitioner is not None
    readings = _alarm_readings(conn, alarm)
    devices, gateways = devices_of(conn, readings)
    doc = bundles.AlarmDocument(
        alarm=IssueRow(
            alarm.id,
            alarm.patient_id,
            alarm.rule,
            alarm.severity,
            alarm.state,
            alarm.opened_at,
            alarm.explanation_en,
            alarm.last_reading_id,
            alarm.acknowledged_at,
            alarm.resolved_at,
            alarm.resolution,
            alarm.kind,
        ),
        patient=patient_row(patient),
        practitioner=practitioner,
        organisation=target.organisation,
        readings=readings,
        devices=devices,
        gateways=gateways,
        explanation_nb=alarm.explanation_nb,
    )
    bundle = bundles.alarm_document(doc)
    insert(
        conn,
        kind="alarm_document",
        dedupe_key=f"alarm:{alarm_id}",
        endpoint_id=target.endpoint_id,
        patient_ids=[alarm.patient_id],
        bundle=bundle,
        alarm_id=alarm_id,
    )
    return UUID(bundle["id"])


_WINDOW_LIMIT = 50
_BP = fhir.BP_KINDS


def _alarm_readings(conn: Connection[Any], alarm: journal_documents.ResolvedAlarm) -> list[fhir.ReadingRow]:
    """The alarm's last reading and the readings of its window (newest 50), with the other half of a blood
    pressure measurement so the panel is whole."""
    kind = alarm.kind
    kinds = list(_BP) if kind in _BP else [kind] if kind else []
    rows = journal_documents.alarm_window_readings(
        conn, alarm.patient_id, alarm.last_reading_id, kinds, alarm.window_start, alarm.window_end, _WINDOW_LIMIT
    )
    readings = {r.id: r for r in rows}
    groups = sorted({(r.gateway_id, r.group) for r in readings.values() if r.kind in _BP and r.group})
    if groups:
        partners = journal_documents.group_readings(conn, alarm.patient_id, list(_BP), groups)
        readings.update({r.id: r for r in partners})
    return sorted(readings.values(), key=lambda r: (r.measured_at, str(r.id)))


def devices_of(conn: Connection[Any], readings: Sequence[fhir.ReadingRow]) -> tuple[list[DeviceRow], list[GatewayRow]]:
    """The measuring devices and home gateways the readings came through (as `fhir` builder rows)."""
    pairs = sorted({(r.gateway_id, r.device_address) for r in readings if r.device_address})
    gateway_ids = sorted({r.gateway_id for r in readings if r.device_address})
    if not pairs:
        return [], []
    devices = journal_documents.devices(conn, pairs)
    gateways = journal_documents.gateways(conn, gateway_ids)
    known = {(d.gateway_id, d.address) for d in devices}
    # A reading whose device row is gone still names its device: describe it from the reading itself.
    extra = [
        DeviceRow(r.gateway_id, address, r.device_type or "device", r.device_model)
        for r in {(r.gateway_id, r.device_address): r for r in readings if r.device_address}.values()
        if (address := r.device_address) is not None and (r.gateway_id, address) not in known
    ]
    return devices + extra, gateways


# --- an episode step's document ----------------------------------------------------------------------------------

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
    step = journal_documents.episode_step(conn, event_id)
    if step is None or step.user_id is None:
        return []
    teams = [step.team_id]
    note: list[tuple[str, str]] = []
    if step.handover_id is not None:
        handover = journal_documents.handover_note(conn, step.handover_id)
        assert handover is not None
        teams = [handover.from_team_id, handover.to_team_id]
        note = [(title, getattr(handover, field)) for title, field in _NOTE_SECTIONS]
        if handover.decline_reason:
            note.append(("Begrunnelse for avslag / Reason for declining", handover.decline_reason))
    elif step.kind == "discharged" and step.discharge_summary:
        note = [("Oppsummering / Summary", step.discharge_summary)]
    targets = journal_documents.team_targets(conn, teams, step.patient_id, may_share)
    if not targets:
        return []
    episode = episodes.episode(conn, step.episode_id)
    patient = journal_documents.patient(conn, step.patient_id)
    practitioner = journal_documents.practitioner(conn, step.user_id)
    assert episode is not None and patient is not None and practitioner is not None
    plan = journal_documents.active_plan(conn, step.patient_id)
    entries = []
    for target in targets:
        doc = bundles.EpisodeDocument(
            event_id=event_id,
            kind=step.kind,
            at=step.at,
            endpoint_id=target.endpoint_id,
            episode=episode,
            patient=patient_row(patient),
            practitioner=practitioner,
            organisation=target.organisation,
            note=note,
            plan=plan,
        )
        bundle = bundles.episode_document(doc)
        insert(
            conn,
            kind="episode_document",
            dedupe_key=f"episode-event:{event_id}:{target.endpoint_id}",
            endpoint_id=target.endpoint_id,
            patient_ids=[step.patient_id],
            bundle=bundle,
        )
        entries.append(UUID(bundle["id"]))
    return entries


__all__ = ["devices_of", "enqueue_alarm_document", "enqueue_episode_step", "insert", "patient_row"]
