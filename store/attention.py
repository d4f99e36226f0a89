"""What the nurse's attention list is made of, as one typed row per enabled gateway of an active patient: the
newest reading's time of measurement, and the device-clock warnings of the last days (readings whose time the
gateway corrected, and messages refused for a time in the future or too old). Read-only; which of them to show is
`clinician_api.routes.attention`'s."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import class_row

_GATEWAYS = (
    "SELECT p.id AS patient_id, p.display_name AS patient_name, p.team_id, g.id AS gateway_id, g.state, "
    "last.at AS seen, clock.n AS clock_warnings, "
    "clock.first_at AS clock_first_at FROM patients p JOIN gateways g ON g.patient_id = p.id AND g.enabled LEFT "
    "JOIN LATERAL (SELECT max(l.measured_at) AS at FROM unnest(%(kinds)s::text[]) AS k(kind) "
    "CROSS JOIN LATERAL (SELECT r.measured_at FROM readings r WHERE r.patient_id = p.id AND "
    "r.kind = k.kind ORDER BY r.measured_at DESC LIMIT 1) l) last ON true LEFT JOIN LATERAL "
    "(SELECT count(*) AS n, min(c.at) AS first_at FROM (SELECT r.received_at AS at FROM "
    "readings r WHERE r.patient_id = p.id AND r.gateway_id = g.id AND r.received_at > now() - "
    "make_interval(days => %(days)s) AND r.flags && %(flags)s::text[] UNION ALL SELECT "
    "m.received_at FROM rejected_messages m WHERE m.gateway_id = g.id AND m.received_at > "
    "now() - make_interval(days => %(days)s) AND m.reason IN ('future_time', 'too_old')) c) "
    "clock ON true WHERE p.active AND {} {} ORDER BY p.display_name, g.id"
)


@dataclass(frozen=True, slots=True)
class GatewayAttention:
    patient_id: UUID
    patient_name: str
    team_id: UUID
    gateway_id: str
    state: str | None
    """The gateway's last reported state (online/offline)."""
    seen: datetime | None
    """The newest reading's time of measurement, of any of the kinds asked about; None without one."""
    clock_warnings: int
    """Readings of the gateway flagged with one of the clock flags, and its messages refused for their time."""
    clock_first_at: datetime | None
    """When the first of those arrived."""


def gateways(
    conn: Connection[Any],
    visible: sql.Composable,
    visible_params: dict[str, Any],
    *,
    kinds: Sequence[str],
    clock_flags: Sequence[str],
    clock_days: int,
    team_ids: Sequence[UUID] | None = None,
) -> list[GatewayAttention]:
    """The enabled gateways of active patients passing `visible` (the caller's duty-of-care clause over `p`, with
    named parameters), of the teams `team_ids` when given, by patient name, then gateway."""
    team_clause = sql.SQL("AND p.team_id = ANY(%(teams)s::uuid[])" if team_ids else "")
    params = visible_params | {
        "flags": list(clock_flags),
        "days": clock_days,
        "kinds": list(kinds),
        "teams": list(team_ids) if team_ids else team_ids,
    }
    with conn.cursor(row_factory=class_row(GatewayAttention)) as cur:
        return cur.execute(sql.SQL(_GATEWAYS).format(visible, team_clause), params).fetchall()


__all__ = ["GatewayAttention", "gateways"]
