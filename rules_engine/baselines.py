"""The personal baselines' table (`personal_limits`, migration 0145): the daily recompute the rules scheduler's
leader runs, and the loading of the current versions for the rules. The maths is `rules_engine.personal`'s.

A new version is appended only where a baseline changed (centre, spread or band at the kind's displayed precision),
so a stable patient keeps one version for weeks; where a baseline can no longer be computed (too few readings in
the window) a version with a NULL centre retires it and the protocol's limits apply again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import numpy as np
from psycopg import Connection

from rules_engine.kinds_index import KIND_INDEX, KIND_ORDER
from rules_engine.personal import (
    BASELINE_KINDS,
    DAY_S,
    LAG_DAYS,
    WINDOW_DAYS,
    PersonalBaselines,
    compute_baselines,
    personal_band,
)
from rules_engine.readings import ReadingArrays
from vitals import KINDS, Kind

CHUNK = 500
"""Patients per recompute query: bounds the readings held in memory at once."""
_KINDS = [k.value for k in BASELINE_KINDS]
_KIND_BY_NAME = {k.value: KIND_INDEX[k] for k in Kind}


def load_personal(conn: Connection[Any], patient_ids: Sequence[UUID], row_of: dict[UUID, int]) -> PersonalBaselines:
    """The newest valid version per (patient, kind) of the given patients, as rows for `build_patient_rules`."""
    # One index probe per (patient, kind): the newest version, however many older ones have accumulated.
    rows = conn.execute(
        "SELECT p.pid, k.kind, l.centre, l.spread, l.n, l.version, extract(epoch FROM l.window_start)::bigint, "
        "extract(epoch FROM l.window_end)::bigint FROM unnest(%s::uuid[]) AS p(pid) CROSS JOIN unnest(%s::text[]) "
        "AS k(kind) CROSS JOIN LATERAL (SELECT * FROM personal_limits WHERE patient_id = p.pid AND kind = k.kind "
        "AND valid_from <= now() ORDER BY version DESC LIMIT 1) AS l",
        (list(patient_ids), _KINDS),
    ).fetchall()
    current = [r for r in rows if r[2] is not None and r[1] in _KIND_BY_NAME]
    if not current:
        return PersonalBaselines.empty()
    return PersonalBaselines.of(
        [row_of[r[0]] for r in current],
        [_KIND_BY_NAME[r[1]] for r in current],
        [float(r[2]) for r in current],
        [float(r[3]) for r in current],
        [int(r[4]) for r in current],
        [int(r[6] or 0) for r in current],
        [int(r[7] or 0) for r in current],
        [int(r[5]) for r in current],
    )


def current_versions(conn: Connection[Any], patient_id: UUID) -> dict[str, tuple[Any, ...]]:
    """kind → (version, centre, spread, n, computed_at, window_start, window_end) of the version in force."""
    rows = conn.execute(
        "SELECT DISTINCT ON (kind) kind, version, centre, spread, n, computed_at, window_start, window_end "
        "FROM personal_limits WHERE patient_id = %s AND valid_from <= now() ORDER BY kind, version DESC",
        (patient_id,),
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows if r[2] is not None}


def recompute_personal_limits(conn: Connection[Any], at: datetime | None = None) -> int:
    """Recompute every active patient's baselines at `at` (default now); returns the versions written."""
    at = at or datetime.now(UTC)
    patients = [r[0] for r in conn.execute("SELECT id FROM patients WHERE active ORDER BY id").fetchall()]
    written = 0
    for i in range(0, len(patients), CHUNK):
        with conn.transaction():
            written += _recompute(conn, patients[i : i + CHUNK], at)
    return written


def _recompute(conn: Connection[Any], patient_ids: list[UUID], at: datetime) -> int:
    row_of = {pid: i for i, pid in enumerate(patient_ids)}
    at_s = int(at.timestamp())
    since_rows = conn.execute(
        "SELECT p.pid, (SELECT min(f.first_at) FROM unnest(%s::text[]) AS k(kind) CROSS JOIN LATERAL "
        "(SELECT extract(epoch FROM measured_at)::bigint AS first_at FROM readings r WHERE r.patient_id = p.pid "
        "AND r.kind = k.kind ORDER BY measured_at LIMIT 1) AS f) FROM unnest(%s::uuid[]) AS p(pid)",
        (_KINDS, patient_ids),
    ).fetchall()
    since = np.full(len(patient_ids), at_s, dtype=np.int64)
    for pid, first in since_rows:
        if first is not None:
            since[row_of[pid]] = int(first)
    earliest = datetime.fromtimestamp(at_s - (WINDOW_DAYS + LAG_DAYS) * DAY_S, tz=UTC)
    rows = conn.execute(
        "SELECT r.patient_id, r.kind, extract(epoch FROM r.measured_at)::bigint, r.value FROM readings r "
        "WHERE r.patient_id = ANY(%s) AND r.kind = ANY(%s) AND r.measured_at >= %s AND r.measured_at < %s",
        (patient_ids, _KINDS, earliest, at),
    ).fetchall()
    readings = ReadingArrays.of(
        [row_of[r[0]] for r in rows],
        [_KIND_BY_NAME[r[1]] for r in rows],
        np.array([r[2] for r in rows], dtype=np.int64),
        [float(r[3]) for r in rows],
    )
    found = compute_baselines(readings, at_s, since)
    low, high = personal_band(found.centre, found.spread, found.kind_idx)
    current = {
        (r[0], r[1]): (r[2], r[3], r[4], r[5], int(r[6]))
        for r in conn.execute(
            "SELECT DISTINCT ON (patient_id, kind) patient_id, kind, centre, spread, yellow_low, yellow_high, version "
            "FROM personal_limits WHERE patient_id = ANY(%s) ORDER BY patient_id, kind, version DESC",
            (patient_ids,),
        ).fetchall()
    }
    new: list[tuple[Any, ...]] = []
    seen: set[tuple[UUID, str]] = set()
    for j in range(len(found)):
        pid, kind = patient_ids[int(found.patient_row[j])], KIND_ORDER[int(found.kind_idx[j])]
        key = (pid, kind.value)
        seen.add(key)
        values = (float(found.centre[j]), float(found.spread[j]), _num(low[j]), _num(high[j]))
        before = current.get(key)
        if before is not None and _same(kind, before[:4], values):
            continue
        version = before[4] + 1 if before else 1
        new.append(
            (
                pid,
                kind.value,
                version,
                at,
                *values[:2],
                int(found.n[j]),
                datetime.fromtimestamp(int(found.window_start[j]), tz=UTC),
                datetime.fromtimestamp(int(found.window_end[j]), tz=UTC),
                *values[2:],
            )
        )
    for key, before in current.items():
        if key not in seen and before[0] is not None:
            new.append((*key, before[4] + 1, at, None, None, 0, None, None, None, None))
    if new:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO personal_limits (patient_id, kind, version, valid_from, centre, spread, n, window_start, "
                "window_end, yellow_low, yellow_high) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                new,
            )
    return len(new)


def _num(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _same(kind: Kind, before: tuple[Any, ...], after: tuple[float | None, ...]) -> bool:
    """Equal at one decimal more than the kind displays (what a nurse could see change)."""
    digits = KINDS[kind].decimals + 1
    for a, b in zip(before, after, strict=True):
        if (a is None) != (b is None):
            return False
        if a is not None and b is not None and round(float(a), digits) != round(float(b), digits):
            return False
    return True
