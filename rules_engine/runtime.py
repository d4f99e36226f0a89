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
from rules_engine.candidates import evaluate_batch
from rules_engine.kinds_index import KIND_INDEX, KIND_ORDER
from rules_engine.profiles import LIMIT_NAMES, LimitOverrides, build_patient_rules, limit_column
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


class StoredReadingLike(Protocol):
    @property
    def id(self) -> UUID: ...
    @property
    def patient_id(self) -> UUID: ...
    @property
    def kind(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def measured_at(self) -> Any: ...


def evaluate_stored(conn: Connection[Any], stored: Sequence[StoredReadingLike]) -> list[UUID]:
    """Evaluate readings just inserted in this transaction; returns the ids of alarms opened or updated."""
    if not stored:
        return []
    started = time.perf_counter()
    changed = _evaluate(conn, stored)
    metrics.EVALUATION_SECONDS.observe(time.perf_counter() - started)
    metrics.EVALUATIONS.inc()
    metrics.READINGS_EVALUATED.inc(len(stored))
    return changed


def _evaluate(conn: Connection[Any], stored: Sequence[StoredReadingLike]) -> list[UUID]:
    patient_ids = sorted({r.patient_id for r in stored}, key=str)
    row_of = {pid: i for i, pid in enumerate(patient_ids)}
    protocols = _protocols(conn, patient_ids)
    overrides = _overrides(conn, patient_ids, row_of)
    rules = build_patient_rules(np.array([protocols[p] for p in patient_ids]), overrides)
    times = np.array([r.measured_at.timestamp() for r in stored], dtype=np.float64).astype(np.int64)
    batch = ReadingArrays.of(
        [row_of[r.patient_id] for r in stored],
        [KIND_INDEX[Kind(r.kind)] for r in stored],
        times,
        [r.value for r in stored],
    )
    history = _history(conn, patient_ids, row_of, int(times.min()))
    result = evaluate_batch(batch, rules, history)
    upserts = [
        AlarmUpsert(
            patient_id=patient_ids[c.patient_row],
            rule=c.rule,
            kind=c.kind.value if c.kind else None,
            severity=c.severity,
            value=c.value,
            limit=c.limit,
            count=c.count,
            reading_id=stored[c.reading_index].id if c.reading_index is not None else None,
            measured_at=stored[c.reading_index].measured_at if c.reading_index is not None else c.window_end,
            window_start=c.window_start,
            window_end=c.window_end,
            explanation_nb=c.explanation_nb,
            explanation_en=c.explanation_en,
            details=c.details,
        )
        for c in result.candidates
    ]
    in_range = np.flatnonzero(result.severity == Severity.NONE)
    latest_in_range = {(stored[i].patient_id, stored[i].kind): stored[i].value for i in in_range.tolist()}
    mark_back_in_range(conn, [(p, k, v) for (p, k), v in latest_in_range.items()])
    return upsert_alarms(conn, upserts)


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


def _history(conn: Connection[Any], patient_ids: list[UUID], row_of: dict[UUID, int], earliest: int) -> ReadingArrays:
    """Up to HISTORY_PER_KIND newest readings per patient and kind from the last HISTORY_DAYS, batch excluded.

    The batch was inserted by this very transaction, so its rows are the ones whose xmin is our transaction id.
    """
    since = datetime.fromtimestamp(earliest, tz=UTC) - timedelta(days=HISTORY_DAYS)
    rows = conn.execute(
        "SELECT p.row, k.idx, extract(epoch FROM r.measured_at)::bigint, r.value "
        "FROM unnest(%s::uuid[]) WITH ORDINALITY AS p(pid, row) "
        "CROSS JOIN unnest(%s::text[], %s::int[]) AS k(kind, idx) "
        "CROSS JOIN LATERAL (SELECT measured_at, value FROM readings WHERE patient_id = p.pid "
        "AND kind = k.kind AND measured_at >= %s AND NOT (xmin = pg_current_xact_id()::xid) "
        "ORDER BY measured_at DESC LIMIT %s) AS r",
        (patient_ids, _HISTORY_KINDS, _HISTORY_KIND_IDX, since, HISTORY_PER_KIND),
    ).fetchall()
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
