"""The alarm lifecycle, the one module that writes alarms: one unresolved alarm per patient and rule, and every
change of it a function here that writes, in the caller's transaction, the alarm row, its alarm event and the
change notice (`store.events`, delivered on commit) — and, when a nurse resolves an alarm, the record document
through the journal hook the caller passes (`Journal`).

Opened and updated by the rules (`raise_alarms`, `raise_missed_questionnaires`); marked back in range by a later
reading or answer; acknowledged, assigned, noted, resolved and escalated by nurses; escalated by the timed job
(`escalate_overdue`). Who acted on which patient is audited by the caller in the same transaction: the duty-of-care
gate (`clinician_api.deps.PatientScope`) for one alarm, the group routes for many; the rules' and timed jobs'
changes access no record and are not audited.

Concurrent writers meet on the partial unique index `alarms_one_unresolved`, so two can never open two alarms for
the same rule; a nurse's change locks its rows first (`lock`), so two nurses cannot both resolve one alarm.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import class_row

from store.events import Source, notify_changes
from vitals.vocabulary import SEVERITY_RANK

Journal = Callable[[Connection[Any], UUID], object]
"""Queues a resolved alarm's document for its patient's record system, in the transaction that resolved it."""


@dataclass(frozen=True, slots=True)
class AlarmUpsert:
    """One alarm candidate of the rules, ready for the database (ids, not array rows)."""

    patient_id: UUID
    rule: str
    kind: str | None
    severity: str
    value: float | None
    limit: float | None
    count: int
    reading_id: UUID | None
    measured_at: datetime | None
    window_start: datetime | None
    window_end: datetime | None
    explanation_nb: str
    explanation_en: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Raised:
    """An alarm a rule opened (`opened`) or updated, with its severity after the change."""

    id: UUID
    rule: str
    severity: str
    opened: bool


@dataclass(frozen=True, slots=True)
class Locked:
    """An alarm row locked for a nurse's change, until the transaction ends."""

    id: UUID
    patient_id: UUID
    severity: str
    state: str
    escalated_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventRow:
    """One entry of an alarm's history, with the name of who acted (none for the rules and timed jobs)."""

    id: int
    at: datetime
    event: str
    actor_id: UUID | None
    actor_name: str | None
    data: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class NewEvent:
    alarm_id: UUID
    event: str
    data: dict[str, Any] = field(default_factory=dict)
    actor_id: UUID | None = None


def record_events(conn: Connection[Any], events: Sequence[NewEvent]) -> None:
    """Append to the alarms' histories (the other writers of this module call it; a schedule change or a
    receipt sent to the gateway is an event of the alarm that caused it)."""
    if not events:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO alarm_events (alarm_id, actor_id, event, data) VALUES (%s, %s, %s, %s)",
            [(e.alarm_id, e.actor_id, e.event, json.dumps(e.data, default=str)) for e in events],
        )


def record_event_if_present(conn: Connection[Any], event: NewEvent) -> bool:
    """One event on an alarm that may have been deleted meanwhile (retention): nothing is written then."""
    cur = conn.execute(
        "INSERT INTO alarm_events (alarm_id, actor_id, event, data) SELECT id, %s, %s, %s FROM alarms WHERE id = %s",
        (event.actor_id, event.event, json.dumps(event.data, default=str), event.alarm_id),
    )
    return cur.rowcount == 1


def events_of(conn: Connection[Any], alarm_id: UUID) -> list[EventRow]:
    """An alarm's history, oldest first."""
    with conn.cursor(row_factory=class_row(EventRow)) as cur:
        return cur.execute(
            "SELECT e.id, e.at, e.event, e.actor_id, u.display_name AS actor_name, e.data FROM alarm_events e "
            "LEFT JOIN users u ON u.id = e.actor_id WHERE e.alarm_id = %s ORDER BY e.at, e.id",
            (alarm_id,),
        ).fetchall()


