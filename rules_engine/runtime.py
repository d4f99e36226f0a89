"""The rules inside the ingest transaction: load the batch's patients' limits and history in a few set-based
queries, evaluate the batch as arrays, and upsert one alarm per patient and rule."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import numpy as np
from psycopg import Connection

from rules_engine import metrics
from rules_engine.alarms import AlarmUpsert, mark_back_in_range, upsert_alarms
from rules_engine.baselines import load_personal
from rules_engine.candidates import evaluate_batch
from rules_engine.kinds_index import KIND_INDEX, KIND_ORDER
from rules_engine.profiles import (
    LIMIT_NAMES,
    LimitOverrides,
    TrendOverrides,
    build_patient_rules,
    limit_column,
    trend_column,
)
from rules_engine.readings import ReadingArrays
from rules_engine.severity import Severity
from vitals import Kind

HISTORY_DAYS = 14
HISTORY_PER_KIND = 100
"""Newest readings per patient and kind fetched as history; bounds the cost for patients who measure often."""
_HISTORY_KINDS: list[str] = [
    k.value
    for k in (
        Kind.BODY_WEIGHT,
        Kind.SPO2,
        Kind.PULSE_RATE,
        Kind.HEART_RATE,
        Kind.BP_SYSTOLIC,
        Kind.BODY_TEMPERATURE,
        Kind.RESP_RATE,
    )
]


_HISTORY_KIND_IDX = [KIND_INDEX[Kind(k)] for k in _HISTORY_KINDS]
_KIND_BY_NAME: dict[str, int] = {kind.value: i for kind, i in KIND_INDEX.items()}


class StoredColumns(Protocol):
    """Readings just inserted, column by column (ingest's `StoredBatch`)."""

    @property
    def ids(self) -> Sequence[UUID]: ...
    @property
    def patient_ids(self) -> Sequence[UUID]: ...
    @property
    def kinds(self) -> Sequence[str]: ...
    @property
    def values(self) -> Sequence[float]: ...
    @property
    def measured_at(self) -> Sequence[datetime]: ...
    def __len__(self) -> int: ...


def evaluate_stored(conn: Connection[Any], stored: StoredColumns) -> list[UUID]:
    """Evaluate readings just inserted in this transaction; returns the ids of alarms opened or updated."""
    if not len(stored):
        return []
    started = time.perf_counter()
    changed = _evaluate(conn, stored)
    metrics.EVALUATION_SECONDS.observe(time.perf_counter() - started)
    metrics.EVALUATIONS.inc()
    metrics.READINGS_EVALUATED.inc(len(stored))
    return changed


def _evaluate(conn: Connection[Any], stored: StoredColumns) -> list[UUID]:
    rows_of_readings, patient_ids = _patient_rows(stored.patient_ids)
    row_of = {pid: i for i, pid in enumerate(patient_ids)}
    protocols = _protocols(conn, patient_ids)
    overrides = _overrides(conn, patient_ids, row_of)
    trends = _trend_overrides(conn, patient_ids, row_of)
    personal = load_personal(conn, patient_ids, row_of)
    rules = build_patient_rules(np.array([protocols[p] for p in patient_ids]), overrides, trends, personal=personal)
    times = np.array([m.timestamp() for m in stored.measured_at], dtype=np.float64).astype(np.int64)
    kinds = stored.kinds
    batch = ReadingArrays.of(rows_of_readings, [_KIND_BY_NAME[k] for k in kinds], times, stored.values)
    history = _history(conn, patient_ids, row_of, int(times.min()))
    result = evaluate_batch(batch, rules, history)
    ids, measured_at, values = stored.ids, stored.measured_at, stored.values
    upserts = [
        AlarmUpsert(
            patient_id=patient_ids[c.patient_row],
            rule=c.rule,
            kind=c.kind.value if c.kind else None,
            severity=c.severity,
            value=c.value,
            limit=c.limit,
            count=c.count,
            reading_id=ids[c.reading_index] if c.reading_index is not None else None,
            measured_at=measured_at[c.reading_index] if c.reading_index is not None else c.window_end,
            window_start=c.window_start,
            window_end=c.window_end,
            explanation_nb=c.explanation_nb,
            explanation_en=c.explanation_en,
            details=c.details,
        )
        for c in result.candidates
    ]
    in_range = np.flatnonzero(result.severity == Severity.NONE)
    latest_in_range = {(rows_of_readings[i], kinds[i]): values[i] for i in in_range.tolist()}
    mark_back_in_range(conn, [(patient_ids[row], k, v) for (row, k), v in latest_in_range.items()])
    return upsert_alarms(conn, upserts)


def _patient_rows(patient_ids: Sequence[UUID]) -> tuple[list[int], list[UUID]]:
    """Each reading's patient row and the distinct patients in order of first appearance. A message's readings
    share one patient object, so an identity check spares hashing a UUID (a Python-level hash) per reading."""
    rows: list[int] = []
    distinct: dict[UUID, int] = {}
    last: UUID | None = None
    last_row = -1
    for pid in patient_ids:
        if pid is not last:
            last = pid
            last_row = distinct.setdefault(pid, len(distinct))
        rows.append(last_row)
    return rows, list(distinct)


def _protocols(conn: Connection[Any], patient_ids: list[UUID]) -> dict[UUID, str]:
    rows = conn.execute("SELECT id, protocol FROM patients WHERE id = ANY(%s)", (patient_ids,)).fetchall()
    return {r[0]: r[1] for r in rows}


def _overrides(conn: Connection[Any], patient_ids: list[UUID], row_of: dict[UUID, int]) -> LimitOverrides | None:
    rows = conn.execute(
        f"SELECT patient_id, kind, {', '.join(LIMIT_NAMES)} FROM threshold_overrides WHERE patient_id = ANY(%s)",
        (patient_ids,),
    ).fetchall()
    cells = [
        (row_of[r[0]], KIND_INDEX[Kind(r[1])], limit_column(name), float(value))
        for r in rows
        for name, value in zip(LIMIT_NAMES, r[2:], strict=True)
        if value is not None
    ]
    if not cells:
        return None
    return LimitOverrides.of(*(np.array([c[i] for c in cells]) for i in range(4)))


def _trend_overrides(conn: Connection[Any], patient_ids: list[UUID], row_of: dict[UUID, int]) -> TrendOverrides | None:
    """The patients' own trend settings (weight gain, baseline drift); NaN switches a trend rule off."""
    rows = conn.execute(
        "SELECT patient_id, setting, value FROM trend_overrides WHERE patient_id = ANY(%s)", (patient_ids,)
    ).fetchall()
    if not rows:
        return None
    return TrendOverrides.of(
        [row_of[r[0]] for r in rows], [trend_column(r[1]) for r in rows], [float(r[2]) for r in rows]
    )


HISTORY_SQL = (
    "SELECT p.row, k.idx, extract(epoch FROM r.measured_at)::bigint, r.value "
    "FROM unnest(%s::uuid[]) WITH ORDINALITY AS p(pid, row) "
    "CROSS JOIN unnest(%s::text[], %s::int[]) AS k(kind, idx) "
    "CROSS JOIN LATERAL (SELECT measured_at, value FROM readings WHERE patient_id = p.pid "
    "AND kind = k.kind AND measured_at >= %s AND NOT (xmin = pg_current_xact_id()::xid) "
    "ORDER BY measured_at DESC LIMIT %s) AS r"
)
"""The rules' history query (its plan is what bench/rules.py explains)."""


def history_params(patient_ids: Sequence[UUID], earliest: int) -> tuple[Any, ...]:
    since = datetime.fromtimestamp(earliest, tz=UTC) - timedelta(days=HISTORY_DAYS)
    return (list(patient_ids), _HISTORY_KINDS, _HISTORY_KIND_IDX, since, HISTORY_PER_KIND)


def _history(conn: Connection[Any], patient_ids: list[UUID], row_of: dict[UUID, int], earliest: int) -> ReadingArrays:
    """Up to HISTORY_PER_KIND newest readings per patient and kind from the last HISTORY_DAYS, batch excluded.

    The batch was inserted by this very transaction, so its rows are the ones whose xmin is our transaction id.
    """
    rows = conn.execute(HISTORY_SQL, history_params(patient_ids, earliest)).fetchall()
    if not rows:
        return ReadingArrays.empty()
    columns = np.array(rows, dtype=np.float64)
    return ReadingArrays.of(
        columns[:, 0].astype(np.int64) - 1,
        columns[:, 1].astype(np.int64),
        columns[:, 2].astype(np.int64),
        columns[:, 3],
    )


__all__ = ["KIND_ORDER", "evaluate_stored"]
