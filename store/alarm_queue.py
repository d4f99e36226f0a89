"""The alarm queue's read model: an alarm with its patient, assignee, headline reading, last note and escalation
notices, as one typed row (`QueueRow`), read in keyset pages worst first or by id (also from the API's async
event hub, so an alarm looks the same in a page and in the live stream). Writes are `store.alarms`'."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, Connection, sql
from psycopg.rows import class_row

from vitals.vocabulary import UNRESOLVED_STATES

_SELECT = sql.SQL(
    "SELECT a.id, a.patient_id, p.display_name AS patient_name, p.team_id, a.rule, a.kind, a.severity, a.state, "
    "a.opened_at, a.updated_at, a.count, a.first_value, a.last_value, a.limit_value, a.last_measured_at, "
    "a.explanation_nb, a.explanation_en, a.back_in_range, a.escalated_at, a.assignee_id, "
    "u.display_name AS assignee_name, a.acknowledged_at, a.acknowledged_by, a.resolved_at, a.resolved_by, "
    "a.resolution, a.severity_rank, "
    "coalesce(a.severity_value, a.last_value) AS headline_value, "
    "coalesce(a.severity_measured_at, a.last_measured_at) AS headline_measured_at, "
    "coalesce(a.severity_explanation_nb, a.explanation_nb) AS headline_nb, "
    "coalesce(a.severity_explanation_en, a.explanation_en) AS headline_en, "
    "r.received_at AS headline_received_at, r.grp AS act_group, n.text AS last_note, n.at AS last_note_at, "
    "n.author AS last_note_by, x.notified "
    "FROM alarms a JOIN patients p ON p.id = a.patient_id LEFT JOIN users u ON u.id = a.assignee_id "
    # The reading that set the severity: when it arrived, and the measurement act (cuff inflation) it belongs to.
    "LEFT JOIN LATERAL (SELECT received_at, grp FROM readings WHERE id = coalesce(a.severity_reading_id, "
    "a.last_reading_id) AND measured_at = coalesce(a.severity_measured_at, a.last_measured_at) LIMIT 1) r ON true "
    "LEFT JOIN LATERAL (SELECT e.data->>'text' AS text, e.at, nu.display_name AS author FROM alarm_events e "
    "LEFT JOIN users nu ON nu.id = e.actor_id WHERE e.alarm_id = a.id AND e.event = 'note' "
    "ORDER BY e.at DESC, e.id DESC LIMIT 1) n ON true "
    "LEFT JOIN LATERAL (SELECT coalesce(jsonb_agg(jsonb_build_object('label', t.label, 'channel', t.channel, "
    "'state', en.state, 'sent_at', en.sent_at) ORDER BY t.label), '[]'::jsonb) AS notified "
    "FROM escalation_notices en JOIN escalation_targets t ON t.id = en.target_id WHERE en.alarm_id = a.id) x ON true"
)
_BY_IDS = sql.SQL("{} WHERE a.id = ANY(%s::uuid[])").format(_SELECT)


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: UUID
    patient_id: UUID
    patient_name: str
    team_id: UUID
    rule: str
    kind: str | None
    severity: str
    state: str
    opened_at: datetime
    updated_at: datetime
    count: int
    first_value: float | None
    last_value: float | None
    limit_value: float | None
    last_measured_at: datetime | None
    explanation_nb: str
    explanation_en: str
    back_in_range: bool
    escalated_at: datetime | None
    assignee_id: UUID | None
    assignee_name: str | None
    acknowledged_at: datetime | None
    acknowledged_by: UUID | None
    resolved_at: datetime | None
    resolved_by: UUID | None
    resolution: str | None
    severity_rank: int
    headline_value: float | None
    headline_measured_at: datetime | None
    headline_nb: str
    headline_en: str
    headline_received_at: datetime | None
    act_group: str | None
    """The measurement act (one cuff inflation) of the headline reading, unique within the patient."""
    last_note: str | None
    last_note_at: datetime | None
    last_note_by: str | None
    notified: list[dict[str, Any]]
    """The escalation notices: target label, channel, state, when sent."""


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Which alarms, beside the caller's duty of care."""

    states: Sequence[str] = UNRESOLVED_STATES
    severities: Sequence[str] | None = None
    team_ids: Sequence[UUID] | None = None
    patient_ids: Sequence[UUID] | None = None
    assignee_id: UUID | None = None


def page(
    conn: Connection[Any],
    visible: sql.Composable,
    visible_params: Sequence[Any],
    flt: QueueFilter,
    after: tuple[int, datetime, UUID] | None,
    limit: int,
) -> list[QueueRow]:
    """Up to `limit` alarms of patients passing `visible` (the caller's duty-of-care clause over `p`) in queue
    order — severity rank (red first), then oldest first, then id — after the key `after` (severity rank, opened
    at, id) of the previous page's last row."""
    where: list[sql.Composable] = [visible, sql.SQL("a.state = ANY(%s)")]
    params: list[Any] = [*visible_params, list(flt.states)]
    if flt.severities:
        where.append(sql.SQL("a.severity = ANY(%s)"))
        params.append(list(flt.severities))
    if flt.team_ids:
        where.append(sql.SQL("p.team_id = ANY(%s::uuid[])"))
        params.append(list(flt.team_ids))
    if flt.patient_ids:
        where.append(sql.SQL("a.patient_id = ANY(%s::uuid[])"))
        params.append(list(flt.patient_ids))
    if flt.assignee_id:
        where.append(sql.SQL("a.assignee_id = %s"))
        params.append(flt.assignee_id)
    if after is not None:
        where.append(sql.SQL("(a.severity_rank, a.opened_at, a.id) > (%s, %s, %s)"))
        params += list(after)
    query = sql.SQL("{} WHERE {} ORDER BY a.severity_rank, a.opened_at, a.id LIMIT %s").format(
        _SELECT, sql.SQL(" AND ").join(where)
    )
    with conn.cursor(row_factory=class_row(QueueRow)) as cur:
        return cur.execute(query, [*params, limit]).fetchall()


def by_ids(conn: Connection[Any], alarm_ids: Sequence[UUID]) -> list[QueueRow]:
    if not alarm_ids:
        return []
    with conn.cursor(row_factory=class_row(QueueRow)) as cur:
        return cur.execute(_BY_IDS, (list(alarm_ids),)).fetchall()


async def by_ids_async(conn: AsyncConnection[Any], alarm_ids: Sequence[UUID]) -> list[QueueRow]:
    if not alarm_ids:
        return []
    async with conn.cursor(row_factory=class_row(QueueRow)) as cur:
        await cur.execute(_BY_IDS, (list(alarm_ids),))
        return await cur.fetchall()


__all__ = ["QueueFilter", "QueueRow", "by_ids", "by_ids_async", "page"]
