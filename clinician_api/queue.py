"""The alarm queue read model: alarms with their patient and assignee, worst first, in keyset pages.

Shared by the queue routes and the SSE fan-out, so an alarm looks the same in a page and in the stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import Connection

from clinician_api import paging
from clinician_api.access import Principal, visible_patients_clause
from clinician_api.schemas import Alarm, Notified
from store import alarm_queue
from store.alarm_queue import QueueFilter, QueueRow
from vitals import KINDS, Kind

_CURSOR = "alarms"


def unit_of(kind: str | None) -> str | None:
    try:
        return KINDS[Kind(kind)].unit if kind else None
    except ValueError:
        return None


def to_alarm(row: QueueRow, lang: str = "nb") -> Alarm:
    nb = lang == "nb"
    return Alarm(
        id=row.id,
        patient_id=row.patient_id,
        patient_name=row.patient_name,
        team_id=row.team_id,
        rule=row.rule,
        kind=row.kind,
        unit=unit_of(row.kind),
        severity=row.severity,
        state=row.state,
        opened_at=row.opened_at,
        updated_at=row.updated_at,
        count=row.count,
        first_value=row.first_value,
        last_value=row.last_value,
        limit_value=row.limit_value,
        last_measured_at=row.last_measured_at,
        explanation=row.explanation_nb if nb else row.explanation_en,
        explanation_nb=row.explanation_nb,
        explanation_en=row.explanation_en,
        back_in_range=row.back_in_range,
        escalated=row.escalated_at is not None,
        escalated_at=row.escalated_at,
        assignee_id=row.assignee_id,
        assignee_name=row.assignee_name,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolution=row.resolution,
        headline=row.headline_nb if nb else row.headline_en,
        headline_value=row.headline_value,
        headline_measured_at=row.headline_measured_at,
        headline_received_at=row.headline_received_at,
        act_group=f"{row.patient_id}:{row.act_group}" if row.act_group else None,
        last_note=row.last_note,
        last_note_at=row.last_note_at,
        last_note_by=row.last_note_by,
        notified=[Notified.model_validate(n) for n in row.notified or []],
    )


def page(
    conn: Connection[Any],
    principal: Principal,
    flt: QueueFilter,
    *,
    cursor: str | None,
    limit: int,
    lang: str,
) -> tuple[list[Alarm], str | None]:
    """One page of the queue the principal may see: severity (red first), then oldest first, then id."""
    after = None
    if cursor:
        rank, opened_at, alarm_id = paging.decode(_CURSOR, cursor, (int, paging.parse_time, UUID))
        after = (rank, opened_at, alarm_id)
    rows = alarm_queue.page(conn, *visible_patients_clause(principal), flt, after, limit + 1)
    shown, next_cursor = paging.page(rows, limit, lambda r: (r.severity_rank, r.opened_at, r.id), _CURSOR)
    return [to_alarm(r, lang) for r in shown], next_cursor


def by_ids(conn: Connection[Any], alarm_ids: Sequence[UUID], lang: str = "nb") -> list[Alarm]:
    return [to_alarm(r, lang) for r in alarm_queue.by_ids(conn, alarm_ids)]


def one(conn: Connection[Any], alarm_id: UUID, lang: str = "nb") -> Alarm | None:
    found = by_ids(conn, [alarm_id], lang)
    return found[0] if found else None
