"""The rules inside the ingest transaction: load the batch's patients' rule inputs and history in a few set-based
queries (the rows are `store.rules_inputs`', `store.thresholds`', `store.personal_limits`' and
`store.repeat_requests`'), evaluate the batch with the pure core (`rules_engine.evaluation.evaluate_patients`, which
the offline replay calls too), and upsert one alarm per patient and rule."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import numpy as np
from psycopg import Connection

from rules_engine import metrics, repeat_store
from rules_engine.alarms import AlarmUpsert, upsert_alarms
from rules_engine.baselines import load_personal
from rules_engine.candidates import AlarmCandidate
from rules_engine.evaluation import HISTORY_DAYS, HISTORY_KINDS, HISTORY_PER_KIND, RuleInputs, evaluate_patients
from rules_engine.kinds_index import KIND_INDEX, KIND_ORDER
from rules_engine.profiles import LIMIT_NAMES, LimitOverrides, TrendOverrides, limit_column, trend_column
from rules_engine.readings import ReadingArrays
from rules_engine.repeats import awaits_repeat, settle_repeats
from rules_engine.severity import Severity
from store import rules_inputs
from store.alarms import mark_back_in_range
from store.rules_inputs import patient_inputs
from store.settings import Settings
from store.thresholds import limits_of, trends_of
from vitals import Kind

_HISTORY_KINDS: list[str] = [k.value for k in HISTORY_KINDS]
_HISTORY_KIND_IDX = [KIND_INDEX[k] for k in HISTORY_KINDS]
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


REPEAT_TIMEOUT_MINUTES: int = Settings.model_fields["repeat_timeout_minutes"].default


def evaluate_stored(
    conn: Connection[Any], stored: StoredColumns, repeat_timeout_minutes: int = REPEAT_TIMEOUT_MINUTES
) -> list[UUID]:
    """Evaluate readings just inserted in this transaction; returns the ids of alarms opened or updated. A yellow
    reading that asks for a repeat waits `repeat_timeout_minutes` for it (`Settings.repeat_timeout_minutes`)."""
    if not len(stored):
        return []
    started = time.perf_counter()
    changed = _evaluate(conn, stored, repeat_timeout_minutes)
    metrics.EVALUATION_SECONDS.observe(time.perf_counter() - started)
    metrics.EVALUATIONS.inc()
    metrics.READINGS_EVALUATED.inc(len(stored))
    return changed


def _evaluate(conn: Connection[Any], stored: StoredColumns, timeout: int) -> list[UUID]:
    rules_inputs.disable_jit(conn)
    rows_of_readings, patient_ids = _patient_rows(stored.patient_ids)
    row_of = {pid: i for i, pid in enumerate(patient_ids)}
    inputs = load_rule_inputs(conn, patient_ids)
    times = np.array([m.timestamp() for m in stored.measured_at], dtype=np.float64).astype(np.int64)
    kinds = stored.kinds
    batch = ReadingArrays.of(rows_of_readings, [_KIND_BY_NAME[k] for k in kinds], times, stored.values)
    history = load_history(conn, patient_ids, int(times.min()), stored.ids)
    result = evaluate_patients(inputs, batch, history)
    ids, measured_at, values = stored.ids, stored.measured_at, stored.values

    def upsert_of(c: AlarmCandidate) -> AlarmUpsert:
        return AlarmUpsert(
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

    # Artefacts: a single yellow reading asks for a repeat instead of an alarm (rules_engine/repeats.py).
    waiting = repeat_store.load_waiting(conn, patient_ids, row_of)
    awaiting = sorted({c.rule for c in result.candidates if awaits_repeat(c)})
    settled = settle_repeats(
        batch,
        result,
        waiting,
        repeat_store.open_alarm_keys(conn, patient_ids, row_of, awaiting),
        timeout_minutes=timeout,
        now=int(time.time()),
    )
    expired = repeat_store.record(conn, settled, upsert_of, patient_ids, ids, values, timeout)
    upserts = [upsert_of(c) for c in settled.alarms]
    in_range = np.flatnonzero(result.severity == Severity.NONE)
    latest_in_range = {(rows_of_readings[i], kinds[i]): values[i] for i in in_range.tolist()}
    mark_back_in_range(conn, [(patient_ids[row], k, v) for (row, k), v in latest_in_range.items()], "ingest")
    changed = upsert_alarms(conn, upserts, "ingest")
    if settled.decisions:
        repeat_store.link_alarms(conn, patient_ids)
    return expired + changed


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


def load_rule_inputs(conn: Connection[Any], patient_ids: list[UUID]) -> RuleInputs:
    """The rule inputs of these patients, row i for `patient_ids[i]`, in a few set-based queries."""
    row_of = {pid: i for i, pid in enumerate(patient_ids)}
    patients = patient_inputs(conn, patient_ids)
    return RuleInputs(
        protocols=tuple(patients[p].protocol for p in patient_ids),
        limit_overrides=_overrides(conn, patient_ids, row_of),
        trend_overrides=_trend_overrides(conn, patient_ids, row_of),
        conditions=tuple(tuple(patients[p].conditions) for p in patient_ids),
        spo2_scale2=tuple(bool(patients[p].spo2_scale2) for p in patient_ids),
        on_oxygen=tuple(bool(patients[p].on_oxygen) for p in patient_ids),
        personal=load_personal(conn, patient_ids, row_of),
    )


def _overrides(conn: Connection[Any], patient_ids: list[UUID], row_of: dict[UUID, int]) -> LimitOverrides | None:
    cells = [
        (row_of[r.patient_id], KIND_INDEX[Kind(r.kind)], limit_column(name), float(value))
        for r in limits_of(conn, patient_ids)
        for name, value in zip(LIMIT_NAMES, r.limits, strict=True)
        if value is not None
    ]
    if not cells:
        return None
    return LimitOverrides.of(*(np.array([c[i] for c in cells]) for i in range(4)))


def _trend_overrides(conn: Connection[Any], patient_ids: list[UUID], row_of: dict[UUID, int]) -> TrendOverrides | None:
    """The patients' own trend settings (weight gain, baseline drift); NaN switches a trend rule off."""
    rows = trends_of(conn, patient_ids)
    if not rows:
        return None
    return TrendOverrides.of(
        [row_of[r.patient_id] for r in rows], [trend_column(r.setting) for r in rows], [float(r.value) for r in rows]
    )