# --- nurses' changes -------------------------------------------------------------------------------------------------


def lock(
    conn: Connection[Any],
    alarm_ids: Iterable[UUID],
    visible: sql.Composable = sql.SQL("true"),
    params: Sequence[Any] = (),
) -> list[Locked]:
    """The alarms among `alarm_ids` whose patient (`p`) passes `visible`, locked in id order (a fixed lock order:
    no deadlocks between two nurses' group actions). Fewer rows than ids means some are not the caller's."""
    wanted = sorted(set(alarm_ids), key=str)
    with conn.cursor(row_factory=class_row(Locked)) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT a.id, a.patient_id, a.severity, a.state, a.escalated_at FROM alarms a "
                "JOIN patients p ON p.id = a.patient_id WHERE a.id = ANY(%s::uuid[]) AND {} "
                "ORDER BY a.id FOR UPDATE OF a"
            ).format(visible),
            [wanted, *params],
        ).fetchall()


def _changed(conn: Connection[Any], ids: Sequence[UUID], event: str, actor_id: UUID, data: dict[str, Any]) -> None:
    record_events(conn, [NewEvent(a, event, data, actor_id) for a in ids])
    notify_changes(conn, "api", ids)


def acknowledge(
    conn: Connection[Any], alarm_ids: Sequence[UUID], actor_id: UUID, data: dict[str, Any] | None = None
) -> None:
    """Seen and being handled: open → acknowledged."""
    if not alarm_ids:
        return
    conn.execute(
        "UPDATE alarms SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = %s, "
        "updated_at = now() WHERE id = ANY(%s::uuid[])",
        (actor_id, list(alarm_ids)),
    )
    _changed(conn, alarm_ids, "acknowledged", actor_id, data or {})


def assign(conn: Connection[Any], alarm_id: UUID, actor_id: UUID, assignee: UUID | None) -> None:
    """To a user of the patient's care team, or to nobody (the caller checks the assignee's duty of care)."""
    conn.execute("UPDATE alarms SET assignee_id = %s, updated_at = now() WHERE id = %s", (assignee, alarm_id))
    _changed(conn, [alarm_id], "assigned", actor_id, {"assignee_id": str(assignee) if assignee else None})


def add_note(
    conn: Connection[Any], alarm_ids: Sequence[UUID], actor_id: UUID, text: str, data: dict[str, Any] | None = None
) -> None:
    """A note in the alarms' histories (also on resolved alarms)."""
    if not alarm_ids:
        return
    conn.execute("UPDATE alarms SET updated_at = now() WHERE id = ANY(%s::uuid[])", (list(alarm_ids),))
    _changed(conn, alarm_ids, "note", actor_id, {"text": text, **(data or {})})


def resolve(
    conn: Connection[Any],
    alarm_ids: Sequence[UUID],
    actor_id: UUID,
    resolution: str,
    journal: Journal,
    data: dict[str, Any] | None = None,
) -> None:
    """Closed with what was done; each alarm's document is queued for its patient's record system (`journal`).
    A later breach of the same rule opens a new alarm."""
    if not alarm_ids:
        return
    conn.execute(
        "UPDATE alarms SET state = 'resolved', resolved_at = now(), resolved_by = %s, resolution = %s, "
        "updated_at = now() WHERE id = ANY(%s::uuid[])",
        (actor_id, resolution, list(alarm_ids)),
    )
    _changed(conn, alarm_ids, "resolved", actor_id, {"resolution": resolution, **(data or {})})
    for alarm_id in alarm_ids:
        journal(conn, alarm_id)


def escalate(
    conn: Connection[Any], alarm_ids: Sequence[UUID], actor_id: UUID, data: dict[str, Any] | None = None
) -> None:
    """Escalated by a nurse: the team's escalation targets are notified (a trigger queues the notice)."""
    if not alarm_ids:
        return
    conn.execute(
        "UPDATE alarms SET escalated_at = now(), updated_at = now() WHERE id = ANY(%s::uuid[])", (list(alarm_ids),)
    )
    _changed(conn, alarm_ids, "escalated", actor_id, {"manual": True, **(data or {})})


