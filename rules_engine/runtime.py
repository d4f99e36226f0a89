"""The rules inside the ingest transaction: load the batch's patients' rule inputs and history in a few set-based
queries, evaluate the batch with the pure core (`rules_engine.evaluation.evaluate_patients`, which the offline
replay calls too), and upsert one alarm per patient and rule."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import numpy as np
from psycopg import Connection, sql

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
from store.alarms import mark_back_in_range
from store.settings import Settings
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
    # The rules' queries are many small index probes whose cost estimate grows with the batch's patients; past
    # `jit_above_cost` PostgreSQL compiled the history query on every batch: 120 of its 300 ms at 1 000 patients.
    conn.execute("SET LOCAL jit = off")
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
    patients = _patient_inputs(conn, patient_ids)
    return RuleInputs(
        protocols=tuple(patients[p][0] for p in patient_ids),
        limit_overrides=_overrides(conn, patient_ids, row_of),
        trend_overrides=_trend_overrides(conn, patient_ids, row_of),
        conditions=tuple(tuple(patients[p][1]) for p in patient_ids),
        spo2_scale2=tuple(patients[p][2] for p in patient_ids),
        on_oxygen=tuple(patients[p][3] for p in patient_ids),
        personal=load_personal(conn, patient_ids, row_of),
    )


PATIENT_INPUTS_SQL = (
    "SELECT p.id, p.protocol, coalesce((SELECT array_agg(c.condition) FROM patient_conditions c "
    "WHERE c.patient_id = p.id), '{}'), coalesce(sp.body->>'spo2_scale' = '2', false), "
    "coalesce(jsonb_typeof(sp.body->'oxygen') = 'object', false) "
    "FROM patients p LEFT JOIN self_management_plans sp ON sp.patient_id = p.id AND sp.status = 'active' "
    "WHERE p.id = ANY(%s)"
)
"""Per patient: primary protocol, further conditions, and the active plan's NEWS2 settings (SpO2 scale 2, home
oxygen); the plan's trend settings arrive as `trend_overrides` rows written at activation."""


def _patient_inputs(conn: Connection[Any], patient_ids: list[UUID]) -> dict[UUID, tuple[str, list[str], bool, bool]]:
    rows = conn.execute(PATIENT_INPUTS_SQL, (patient_ids,)).fetchall()
    return {r[0]: (r[1], list(r[2]), bool(r[3]), bool(r[4])) for r in rows}


def _overrides(conn: Connection[Any], patient_ids: list[UUID], row_of: dict[UUID, int]) -> LimitOverrides | None:
    rows = conn.execute(
        sql.SQL("SELECT patient_id, kind, {} FROM threshold_overrides WHERE patient_id = ANY(%s)").format(
            sql.SQL(", ".join(LIMIT_NAMES))
        ),
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
    "SELECT p.row::int4, k.idx::int4, r.measured_at, r.value "
    "FROM unnest(%s::uuid[]) WITH ORDINALITY AS p(pid, row) "
    "CROSS JOIN unnest(%s::text[], %s::int[]) AS k(kind, idx) "
    "CROSS JOIN LATERAL (SELECT measured_at, value FROM readings WHERE patient_id = p.pid "
    "AND kind = k.kind AND measured_at >= %s AND measured_at < %s AND id <> ALL(%s::uuid[]) "
    "ORDER BY measured_at DESC LIMIT %s) AS r"
)
"""The rules' history query (its plan is what bench/rules.py explains). The batch is left out by its reading ids:
ingest COPYs inside a savepoint, so the batch's rows carry a subtransaction's xid, not `pg_current_xact_id()`.
`<> ALL` over a bound array is hashed by PostgreSQL (15+), and the (patient_id, kind, measured_at) index still
drives each lateral scan; the id test is a filter on the few rows it returns.

The upper time bound (`HISTORY_UNTIL_AHEAD` past now, beyond any reading ingest accepts) is what lets the LIMIT
work on a patient who measures often: without it the default partition stays in the plan, PostgreSQL cannot scan
the yearly partitions in time order, and it read and sorted the whole 14-day window per kind (a 1 Hz oximeter:
259 200 rows, 165 ms per batch for that one patient; with the bound 0.2 ms)."""

HISTORY_UNTIL_AHEAD = timedelta(days=1)
"""History ends this far past now: far beyond the 5 minutes ahead of the clock that ingest accepts a reading."""


