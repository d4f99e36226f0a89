"""What a record document is read from, in the transaction that journals it: the record system an alarm's or an
episode step's document goes to (`RecordTarget`; a period report's, `patient_endpoint`), the resolved alarm, the
patient, the clinician who acted, the alarm's readings with the devices and gateways they came through, and an
episode step with its hand-over note, episode and active plan — as typed rows. Building the FHIR documents from them
is `clinician_api.journal`'s.

Whether a patient may share with the record is the caller's rule (`PatientCondition`), so store needs nothing of
the consent code."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import class_row, scalar_row

from store.fhir_search import DeviceRow, GatewayRow
from store.plans import PlanRow
from store.readings import StoredReading, reading_columns
from vitals.vocabulary import Severity

PatientCondition = Callable[[str], sql.Composable]
"""The caller's SQL condition on the patient in the given column (`clinician_api.consent.not_reserved_sql` for one
reservation), true when the patient's data may go where the statement sends it."""


@dataclass(frozen=True, slots=True)
class RecordTarget:
    """The record system (endpoint) of an organisation, and the organisation (the document's custodian)."""

    endpoint_id: UUID
    organisation_id: UUID
    organisation_name: str
    org_number: str

    @property
    def organisation(self) -> Organisation:
        return Organisation(self.organisation_id, self.organisation_name, self.org_number)


class Organisation(NamedTuple):
    """An organisation as a record document names it (its custodian)."""

    id: UUID
    name: str
    org_number: str


@dataclass(frozen=True, slots=True)
class ResolvedAlarm:
    id: UUID
    patient_id: UUID
    rule: str
    severity: Severity
    state: str
    opened_at: datetime
    explanation_en: str
    last_reading_id: UUID | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    kind: str | None
    resolved_by: UUID | None
    window_start: datetime | None
    window_end: datetime | None
    explanation_nb: str


@dataclass(frozen=True, slots=True)
class RecordPatient:
    id: UUID
    display_name: str
    national_id: str | None
    birth_date: date | None
    active: bool


class Practitioner(NamedTuple):
    id: UUID
    username: str
    display_name: str
    hpr_number: str | None
    role: str


@dataclass(frozen=True, slots=True)
class EpisodeStep:
    """One event of an episode of follow-up, with the episode's patient and discharge summary."""

    id: int
    kind: str
    at: datetime
    episode_id: UUID
    user_id: UUID | None
    team_id: UUID
    handover_id: UUID | None
    patient_id: UUID
    discharge_summary: str | None


@dataclass(frozen=True, slots=True)
class HandoverNote:
    from_team_id: UUID
    to_team_id: UUID
    situation: str
    plan: str
    open_alarms: str
    watch: str
    decline_reason: str | None


# --- where a document goes -------------------------------------------------------------------------------------------


def alarm_target(conn: Connection[Any], alarm_id: UUID, may_share: PatientCondition) -> RecordTarget | None:
    """The record system for resolved alarms of the alarm's patient's organisation; None when it has none, or when
    the patient fails `may_share`."""
    with conn.cursor(row_factory=class_row(RecordTarget)) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT r.id AS endpoint_id, o.id AS organisation_id, o.name AS organisation_name, o.org_number "
                "FROM alarms a JOIN patients p ON p.id = a.patient_id JOIN care_teams t ON t.id = p.team_id "
                "JOIN organisations o ON o.id = t.organisation_id JOIN record_endpoints r ON r.organisation_id = o.id "
                "AND r.journal_alarms WHERE a.id = %s AND {}"
            ).format(may_share("a.patient_id")),
            (alarm_id,),
        ).fetchone()


def patient_endpoint(conn: Connection[Any], patient_id: UUID, may_share: PatientCondition) -> UUID | None:
    """The record system for documents of the patient's team's organisation (its period reports); None when it has
    none, or when the patient fails `may_share`."""
    with conn.cursor(row_factory=scalar_row) as cur:
        endpoint_id: UUID | None = cur.execute(
            sql.SQL(
                "SELECT r.id FROM patients p JOIN care_teams t ON t.id = p.team_id JOIN record_endpoints r "
                "ON r.organisation_id = t.organisation_id AND r.journal_alarms WHERE p.id = %s AND {}"
            ).format(may_share("p.id")),
            (patient_id,),
        ).fetchone()
        return endpoint_id


def team_targets(
    conn: Connection[Any], team_ids: Sequence[UUID], patient_id: UUID, may_share: PatientCondition
) -> list[RecordTarget]:
    """The record systems of the teams' organisations, one each, by endpoint id; none when the patient fails
    `may_share`."""
    with conn.cursor(row_factory=class_row(RecordTarget)) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT DISTINCT r.id AS endpoint_id, o.id AS organisation_id, o.name AS organisation_name, "
                "o.org_number FROM care_teams t JOIN organisations o ON o.id = t.organisation_id "
                "JOIN record_endpoints r ON r.organisation_id = o.id AND r.journal_alarms "
                "WHERE t.id = ANY(%s::uuid[]) AND {} ORDER BY r.id"
            ).format(may_share("%s::uuid")),
            (list(team_ids), patient_id),
        ).fetchall()


# --- an alarm's document ---------------------------------------------------------------------------------------------


def alarm(conn: Connection[Any], alarm_id: UUID) -> ResolvedAlarm | None:
    with conn.cursor(row_factory=class_row(ResolvedAlarm)) as cur:
        return cur.execute(
            "SELECT id, patient_id, rule, severity, state, opened_at, explanation_en, last_reading_id, "
            "acknowledged_at, resolved_at, resolution, kind, resolved_by, window_start, window_end, explanation_nb "
            "FROM alarms WHERE id = %s",
            (alarm_id,),
        ).fetchone()