def touch_for_escalation_notice(conn: Connection[Any], notice_id: int) -> UUID | None:
    """A notice of an escalation was sent: the alarm changed for the queue (who was notified), so its subscribers
    get it again."""
    row = conn.execute(
        "UPDATE alarms a SET updated_at = now() FROM escalation_notices n WHERE n.id = %s AND a.id = n.alarm_id "
        "RETURNING a.id",
        (notice_id,),
    ).fetchone()
    if row is None:
        return None
    notify_changes(conn, "escalation", [row[0]])
    return UUID(str(row[0]))


# --- the timed jobs --------------------------------------------------------------------------------------------------


def escalate_overdue(conn: Connection[Any], after_minutes: int) -> list[UUID]:
    """Red alarms left open (not acknowledged) for `after_minutes` are escalated, once each."""
    rows = conn.execute(
        "WITH due AS (UPDATE alarms SET escalated_at = now(), updated_at = now() "
        "WHERE state = 'open' AND severity = 'red' AND escalated_at IS NULL "
        "AND opened_at < now() - make_interval(mins => %s) RETURNING id) "
        "INSERT INTO alarm_events (alarm_id, event, data) "
        "SELECT id, 'escalated', jsonb_build_object('after_minutes', %s::int) FROM due RETURNING alarm_id",
        (after_minutes, after_minutes),
    ).fetchall()
    ids = [UUID(str(r[0])) for r in rows]
    notify_changes(conn, "escalation", ids)
    return ids


# --- the rules' changes ----------------------------------------------------------------------------------------------


def _rank(severity: sql.Composable) -> sql.Composed:
    """The rank of a severity column in the one order (`vitals.vocabulary.SEVERITY_RANK`): 0 is the worst."""
    whens = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.Literal(name), sql.Literal(rank)) for name, rank in SEVERITY_RANK.items()
    )
    return sql.SQL("CASE {} {} END").format(severity, whens)


_NEW, _OLD = _rank(sql.SQL("EXCLUDED.severity")), _rank(sql.SQL("a.severity"))
# The headline of an alarm is the reading that set its severity: it moves only to a reading of a worse severity
# (a lower rank), or of the same severity further beyond the limit (threshold rules); trend and score rules show
# their latest.
_DECIDES = sql.SQL(
    "({new} < {old} OR ({new} = {old} AND (a.severity_value IS NULL OR a.rule NOT LIKE 'threshold.%%' "
    "OR (a.rule LIKE '%%.low' AND EXCLUDED.severity_value < a.severity_value) "
    "OR (a.rule LIKE '%%.high' AND EXCLUDED.severity_value > a.severity_value))))"
).format(new=_NEW, old=_OLD)
_HEADLINE = sql.SQL(", ").join(
    sql.SQL("{column} = CASE WHEN {decides} THEN EXCLUDED.{column} ELSE a.{column} END").format(
        column=sql.Identifier(column), decides=_DECIDES
    )
    for column in (
        "severity_value",
        "severity_reading_id",
        "severity_measured_at",
        "severity_explanation_nb",
        "severity_explanation_en",
    )
)
_UPSERT = sql.SQL(
    "INSERT INTO alarms AS a (patient_id, rule, kind, severity, count, first_value, last_value, "
    "limit_value, last_reading_id, last_measured_at, window_start, window_end, explanation_nb, "
    "explanation_en, details, severity_value, severity_reading_id, severity_measured_at, "
    "severity_explanation_nb, severity_explanation_en) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
    "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (patient_id, rule) WHERE state <> 'resolved' DO UPDATE SET "
    "count = a.count + EXCLUDED.count, last_value = EXCLUDED.last_value, "
    "limit_value = EXCLUDED.limit_value, last_reading_id = EXCLUDED.last_reading_id, "
    "last_measured_at = EXCLUDED.last_measured_at, window_start = EXCLUDED.window_start, "
    "window_end = EXCLUDED.window_end, explanation_nb = EXCLUDED.explanation_nb, "
    "explanation_en = EXCLUDED.explanation_en, details = EXCLUDED.details, back_in_range = false, "
    "{headline}, severity = CASE WHEN {new} < {old} THEN EXCLUDED.severity ELSE a.severity END, updated_at = now() "
    "RETURNING a.id, (xmax = 0) AS opened, a.severity"
).format(headline=_HEADLINE, new=_NEW, old=_OLD)