HISTORY_COPY = sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(sql.SQL(HISTORY_SQL))
"""The history query as binary COPY: read in place by `history_rows`."""


def history_params(patient_ids: Sequence[UUID], earliest: int, batch_ids: Sequence[UUID]) -> tuple[Any, ...]:
    since = datetime.fromtimestamp(earliest, tz=UTC) - timedelta(days=HISTORY_DAYS)
    until = datetime.now(UTC) + HISTORY_UNTIL_AHEAD
    return (list(patient_ids), _HISTORY_KINDS, _HISTORY_KIND_IDX, since, until, list(batch_ids), HISTORY_PER_KIND)


def load_history(
    conn: Connection[Any], patient_ids: list[UUID], earliest: int, batch_ids: Sequence[UUID]
) -> ReadingArrays:
    """Up to HISTORY_PER_KIND newest readings per patient and kind from the last HISTORY_DAYS, batch excluded.

    The batch is left out by its reading ids: ingest's COPY runs in a savepoint, so the batch's rows carry the
    subtransaction's id and an `xmin = pg_current_xact_id()` test would not find them.
    """
    data = bytearray()
    with conn.cursor() as cur:
        # Each (patient, kind) must be read newest first through the index so that the LIMIT ends the scan: a
        # bitmap scan reads the whole window and sorts it, which the planner picks when it expects few rows per
        # patient, and a patient on continuous oximetry has thousands. For this statement only.
        bitmap = cur.execute("SELECT current_setting('enable_bitmapscan')").fetchone()
        cur.execute("SET LOCAL enable_bitmapscan = off")
        # COPY takes no server-side parameters: psycopg binds them client-side, as literals.
        with cur.copy(HISTORY_COPY, history_params(patient_ids, earliest, batch_ids)) as copy:
            for chunk in copy:
                data += chunk
        cur.execute("SELECT set_config('enable_bitmapscan', %s, true)", (bitmap[0] if bitmap else "on",))
    rows = history_rows(bytes(data))
    if not len(rows):
        return ReadingArrays.empty()
    return ReadingArrays.of(
        rows["row"].astype(np.int64) - 1,
        rows["kind"].astype(np.int64),
        epoch_seconds(rows["at"]),
        rows["value"].astype(np.float64),
    )


_PG_EPOCH_US = 946_684_800 * 1_000_000
"""PostgreSQL's binary timestamptz counts microseconds from 2000-01-01 00:00 UTC."""


def epoch_seconds(pg_microseconds: np.ndarray) -> np.ndarray:
    """Binary timestamptz values as whole Unix seconds, floored as the batch's own times are (`int(timestamp)`).
    Read raw rather than by `extract(epoch …)::int8` in the query: `extract` yields numeric, and converting it
    cost a sixth of the history query on a 2 500-patient batch."""
    return np.floor_divide(pg_microseconds.astype(np.int64) + _PG_EPOCH_US, 1_000_000)


_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_HISTORY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("row_len", ">i4"),
        ("row", ">i4"),
        ("kind_len", ">i4"),
        ("kind", ">i4"),
        ("at_len", ">i4"),
        ("at", ">i8"),
        ("value_len", ">i4"),
        ("value", ">f8"),
    ]
)
"""One history row in PostgreSQL's binary COPY format: four NOT NULL fixed-width fields, each after its length
(`at` is the binary timestamptz, `epoch_seconds` converts it)."""


def history_rows(data: bytes) -> np.ndarray:
    """The history query's binary COPY output as a structured array (fields `row`, `kind`, `at`, `value`).

    Every field is fixed-width and never NULL, so the rows are one numpy record type read in place — a Python
    tuple per row cost more than the query on a batch of many patients. The layout is checked, not assumed."""
    if not data.startswith(_COPY_SIGNATURE) or len(data) < 21:
        raise ValueError("history: not PostgreSQL binary COPY output")
    extension = int.from_bytes(data[15:19], "big")
    body = data[19 + extension : -2]
    if data[-2:] != b"\xff\xff" or len(body) % _HISTORY_ROW.itemsize:
        raise ValueError("history: unexpected binary COPY layout")
    rows = np.frombuffer(body, dtype=_HISTORY_ROW)
    widths = (rows["fields"], rows["row_len"], rows["kind_len"], rows["at_len"], rows["value_len"])
    if len(rows) and not all(np.all(w == n) for w, n in zip(widths, (4, 4, 4, 8, 8), strict=True)):
        raise ValueError("history: unexpected binary COPY layout")
    return rows


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
