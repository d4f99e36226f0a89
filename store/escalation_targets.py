"""Whom a care team's escalated alarms reach (`escalation_targets`: the on-call nurse's phone, an address, a
webhook), the one writer of the table: a target added or updated by its team, channel and address, and targets
retired by label. Which channels exist and what an address must look like are `varde.admin`'s and
`clinician_api.escalation`'s, as are the notices sent to the targets; the alarm queue reads the targets' labels
(`store.alarm_queue`)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import scalar_row

_UPSERT = (
    "INSERT INTO escalation_targets (team_id, label, channel, address) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (team_id, channel, address) DO UPDATE SET label = EXCLUDED.label, active = true "
    "RETURNING id"
)
_RETIRE_LABELLED = "UPDATE escalation_targets SET active = false WHERE label = %s"


def upsert(conn: Connection[Any], team_id: UUID, label: str, channel: str, address: str) -> UUID:
    """The team's target on this channel and address, made or relabelled, and active."""
    with conn.cursor(row_factory=scalar_row) as cur:
        target_id: UUID | None = cur.execute(_UPSERT, (team_id, label, channel, address)).fetchone()
    assert target_id is not None
    return target_id


def retire_labelled(conn: Connection[Any], label: str) -> None:
    """Every team's targets of this label stop receiving notices."""
    conn.execute(_RETIRE_LABELLED, (label,))


__all__ = ["retire_labelled", "upsert"]