def raise_alarms(conn: Connection[Any], candidates: Sequence[AlarmUpsert], source: Source) -> list[Raised]:
    """Open, or update, one alarm per (patient, rule): an unresolved alarm counts the new readings, keeps the
    worst severity and shows the latest value."""
    if not candidates:
        return []
    ordered = sorted(candidates, key=lambda c: (str(c.patient_id), c.rule))  # a fixed lock order: no deadlocks
    raised: list[Raised] = []
    with conn.cursor() as cur:
        for c in ordered:
            row = cur.execute(
                _UPSERT,
                (
                    c.patient_id,
                    c.rule,
                    c.kind,
                    c.severity,
                    c.count,
                    c.value,
                    c.value,
                    c.limit,
                    c.reading_id,
                    c.measured_at,
                    c.window_start,
                    c.window_end,
                    c.explanation_nb,
                    c.explanation_en,
                    json.dumps(c.details, default=str),
                    c.value,
                    c.reading_id,
                    c.measured_at,
                    c.explanation_nb,
                    c.explanation_en,
                ),
            ).fetchone()
            assert row is not None
            raised.append(Raised(row[0], c.rule, row[2], bool(row[1])))
    record_events(
        conn,
        [
            NewEvent(
                r.id, "opened" if r.opened else "updated", {"severity": r.severity, "value": c.value, "count": c.count}
            )
            for r, c in zip(raised, ordered, strict=True)
        ],
    )
    notify_changes(conn, source, [r.id for r in raised])
    return raised


def mark_back_in_range(
    conn: Connection[Any], patient_kinds: Sequence[tuple[UUID, str, float]], source: Source
) -> list[UUID]:
    """Show on unresolved threshold alarms that a later reading of the same kind (patient, kind, value) was back in
    range; returns the alarms marked now."""
    if not patient_kinds:
        return []
    rows = conn.execute(
        "UPDATE alarms a SET back_in_range = true, updated_at = now(), "
        "details = a.details || jsonb_build_object('back_in_range_value', v.value) "
        "FROM unnest(%s::uuid[], %s::text[], %s::float8[]) AS v(patient_id, kind, value) "
        "WHERE a.patient_id = v.patient_id AND a.kind = v.kind AND a.state <> 'resolved' "
        "AND a.rule LIKE 'threshold.%%' AND NOT a.back_in_range RETURNING a.id, v.value",
        ([p for p, _, _ in patient_kinds], [k for _, k, _ in patient_kinds], [v for _, _, v in patient_kinds]),
    ).fetchall()
    ids = [UUID(str(r[0])) for r in rows]
    record_events(conn, [NewEvent(i, "back_in_range", {"value": r[1]}) for i, r in zip(ids, rows, strict=True)])
    notify_changes(conn, source, ids)
    return ids