def history_params(patient_ids: Sequence[UUID], earliest: int, batch_ids: Sequence[UUID]) -> tuple[Any, ...]:
    """The history query's parameters (`store.rules_inputs.HISTORY_SQL`) for a batch whose earliest reading was
    measured at `earliest` (Unix seconds): the rules' kinds, `HISTORY_DAYS` back, `HISTORY_PER_KIND` per kind."""
    since = datetime.fromtimestamp(earliest, tz=UTC) - timedelta(days=HISTORY_DAYS)
    return rules_inputs.history_params(
        patient_ids, _HISTORY_KINDS, _HISTORY_KIND_IDX, since, batch_ids, HISTORY_PER_KIND
    )


def load_history(
    conn: Connection[Any], patient_ids: list[UUID], earliest: int, batch_ids: Sequence[UUID]
) -> ReadingArrays:
    """Up to HISTORY_PER_KIND newest readings per patient and kind from the last HISTORY_DAYS, batch excluded.

    The batch is left out by its reading ids: ingest's COPY runs in a savepoint, so the batch's rows carry the
    subtransaction's id and an `xmin = pg_current_xact_id()` test would not find them.
    """
    columns = rules_inputs.load_history(conn, history_params(patient_ids, earliest, batch_ids))
    if not len(columns.patient_row):
        return ReadingArrays.empty()
    return ReadingArrays.of(*columns)


def rules_hook(settings: Settings) -> Callable[[Connection[Any], StoredColumns], list[UUID]]:
    """The rules as ingest runs them, with the settings it was started with."""
    return functools.partial(evaluate_stored, repeat_timeout_minutes=settings.repeat_timeout_minutes)


__all__ = [
    "HISTORY_DAYS",
    "HISTORY_PER_KIND",
    "KIND_ORDER",
    "REPEAT_TIMEOUT_MINUTES",
    "evaluate_stored",
    "load_history",
    "load_rule_inputs",
    "rules_hook",
]
