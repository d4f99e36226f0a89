"""Self-management plan versions (`self_management_plans`) as the API keeps them: the next draft, a version by
number (locked for a change), all versions, activation (retiring the one before) and retirement; and the active
plan's NEWS2 settings the threshold profile is composed with, and the versions questionnaire responses are scored
against (`rules_engine.questionnaires`). What activation also does (the zones as limits, the
schedule, the publication) is the caller's; the active plan as the rules and schedules read it is
`store.schedules`'."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import class_row

_COLUMNS = sql.SQL("id, patient_id, version, status, created_at, created_by, activated_at, retired_at, body")
_CREATE = sql.SQL(
    "INSERT INTO self_management_plans (patient_id, version, body, created_by) SELECT %s, "
    "coalesce(max(version), 0) + 1, %s, %s FROM self_management_plans WHERE patient_id = %s "
    "RETURNING {}"
).format(_COLUMNS)
_ALL = sql.SQL("SELECT {} FROM self_management_plans WHERE patient_id = %s ORDER BY version DESC").format(_COLUMNS)
_ONE = sql.SQL("SELECT {} FROM self_management_plans WHERE patient_id = %s AND version = %s").format(_COLUMNS)
_ONE_LOCKED = sql.SQL("{} FOR UPDATE").format(_ONE)
_RETIRE_ACTIVE = (
    "UPDATE self_management_plans SET status = 'retired', retired_at = now() WHERE patient_id = %s "
    "AND status = 'active'"
)
_ACTIVATE = sql.SQL(
    "UPDATE self_management_plans SET status = 'active', activated_at = now() WHERE id = %s RETURNING {}"
).format(_COLUMNS)
_RETIRE = sql.SQL(
    "UPDATE self_management_plans SET status = 'retired', retired_at = now() WHERE id = %s RETURNING {}"
).format(_COLUMNS)
_NEWS2 = (
    "SELECT coalesce(body->>'spo2_scale' = '2', false) AS spo2_scale2, "
    "coalesce(jsonb_typeof(body->'oxygen') = 'object', false) AS on_oxygen "
    "FROM self_management_plans WHERE patient_id = %s AND status = 'active'"
)
_ANSWERED_OR_ACTIVE = (
    "SELECT patient_id, version, status, body FROM self_management_plans "
    "WHERE (patient_id, version) IN (SELECT * FROM unnest(%s::uuid[], %s::int[])) "
    "OR (patient_id = ANY(%s::uuid[]) AND status = 'active')"
)


@dataclass(frozen=True, slots=True)
class PlanRow:
    id: UUID
    patient_id: UUID
    version: int
    status: str
    """'draft', 'active' or 'retired'."""
    created_at: datetime
    created_by: UUID | None
    activated_at: datetime | None
    retired_at: datetime | None
    body: dict[str, Any]
    """The plan as stored (`vitals.PlanContent`'s JSON)."""


@dataclass(frozen=True, slots=True)
class PlanNews2:
    spo2_scale2: bool
    """SpO2 judged on NEWS2's scale 2 (hypercapnic respiratory failure)."""
    on_oxygen: bool


def create_draft(conn: Connection[Any], patient_id: UUID, body_json: str, created_by: UUID) -> PlanRow:
    """Store `body_json` as the patient's next version, a draft (the caller holds the patient's row lock)."""
    with conn.cursor(row_factory=class_row(PlanRow)) as cur:
        row = cur.execute(_CREATE, (patient_id, body_json, created_by, patient_id)).fetchone()
    assert row is not None
    return row


def all_versions(conn: Connection[Any], patient_id: UUID) -> list[PlanRow]:
    """Every version, newest first."""
    with conn.cursor(row_factory=class_row(PlanRow)) as cur:
        return cur.execute(_ALL, (patient_id,)).fetchall()


def version(conn: Connection[Any], patient_id: UUID, number: int, *, lock: bool = False) -> PlanRow | None:
    """One version by number; with `lock`, locked until the caller's transaction ends."""
    with conn.cursor(row_factory=class_row(PlanRow)) as cur:
        return cur.execute(_ONE_LOCKED if lock else _ONE, (patient_id, number)).fetchone()


def activate(conn: Connection[Any], patient_id: UUID, plan_id: UUID) -> PlanRow:
    """Retire the patient's active version, if any, then make `plan_id` the active one."""
    conn.execute(_RETIRE_ACTIVE, (patient_id,))
    with conn.cursor(row_factory=class_row(PlanRow)) as cur:
        row = cur.execute(_ACTIVATE, (plan_id,)).fetchone()
    assert row is not None
    return row


def retire(conn: Connection[Any], plan_id: UUID) -> PlanRow:
    with conn.cursor(row_factory=class_row(PlanRow)) as cur:
        row = cur.execute(_RETIRE, (plan_id,)).fetchone()
    assert row is not None
    return row


@dataclass(frozen=True, slots=True)
class PlanBody:
    patient_id: UUID
    version: int
    status: str
    body: dict[str, Any]
    """The plan as stored (`vitals.PlanContent`'s JSON)."""


def versions_or_active(conn: Connection[Any], versions: Sequence[tuple[UUID, int]]) -> list[PlanBody]:
    """These (patient, version) plans, and each of these patients' active plan (the questionnaire rules score a
    response against the version answered, else the active one)."""
    patient_ids = [p for p, _ in versions]
    with conn.cursor(row_factory=class_row(PlanBody)) as cur:
        return cur.execute(_ANSWERED_OR_ACTIVE, (patient_ids, [v for _, v in versions], patient_ids)).fetchall()


def active_news2(conn: Connection[Any], patient_id: UUID) -> PlanNews2 | None:
    """The active plan's SpO2 scale and home oxygen; None when the patient has no active plan."""
    with conn.cursor(row_factory=class_row(PlanNews2)) as cur:
        return cur.execute(_NEWS2, (patient_id,)).fetchone()


__all__ = [
    "PlanBody",
    "PlanNews2",
    "PlanRow",
    "activate",
    "active_news2",
    "all_versions",
    "create_draft",
    "retire",
    "version",
    "versions_or_active",
]
