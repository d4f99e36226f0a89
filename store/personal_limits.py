"""The personal baselines (`personal_limits`, migration 0145), versioned per patient and kind: the one writer (the
daily recompute of `rules_engine.baselines`, which appends a version only where a baseline changed) and the readers
(the version in force for the rules and the API, the newest for the recompute), and the readings a recompute is
computed from. A version with a NULL centre retires a baseline. The maths is `rules_engine.personal`'s."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from psycopg import Connection
from psycopg.rows import class_row

_IN_FORCE_OF = (
    # One index probe per (patient, kind): the newest version, however many older ones have accumulated.
    "SELECT p.pid AS patient_id, k.kind, l.centre, l.spread, l.n, l.version, "
    "extract(epoch FROM l.window_start)::bigint AS window_start_s, "
    "extract(epoch FROM l.window_end)::bigint AS window_end_s FROM unnest(%s::uuid[]) AS p(pid) CROSS JOIN "
    "unnest(%s::text[]) AS k(kind) CROSS JOIN LATERAL (SELECT * FROM personal_limits WHERE patient_id = p.pid "
    "AND kind = k.kind AND valid_from <= now() ORDER BY version DESC LIMIT 1) AS l"
)
_VERSIONS_IN_FORCE = (
    "SELECT DISTINCT ON (kind) kind, version, centre, spread, n, computed_at, window_start, window_end "
    "FROM personal_limits WHERE patient_id = %s AND valid_from <= now() ORDER BY kind, version DESC"
)
_FIRST_MEASURED = (
    "SELECT p.pid AS patient_id, (SELECT min(f.first_at) FROM unnest(%s::text[]) AS k(kind) CROSS JOIN LATERAL "
    "(SELECT extract(epoch FROM measured_at)::bigint AS first_at FROM readings r WHERE r.patient_id = p.pid "
    "AND r.kind = k.kind ORDER BY measured_at LIMIT 1) AS f) AS first_at FROM unnest(%s::uuid[]) AS p(pid)"
)
_READINGS = (
    "SELECT r.patient_id, r.kind, extract(epoch FROM r.measured_at)::bigint AS measured_at_s, r.value "
    "FROM readings r "
    "WHERE r.patient_id = ANY(%s) AND r.kind = ANY(%s) AND r.measured_at >= %s AND r.measured_at < %s"
)
_NEWEST = (
    "SELECT DISTINCT ON (patient_id, kind) patient_id, kind, centre, spread, yellow_low, yellow_high, version "
    "FROM personal_limits WHERE patient_id = ANY(%s) ORDER BY patient_id, kind, version DESC"
)
_APPEND = (
    "INSERT INTO personal_limits (patient_id, kind, version, valid_from, centre, spread, n, window_start, "
    "window_end, yellow_low, yellow_high) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


@dataclass(frozen=True, slots=True)
class InForce:
    """The version in force of one patient's baseline of one kind, as the rules read it (times in Unix seconds)."""

    patient_id: UUID
    kind: str
    centre: float | None
    """None: the baseline is retired."""
    spread: float | None
    n: int
    version: int
    window_start_s: int | None
    window_end_s: int | None


@dataclass(frozen=True, slots=True)
class Version:
    """A patient's baseline version in force of one kind, as the API shows it."""

    kind: str
    version: int
    centre: float
    spread: float
    n: int
    computed_at: datetime
    window_start: datetime | None
    window_end: datetime | None


@dataclass(frozen=True, slots=True)
class FirstMeasured:
    patient_id: UUID
    first_at: int | None
    """Unix seconds of the patient's first reading of any of the kinds asked for; None: none yet."""


@dataclass(frozen=True, slots=True)
class BaselineReading:
    patient_id: UUID
    kind: str
    measured_at_s: int
    value: float


@dataclass(frozen=True, slots=True)
class Newest:
    """The newest version of one patient's baseline of one kind, whatever its `valid_from`."""

    patient_id: UUID
    kind: str
    centre: float | None
    spread: float | None
    yellow_low: float | None
    yellow_high: float | None
    version: int


class NewVersion(NamedTuple):
    """A version to append, in the INSERT's column order."""

    patient_id: UUID
    kind: str
    version: int
    valid_from: datetime
    centre: float | None
    spread: float | None
    n: int
    window_start: datetime | None
    window_end: datetime | None
    yellow_low: float | None
    yellow_high: float | None


def in_force_of(conn: Connection[Any], patient_ids: Sequence[UUID], kinds: Sequence[str]) -> list[InForce]:
    """The newest valid version per (patient, kind) of these patients and kinds, retired ones included."""
    with conn.cursor(row_factory=class_row(InForce)) as cur:
        return cur.execute(_IN_FORCE_OF, (list(patient_ids), list(kinds))).fetchall()


def versions_in_force(conn: Connection[Any], patient_id: UUID) -> dict[str, Version]:
    """kind → the version in force of the patient's baseline of that kind (retired ones left out)."""
    with conn.cursor(row_factory=class_row(_MaybeVersion)) as cur:
        rows = cur.execute(_VERSIONS_IN_FORCE, (patient_id,)).fetchall()
    return {
        r.kind: Version(r.kind, r.version, r.centre, r.spread, r.n, r.computed_at, r.window_start, r.window_end)
        for r in rows
        if r.centre is not None and r.spread is not None  # a retired baseline has neither (the table's CHECK)
    }


@dataclass(frozen=True, slots=True)
class _MaybeVersion:
    kind: str
    version: int
    centre: float | None
    spread: float | None
    n: int
    computed_at: datetime
    window_start: datetime | None
    window_end: datetime | None


def first_measured(conn: Connection[Any], patient_ids: Sequence[UUID], kinds: Sequence[str]) -> list[FirstMeasured]:
    """When each patient first measured any of `kinds` (what a run-in is counted from)."""
    with conn.cursor(row_factory=class_row(FirstMeasured)) as cur:
        return cur.execute(_FIRST_MEASURED, (list(kinds), list(patient_ids))).fetchall()


def readings_between(
    conn: Connection[Any], patient_ids: Sequence[UUID], kinds: Sequence[str], since: datetime, until: datetime
) -> list[BaselineReading]:
    """The readings of these patients and kinds measured in [since, until)."""
    with conn.cursor(row_factory=class_row(BaselineReading)) as cur:
        return cur.execute(_READINGS, (list(patient_ids), list(kinds), since, until)).fetchall()


def newest_of(conn: Connection[Any], patient_ids: Sequence[UUID]) -> dict[tuple[UUID, str], Newest]:
    """(patient, kind) → the newest version of these patients' baselines."""
    with conn.cursor(row_factory=class_row(Newest)) as cur:
        return {(r.patient_id, r.kind): r for r in cur.execute(_NEWEST, (list(patient_ids),)).fetchall()}


def append_versions(conn: Connection[Any], versions: Sequence[NewVersion]) -> None:
    if versions:
        with conn.cursor() as cur:
            cur.executemany(_APPEND, versions)


__all__ = [
    "BaselineReading",
    "FirstMeasured",
    "InForce",
    "NewVersion",
    "Newest",
    "Version",
    "append_versions",
    "first_measured",
    "in_force_of",
    "newest_of",
    "readings_between",
    "versions_in_force",
]
