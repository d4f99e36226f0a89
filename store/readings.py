"""One patient's stored readings over a time range, as columns, for code that replays them (the threshold editor's
what-if). Reads only; ingest owns the writes to `readings`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

_RANGE_SQL = (
    "SELECT kind, value, extract(epoch FROM measured_at)::bigint FROM readings "
    "WHERE patient_id = %s AND measured_at >= %s AND measured_at < %s ORDER BY measured_at, kind LIMIT %s"
)
"""Served by `readings_patient_kind_time_idx` (patient_id, kind, measured_at) per kind."""


@dataclass(frozen=True, slots=True)
class PatientReadings:
    """Readings in time order: kind name, value in the canonical unit, measured_at in epoch seconds."""

    kinds: list[str]
    values: list[float]
    measured_at: list[int]
    truncated: bool
    """More readings lay in the range than the limit asked for (the newest are left out)."""

    def __len__(self) -> int:
        return len(self.kinds)


def patient_readings(
    conn: psycopg.Connection[Any], patient_id: UUID, since: datetime, until: datetime, *, limit: int
) -> PatientReadings:
    """The patient's readings with `since <= measured_at < until`, oldest first, at most `limit`."""
    rows = conn.execute(_RANGE_SQL, (patient_id, since, until, limit + 1)).fetchall()
    truncated = len(rows) > limit
    rows = rows[:limit]
    return PatientReadings(
        [r[0] for r in rows], [float(r[1]) for r in rows], [int(r[2]) for r in rows], truncated=truncated
    )


__all__ = ["PatientReadings", "patient_readings"]
