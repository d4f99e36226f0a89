"""The alarm queue read model: alarms with their patient and assignee, worst first, in keyset pages.

Shared by the queue routes and the SSE fan-out, so an alarm looks the same in a page and in the stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Connection, sql

from clinician_api import paging
from clinician_api.access import Principal, visible_patients_clause
from clinician_api.schemas import Alarm, Notified
from vitals import KINDS, Kind
from vitals.vocabulary import UNRESOLVED_STATES

SELECT = (
    "SELECT a.id, a.patient_id, p.display_name, p.team_id, a.rule, a.kind, a.severity, a.state, a.opened_at, "
    "a.updated_at, a.count, a.first_value, a.last_value, a.limit_value, a.last_measured_at, a.explanation_nb, "
    "a.explanation_en, a.back_in_range, a.escalated_at, a.assignee_id, u.display_name, a.acknowledged_at, "
    "a.acknowledged_by, a.resolved_at, a.resolved_by, a.resolution, a.severity_rank, "
    "coalesce(a.severity_value, a.last_value), coalesce(a.severity_measured_at, a.last_measured_at), "
    "coalesce(a.severity_explanation_nb, a.explanation_nb), coalesce(a.severity_explanation_en, a.explanation_en), "
    "r.received_at, r.grp, n.text, n.at, n.author, x.notified "
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
_CURSOR = "alarms"


@dataclass(frozen=True, slots=True)
class QueueFilter:
    states: Sequence[str] = UNRESOLVED_STATES
    severities: Sequence[str] | None = None
    team_ids: Sequence[UUID] | None = None
    patient_ids: Sequence[UUID] | None = None
    assignee_id: UUID | None = None


def unit_of(kind: str | None) -> str | None:
    try:
        return KINDS[Kind(kind)].unit if kind else None
    except ValueError:
        return None


def to_alarm(row: Sequence[Any], lang: str = "nb") -> Alarm:
    return Alarm(
        id=row[0],
        patient_id=row[1],
        patient_name=row[2],
        team_id=row[3],
        rule=row[4],
        kind=row[5],
        unit=unit_of(row[5]),
        severity=row[6],
        state=row[7],
        opened_at=row[8],
        updated_at=row[9],
        count=row[10],
        first_value=row[11],
        last_value=row[12],
        limit_value=row[13],
        last_measured_at=row[14],
        explanation=row[15] if lang == "nb" else row[16],
        explanation_nb=row[15],
        explanation_en=row[16],
        back_in_range=row[17],
        escalated=row[18] is not None,
        escalated_at=row[18],
        assignee_id=row[19],
        assignee_name=row[20],
        acknowledged_at=row[21],
        acknowledged_by=row[22],
        resolved_at=row[23],
        resolved_by=row[24],
        resolution=row[25],
        headline=row[29] if lang == "nb" else row[30],
        headline_value=row[27],
        headline_measured_at=row[28],
        headline_received_at=row[31],
        act_group=f"{row[1]}:{row[32]}" if row[32] else None,
        last_note=row[33],
        last_note_at=row[34],
        last_note_by=row[35],
        notified=[Notified.model_validate(n) for n in row[36] or []],
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
    clause, params = visible_patients_clause(principal)
    where: list[sql.Composable] = [clause, sql.SQL("a.state = ANY(%s)")]
    params.append(list(flt.states))
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
    if cursor:
        rank, opened_at, alarm_id = paging.decode(_CURSOR, cursor, (int, paging.parse_time, UUID))
        where.append(sql.SQL("(a.severity_rank, a.opened_at, a.id) > (%s, %s, %s)"))
        params += [rank, opened_at, alarm_id]
    rows = conn.execute(
        sql.SQL("{} WHERE {} ORDER BY a.severity_rank, a.opened_at, a.id LIMIT %s").format(
            sql.SQL(SELECT), sql.SQL(" AND ").join(where)
        ),
        [*params, limit + 1],
    ).fetchall()
    shown, next_cursor = paging.page(rows, limit, lambda r: (r[26], r[8], r[0]), _CURSOR)
    return [to_alarm(r, lang) for r in shown], next_cursor


def by_ids(conn: Connection[Any], alarm_ids: Sequence[UUID]) -> list[tuple[Any, ...]]:
    if not alarm_ids:
        return []
    return list(
        conn.execute(sql.SQL("{} WHERE a.id = ANY(%s::uuid[])").format(sql.SQL(SELECT)), (list(alarm_ids),)).fetchall()
    )


def one(conn: Connection[Any], alarm_id: UUID, lang: str = "nb") -> Alarm | None:
    rows = by_ids(conn, [alarm_id])
    return to_alarm(rows[0], lang) if rows else None