def mark_rules_back_in_range(
    conn: Connection[Any], patient_rules: Sequence[tuple[UUID, str]], source: Source
) -> list[UUID]:
    """Show on the unresolved alarms of these (patient, rule) that the patient is back in range (a questionnaire
    answered, or answered in its green zone); returns the alarms marked now."""
    if not patient_rules:
        return []
    rows = conn.execute(
        "UPDATE alarms a SET back_in_range = true, updated_at = now() "
        "FROM unnest(%s::uuid[], %s::text[]) AS v(patient_id, rule) "
        "WHERE a.patient_id = v.patient_id AND a.rule = v.rule AND a.state <> 'resolved' AND NOT a.back_in_range "
        "RETURNING a.id",
        ([p for p, _ in patient_rules], [r for _, r in patient_rules]),
    ).fetchall()
    ids = [UUID(str(r[0])) for r in rows]
    record_events(conn, [NewEvent(i, "back_in_range") for i in ids])
    notify_changes(conn, source, ids)
    return ids


@dataclass(frozen=True, slots=True)
class OpenRule:
    patient_id: UUID
    rule: str


def open_rules(
    conn: Connection[Any], patient_ids: Sequence[UUID], rules: Sequence[str] | None = None
) -> list[OpenRule]:
    """The (patient, rule) of these patients' unresolved alarms (of these rules; None: of every rule)."""
    with conn.cursor(row_factory=class_row(OpenRule)) as cur:
        if rules is None:
            return cur.execute(
                "SELECT patient_id, rule FROM alarms WHERE patient_id = ANY(%s::uuid[]) AND state <> 'resolved' "
                "ORDER BY rule",
                (list(patient_ids),),
            ).fetchall()
        return cur.execute(
            "SELECT patient_id, rule FROM alarms WHERE patient_id = ANY(%s::uuid[]) AND rule = ANY(%s::text[]) "
            "AND state <> 'resolved'",
            (list(patient_ids), list(rules)),
        ).fetchall()


def begin_with_first_readings(conn: Connection[Any], alarm_ids: Sequence[UUID]) -> None:
    """An alarm opened in this transaction by a confirmed repeat begins with the reading that asked for the
    repeat, not with the repeat."""
    if alarm_ids:
        conn.execute(
            "UPDATE alarms a SET first_value = r.value FROM repeat_requests r WHERE a.id = ANY(%s::uuid[]) "
            "AND r.alarm_id = a.id AND r.state = 'confirmed' AND a.opened_at = now()",
            (list(alarm_ids),),
        )


_MISSED_QUESTIONNAIRES = """
WITH zones AS (SELECT name FROM pg_timezone_names),
due AS (
    SELECT p.patient_id,
           q->>'id' AS questionnaire,
           q->>'title_nb' AS title_nb,
           q->>'title_en' AS title_en,
           q->>'deadline' AS deadline,
           p.activated_at,
           local.day,
           (local.day::timestamp AT TIME ZONE z.tz) AS day_start,
           ((local.day + (q->>'deadline')::time) AT TIME ZONE z.tz) AS deadline_at
    FROM self_management_plans p
    JOIN patients pt ON pt.id = p.patient_id AND pt.active
    CROSS JOIN LATERAL (SELECT COALESCE(p.body->>'timezone', pt.timezone) AS tz) z
    CROSS JOIN LATERAL (SELECT (%(now)s::timestamptz AT TIME ZONE z.tz) AS at) local_now
    CROSS JOIN LATERAL (SELECT local_now.at::date AS day) local
    LEFT JOIN patient_schedules ps ON ps.patient_id = p.patient_id AND ps.plan_id = p.id
    CROSS JOIN LATERAL jsonb_array_elements(coalesce(ps.body, p.body)->'questionnaires') q
    WHERE p.status = 'active'
      AND z.tz IN (SELECT name FROM zones)
      AND jsonb_typeof(q->'deadline') = 'string'
      AND local_now.at::time > (q->>'deadline')::time
)
, missing AS (
    SELECT d.* FROM due d
    WHERE d.activated_at < d.deadline_at
      AND NOT EXISTS (
          SELECT 1 FROM questionnaire_responses r
          WHERE r.patient_id = d.patient_id AND r.questionnaire = d.questionnaire AND r.answered_at >= d.day_start
      )
)
INSERT INTO alarms AS a (patient_id, rule, kind, severity, count, window_start, window_end, explanation_nb,
                         explanation_en, details)
SELECT patient_id, 'questionnaire.' || questionnaire || '.missed', NULL, 'missed', 1, day_start, deadline_at,
       'Spørreskjema «' || title_nb || '» er ikke besvart innen kl. ' || deadline || '.',
       'Questionnaire “' || title_en || '” was not answered by ' || deadline || '.',
       jsonb_build_object('questionnaire', questionnaire, 'date', day::text, 'deadline', deadline)
FROM missing
ON CONFLICT (patient_id, rule) WHERE state <> 'resolved' DO UPDATE SET
    count = a.count + 1, window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end,
    explanation_nb = EXCLUDED.explanation_nb, explanation_en = EXCLUDED.explanation_en,
    details = a.details || EXCLUDED.details, back_in_range = false, updated_at = now()
WHERE a.details->>'date' IS DISTINCT FROM EXCLUDED.details->>'date'
RETURNING a.id, a.rule, a.severity, (xmax = 0) AS opened, a.count
"""


