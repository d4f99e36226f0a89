"""The personal baselines (`personal_limits`, migration 0145; the rows are `store.personal_limits`'): the daily
recompute the rules scheduler's leader runs, and the current versions as the rules' inputs. The maths is
`rules_engine.personal`'s.

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
from store import personal_limits
from store.patients import active_ids
from store.personal_limits import NewVersion
from vitals import KINDS, Kind

CHUNK = 500
"""Patients per recompute query: bounds the readings held in memory at once."""
_KINDS = [k.value for k in BASELINE_KINDS]
_KIND_BY_NAME = {k.value: KIND_INDEX[k] for k in Kind}


def load_personal(conn: Connection[Any], patient_ids: Sequence[UUID], row_of: dict[UUID, int]) -> PersonalBaselines:
    """The newest valid version per (patient, kind) of the given patients, as rows for `build_patient_rules`."""
    rows = personal_limits.in_force_of(conn, patient_ids, _KINDS)
    current = [r for r in rows if r.centre is not None and r.kind in _KIND_BY_NAME]
    if not current:
        return PersonalBaselines.empty()
    return PersonalBaselines.of(
        [row_of[r.patient_id] for r in current],
        [_KIND_BY_NAME[r.kind] for r in current],
        [float(r.centre) for r in current if r.centre is not None],
        [float(r.spread or 0.0) for r in current],
        [int(r.n) for r in current],
        [int(r.window_start_s or 0) for r in current],
        [int(r.window_end_s or 0) for r in current],
        [int(r.version) for r in current],
    )


def recompute_personal_limits(conn: Connection[Any], at: datetime | None = None) -> int:
    """Recompute every active patient's baselines at `at` (default now); returns the versions written."""
    at = at or datetime.now(UTC)
    patients = active_ids(conn)
    written = 0
    for i in range(0, len(patients), CHUNK):
        with conn.transaction():
            written += _recompute(conn, patients[i : i + CHUNK], at)
    return written


def _recompute(conn: Connection[Any], patient_ids: list[UUID], at: datetime) -> int:
    row_of = {pid: i for i, pid in enumerate(patient_ids)}
    at_s = int(at.timestamp())
    since = np.full(len(patient_ids), at_s, dtype=np.int64)
    for first in personal_limits.first_measured(conn, patient_ids, _KINDS):
        if first.first_at is not None:
            since[row_of[first.patient_id]] = int(first.first_at)
    earliest = datetime.fromtimestamp(at_s - (WINDOW_DAYS + LAG_DAYS) * DAY_S, tz=UTC)
    rows = personal_limits.readings_between(conn, patient_ids, _KINDS, earliest, at)
    readings = ReadingArrays.of(
        [row_of[r.patient_id] for r in rows],
        [_KIND_BY_NAME[r.kind] for r in rows],
        np.array([r.measured_at_s for r in rows], dtype=np.int64),
        [float(r.value) for r in rows],
    )
    found = compute_baselines(readings, at_s, since)
    low, high = personal_band(found.centre, found.spread, found.kind_idx)
    current = personal_limits.newest_of(conn, patient_ids)
    new: list[NewVersion] = []
    seen: set[tuple[UUID, str]] = set()
    for j in range(len(found)):
        pid, kind = patient_ids[int(found.patient_row[j])], KIND_ORDER[int(found.kind_idx[j])]
        key = (pid, kind.value)
        seen.add(key)
        centre, spread, yellow_low, yellow_high = (
            float(found.centre[j]),
            float(found.spread[j]),
            _num(low[j]),
            _num(high[j]),
        )
        before = current.get(key)
        if before is not None and _same(
            kind,
            (before.centre, before.spread, before.yellow_low, before.yellow_high),
            (centre, spread, yellow_low, yellow_high),
        ):
            continue
        new.append(
            NewVersion(
                pid,
                kind.value,
                int(before.version) + 1 if before else 1,
                at,
                centre,
                spread,
                int(found.n[j]),
                datetime.fromtimestamp(int(found.window_start[j]), tz=UTC),
                datetime.fromtimestamp(int(found.window_end[j]), tz=UTC),
                yellow_low,
                yellow_high,
            )
        )
    for (pid, kind_name), before in current.items():
        if (pid, kind_name) not in seen and before.centre is not None:
            new.append(NewVersion(pid, kind_name, int(before.version) + 1, at, None, None, 0, None, None, None, None))
    personal_limits.append_versions(conn, new)
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
