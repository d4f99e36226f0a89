"""Alarm persistence and lifecycle: one unresolved alarm per patient and rule, every change an alarm event.

Candidates from the rule evaluation are upserted in the ingest transaction: a new alarm opens, an unresolved one
counts the new readings, keeps the worst severity and shows the latest value. Concurrent workers meet on the
partial unique index `alarms_one_unresolved`, so two of them can never open two alarms for the same rule.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, sql

from rules_engine.metrics import count_alarm
from rules_engine.schedules import step_up_on_alarms
from vitals.vocabulary import SEVERITY_RANK


@dataclass(frozen=True, slots=True)
class AlarmUpsert:
    """One alarm candidate ready for the database (ids, not array rows)."""

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


def upsert_alarms(conn: Connection[Any], candidates: Sequence[AlarmUpsert]) -> list[UUID]:
    """Open or update one alarm per (patient, rule); returns the ids of alarms that changed."""
    if not candidates:
        return []
    ordered = sorted(candidates, key=lambda c: (str(c.patient_id), c.rule))  # a fixed lock order: no deadlocks
    changed: list[UUID] = []
    events: list[tuple[UUID, str, str]] = []
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
            alarm_id, opened, severity = row
            changed.append(alarm_id)
            count_alarm(c.rule, severity, bool(opened))
            events.append(
                (
                    alarm_id,
                    "opened" if opened else "updated",
                    json.dumps({"severity": severity, "value": c.value, "count": c.count}),
                )
            )
        cur.executemany("INSERT INTO alarm_events (alarm_id, event, data) VALUES (%s, %s, %s)", events)
    step_up_on_alarms(conn, changed)  # need-driven schedules: an alarm may step the patient's schedule up
    return changed


def mark_back_in_range(conn: Connection[Any], patient_kinds: Sequence[tuple[UUID, str, float]]) -> int:
    """Show on unresolved threshold alarms that a later reading of the same kind was back in range."""
    if not patient_kinds:
        return 0
    patients = [p for p, _, _ in patient_kinds]
    kinds = [k for _, k, _ in patient_kinds]
    values = [v for _, _, v in patient_kinds]
    cur = conn.execute(
        "UPDATE alarms a SET back_in_range = true, updated_at = now(), "
        "details = a.details || jsonb_build_object('back_in_range_value', v.value) "
        "FROM unnest(%s::uuid[], %s::text[], %s::float8[]) AS v(patient_id, kind, value) "
        "WHERE a.patient_id = v.patient_id AND a.kind = v.kind AND a.state <> 'resolved' "
        "AND a.rule LIKE 'threshold.%%' AND NOT a.back_in_range",
        (patients, kinds, values),
    )
    return cur.rowcount