def raise_missed_questionnaires(conn: Connection[Any], now: datetime) -> list[Raised]:
    """Open (or count one more day on) a `missed` alarm per questionnaire of an active plan not answered by its
    deadline today, in the patient's time zone; one set-based statement for every patient."""
    rows = conn.execute(_MISSED_QUESTIONNAIRES, {"now": now}).fetchall()
    raised = [Raised(r[0], r[1], r[2], bool(r[3])) for r in rows]
    record_events(
        conn,
        [
            NewEvent(r.id, "opened" if r.opened else "updated", {"severity": "missed", "count": row[4]})
            for r, row in zip(raised, rows, strict=True)
        ],
    )
    notify_changes(conn, "questionnaire", [r.id for r in raised])
    return raised


@dataclass(frozen=True, slots=True)
class AlarmOutcome:
    """What became of an alarm, as the patient app tells it: who saw it (acknowledged) and who closed it."""

    id: UUID
    kind: str | None
    severity: str
    state: str
    opened_at: datetime
    last_value: float | None
    acknowledged_at: datetime | None
    acknowledged_by_name: str | None
    acknowledged_by_role: str | None
    resolved_at: datetime | None
    resolved_by_name: str | None
    resolved_by_role: str | None
    last_measured_at: datetime | None


def outcomes_of(conn: Connection[Any], patient_id: UUID, within: timedelta) -> list[AlarmOutcome]:
    """The patient's alarms opened within `within` of now, newest first (at most 50)."""
    with conn.cursor(row_factory=class_row(AlarmOutcome)) as cur:
        return cur.execute(
            "SELECT a.id, a.kind, a.severity, a.state, a.opened_at, a.last_value, a.acknowledged_at, "
            "ua.display_name AS acknowledged_by_name, ua.role AS acknowledged_by_role, a.resolved_at, "
            "ur.display_name AS resolved_by_name, ur.role AS resolved_by_role, a.last_measured_at "
            "FROM alarms a LEFT JOIN users ua ON ua.id = a.acknowledged_by LEFT JOIN users ur ON ur.id = a.resolved_by "
            "WHERE a.patient_id = %s AND a.opened_at >= now() - %s ORDER BY a.opened_at DESC LIMIT 50",
            (patient_id, within),
        ).fetchall()


__all__ = [
    "AlarmOutcome",
    "AlarmUpsert",
    "EventRow",
    "Journal",
    "Locked",
    "NewEvent",
    "OpenRule",
    "Raised",
    "acknowledge",
    "add_note",
    "assign",
    "begin_with_first_readings",
    "escalate",
    "escalate_overdue",
    "events_of",
    "lock",
    "mark_back_in_range",
    "mark_rules_back_in_range",
    "open_rules",
    "outcomes_of",
    "raise_alarms",
    "raise_missed_questionnaires",
    "record_event_if_present",
    "record_events",
    "resolve",
    "touch_for_escalation_notice",
]
