"""The worklist's own rows: who works on an item that is not an alarm (`work_assignments`, its one reader and
writer), the patients gone quiet and the plans due for review, and the patient a work item is about.

Alarms and missed measurements come from `store.alarm_queue`, unanswered messages from `clinician_api.messages`,
hand-overs waiting for acceptance from `store.episodes`; the SLAs and the order are `clinician_api.worklist`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import class_row, scalar_row

# The last reading per kind, one index lookup each on (patient_id, kind, measured_at), instead of reading through
# every reading of the patient.
_INACTIVE_SQL = (
    "SELECT p.id AS patient_id, p.display_name AS name, p.team_id, r.last_at, coalesce(r.last_at, p.created_at) "
    "AS since FROM patients p "
    "LEFT JOIN LATERAL (SELECT max(x.at) AS last_at FROM unnest(%(kinds)s::text[]) AS k(kind), "
    "LATERAL (SELECT max(measured_at) AS at FROM readings WHERE patient_id = p.id AND kind = k.kind) x) r ON true "
    "WHERE p.active AND p.team_id = ANY(%(teams)s::uuid[]) "
    "AND coalesce(r.last_at, p.created_at) < %(now)s - make_interval(days => %(days)s)"
)
_REVIEW_SQL = (
    "SELECT pl.id AS plan_id, pl.version, pl.activated_at, p.id AS patient_id, p.display_name AS name, p.team_id "
    "FROM self_management_plans pl "
    "JOIN patients p ON p.id = pl.patient_id AND p.active WHERE pl.status = 'active' "
    "AND p.team_id = ANY(%(teams)s::uuid[]) AND pl.activated_at < %(now)s - make_interval(days => %(days)s)"
)
_PATIENT_OF: dict[str, str] = {
    "message": "SELECT patient_id FROM message_threads WHERE id = %s::uuid",
    "inactive_patient": "SELECT id FROM patients WHERE id = %s::uuid",
    "plan_review": "SELECT patient_id FROM self_management_plans WHERE id = %s::uuid",
}
ASSIGNABLE = tuple(_PATIENT_OF)
"""The item types (other than alarms) someone can be assigned to: those whose patient `patient_of` finds."""


@dataclass(frozen=True, slots=True)
class Assignment:
    item_key: str
    assignee_id: UUID
    assignee_name: str
    """The display name, else the username."""


@dataclass(frozen=True, slots=True)
class InactivePatient:
    patient_id: UUID
    name: str
    team_id: UUID
    last_at: datetime | None
    """The newest reading's time of measurement; None when the patient never measured."""
    since: datetime
    """The newest reading's time, else enrolment."""


@dataclass(frozen=True, slots=True)
class PlanDue:
    plan_id: UUID
    version: int
    activated_at: datetime
    patient_id: UUID
    name: str
    team_id: UUID


def assignments(conn: Connection[Any], item_type: str, keys: Sequence[str]) -> list[Assignment]:
    """Who works on the items of `item_type` with these keys (items nobody took are left out)."""
    with conn.cursor(row_factory=class_row(Assignment)) as cur:
        return cur.execute(
            "SELECT w.item_key, w.assignee_id, coalesce(nullif(u.display_name, ''), u.username) AS assignee_name "
            "FROM work_assignments w JOIN users u ON u.id = w.assignee_id "
            "WHERE w.item_type = %s AND w.item_key = ANY(%s)",
            (item_type, list(keys)),
        ).fetchall()


def assign(conn: Connection[Any], item_type: str, key: str, patient_id: UUID, assignee_id: UUID, by: UUID) -> None:
    """`assignee_id` works on the item now (whoever did before)."""
    conn.execute(
        "INSERT INTO work_assignments (item_type, item_key, patient_id, assignee_id, assigned_by) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (item_type, item_key) DO UPDATE SET "
        "assignee_id = EXCLUDED.assignee_id, assigned_by = EXCLUDED.assigned_by, assigned_at = now()",
        (item_type, key, patient_id, assignee_id, by),
    )


def release(conn: Connection[Any], item_type: str, key: str) -> None:
    """Nobody works on the item any more."""
    conn.execute("DELETE FROM work_assignments WHERE item_type = %s AND item_key = %s", (item_type, key))


def inactive_patients(
    conn: Connection[Any], team_ids: Sequence[UUID], now: datetime, days: int, kinds: Sequence[str]
) -> list[InactivePatient]:
    """The teams' active patients with no reading of `kinds` measured in the `days` before `now` (nor enrolled in
    them)."""
    params = {"teams": list(team_ids), "now": now, "days": days, "kinds": list(kinds)}
    with conn.cursor(row_factory=class_row(InactivePatient)) as cur:
        return cur.execute(_INACTIVE_SQL, params).fetchall()


def plans_due_for_review(conn: Connection[Any], team_ids: Sequence[UUID], now: datetime, days: int) -> list[PlanDue]:
    """The active plans of the teams' active patients activated more than `days` before `now`."""
    with conn.cursor(row_factory=class_row(PlanDue)) as cur:
        return cur.execute(_REVIEW_SQL, {"teams": list(team_ids), "now": now, "days": days}).fetchall()


def patient_of(conn: Connection[Any], item_type: str, key: str) -> UUID | None:
    """The patient a work item is about; None for a type not in `ASSIGNABLE`, a key that is no id, or no such item."""
    query = _PATIENT_OF.get(item_type)
    try:
        item_id = str(UUID(key))
    except ValueError:
        return None
    if query is None:
        return None
    with conn.cursor(row_factory=scalar_row) as cur:
        patient_id: UUID | None = cur.execute(query, (item_id,)).fetchone()
        return patient_id


__all__ = [
    "ASSIGNABLE",
    "Assignment",
    "InactivePatient",
    "PlanDue",
    "assign",
    "assignments",
    "inactive_patients",
    "patient_of",
    "plans_due_for_review",
    "release",
]
