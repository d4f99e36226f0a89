"""What the rules do when they raise alarms, beside writing them (`store.alarms` owns the rows): count them for
the metrics, and let an alarm step a need-driven schedule up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import Connection

from rules_engine.metrics import count_alarm
from rules_engine.schedules import step_up_on_alarms
from store.alarms import AlarmUpsert, raise_alarms
from store.events import Source


def upsert_alarms(conn: Connection[Any], candidates: Sequence[AlarmUpsert], source: Source) -> list[UUID]:
    """Open or update one alarm per (patient, rule), announced as from `source`; returns the ids that changed."""
    raised = raise_alarms(conn, candidates, source)
    for r in raised:
        count_alarm(r.rule, r.severity, r.opened)
    changed = [r.id for r in raised]
    step_up_on_alarms(conn, changed)
    return changed


__all__ = ["AlarmUpsert", "upsert_alarms"]