def alarm_window_readings(
    conn: Connection[Any],
    patient_id: UUID,
    last_reading_id: UUID | None,
    kinds: Sequence[str],
    window_start: datetime | None,
    window_end: datetime | None,
    limit: int,
) -> list[StoredReading]:
    """The patient's reading `last_reading_id` first, then their readings of `kinds` measured in the window,
    newest first; at most `limit`."""
    with conn.cursor(row_factory=class_row(StoredReading)) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT {} FROM readings WHERE patient_id = %(p)s AND (id = %(last)s OR (kind = "
                "ANY(%(kinds)s) AND measured_at BETWEEN %(ws)s AND %(we)s)) ORDER BY (id = %(last)s) DESC, "
                "measured_at DESC LIMIT %(limit)s"
            ).format(reading_columns("readings")),
            {
                "p": patient_id,
                "last": last_reading_id,
                "kinds": list(kinds),
                "ws": window_start,
                "we": window_end,
                "limit": limit,
            },
        ).fetchall()


def group_readings(
    conn: Connection[Any], patient_id: UUID, kinds: Sequence[str], groups: Sequence[tuple[str, str]]
) -> list[StoredReading]:
    """The patient's readings of `kinds` in the measurement acts `groups` (gateway id, group)."""
    with conn.cursor(row_factory=class_row(StoredReading)) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT {} FROM readings WHERE patient_id = %s AND kind = ANY(%s) AND (gateway_id, grp) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[]))"
            ).format(reading_columns("readings")),
            (patient_id, list(kinds), [g[0] for g in groups], [g[1] for g in groups]),
        ).fetchall()


def devices(conn: Connection[Any], pairs: Sequence[tuple[str, str]]) -> list[DeviceRow]:
    """The registered devices among (gateway id, address) pairs, in that order."""
    with conn.cursor(row_factory=class_row(DeviceRow)) as cur:
        return cur.execute(
            "SELECT gateway_id, address, type, model FROM devices WHERE (gateway_id, address) IN "
            "(SELECT * FROM unnest(%s::text[], %s::text[])) ORDER BY gateway_id, address",
            ([p[0] for p in pairs], [p[1] for p in pairs]),
        ).fetchall()


def gateways(conn: Connection[Any], gateway_ids: Sequence[str]) -> list[GatewayRow]:
    with conn.cursor(row_factory=class_row(GatewayRow)) as cur:
        return cur.execute(
            "SELECT id, patient_id, enabled, agent_version, state FROM gateways WHERE id = ANY(%s) ORDER BY id",
            (list(gateway_ids),),
        ).fetchall()


def patient(conn: Connection[Any], patient_id: UUID) -> RecordPatient | None:
    with conn.cursor(row_factory=class_row(RecordPatient)) as cur:
        return cur.execute(
            "SELECT p.id, p.display_name, p.national_id, p.birth_date, p.active FROM patients p WHERE p.id = %s",
            (patient_id,),
        ).fetchone()


def patients(conn: Connection[Any], patient_ids: Sequence[UUID]) -> list[RecordPatient]:
    with conn.cursor(row_factory=class_row(RecordPatient)) as cur:
        return cur.execute(
            "SELECT p.id, p.display_name, p.national_id, p.birth_date, p.active FROM patients p WHERE p.id = ANY(%s)",
            (list(patient_ids),),
        ).fetchall()


def practitioner(conn: Connection[Any], user_id: UUID | None) -> Practitioner | None:
    with conn.cursor(row_factory=class_row(Practitioner)) as cur:
        return cur.execute(
            "SELECT id, username, display_name, hpr_number, role FROM users WHERE id = %s", (user_id,)
        ).fetchone()


# --- an episode step's document --------------------------------------------------------------------------------------


def episode_step(conn: Connection[Any], event_id: int) -> EpisodeStep | None:
    with conn.cursor(row_factory=class_row(EpisodeStep)) as cur:
        return cur.execute(
            "SELECT v.id, v.kind, v.at, v.episode_id, v.user_id, v.team_id, v.handover_id, e.patient_id, "
            "e.discharge_summary FROM care_episode_events v JOIN care_episodes e ON e.id = v.episode_id "
            "WHERE v.id = %s",
            (event_id,),
        ).fetchone()


def handover_note(conn: Connection[Any], handover_id: UUID) -> HandoverNote | None:
    with conn.cursor(row_factory=class_row(HandoverNote)) as cur:
        return cur.execute(
            "SELECT from_team_id, to_team_id, situation, plan, open_alarms, watch, decline_reason "
            "FROM care_handovers WHERE id = %s",
            (handover_id,),
        ).fetchone()


def active_plan(conn: Connection[Any], patient_id: UUID) -> PlanRow | None:
    """The patient's active self-management plan (its latest version), if any."""
    with conn.cursor(row_factory=class_row(PlanRow)) as cur:
        return cur.execute(
            "SELECT id, patient_id, version, status, created_at, created_by, activated_at, retired_at, body "
            "FROM self_management_plans WHERE patient_id = %s AND status = 'active' ORDER BY version DESC LIMIT 1",
            (patient_id,),
        ).fetchone()


__all__ = [
    "DeviceRow",
    "EpisodeStep",
    "GatewayRow",
    "HandoverNote",
    "Organisation",
    "PatientCondition",
    "Practitioner",
    "RecordPatient",
    "RecordTarget",
    "ResolvedAlarm",
    "active_plan",
    "alarm",
    "alarm_target",
    "alarm_window_readings",
    "devices",
    "episode_step",
    "gateways",
    "group_readings",
    "handover_note",
    "patient",
    "patient_endpoint",
    "patients",
    "practitioner",
]
