"""What the rules read in the ingest transaction (`rules_engine.runtime`): each batch patient's rule inputs (protocol,
conditions, the active plan's NEWS2 settings) and the history of their readings, read through binary COPY into
numpy columns. Read-only; the tables are owned elsewhere (`store.patients`, `store.conditions`, `store.plans`,
`store.readings`; the patients' own limits are `store.thresholds`', their baselines `store.personal_limits`').
Which kinds, how many readings and how many days the rules want is `rules_engine.evaluation`'s to say."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

import numpy as np
from numpy.typing import NDArray
from psycopg import Connection, sql
from psycopg.rows import class_row

PATIENT_INPUTS_SQL = (
    "SELECT p.id AS patient_id, p.protocol, coalesce((SELECT array_agg(c.condition) FROM patient_conditions c "
    "WHERE c.patient_id = p.id), '{}') AS conditions, coalesce(sp.body->>'spo2_scale' = '2', false) AS spo2_scale2, "
    "coalesce(jsonb_typeof(sp.body->'oxygen') = 'object', false) AS on_oxygen "
    "FROM patients p LEFT JOIN self_management_plans sp ON sp.patient_id = p.id AND sp.status = 'active' "
    "WHERE p.id = ANY(%s)"
)
"""Per patient: primary protocol, further conditions, and the active plan's NEWS2 settings (SpO2 scale 2, home
oxygen); the plan's trend settings arrive as `trend_overrides` rows written at activation."""


@dataclass(frozen=True, slots=True)
class PatientInputs:
    patient_id: UUID
    protocol: str
    conditions: list[str]
    spo2_scale2: bool
    on_oxygen: bool


def patient_inputs(conn: Connection[Any], patient_ids: Sequence[UUID]) -> dict[UUID, PatientInputs]:
    """patient id → the patient's rule inputs, for the patients that exist."""
    with conn.cursor(row_factory=class_row(PatientInputs)) as cur:
        return {r.patient_id: r for r in cur.execute(PATIENT_INPUTS_SQL, (list(patient_ids),)).fetchall()}


def disable_jit(conn: Connection[Any]) -> None:
    """JIT off until the transaction ends. The rules' queries are many small index probes whose cost estimate grows
    with the batch's patients; past `jit_above_cost` PostgreSQL compiled the history query on every batch: 120 of
    its 300 ms at 1 000 patients."""
    conn.execute("SET LOCAL jit = off")


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


def history_params(
    patient_ids: Sequence[UUID],
    kinds: Sequence[str],
    kind_idx: Sequence[int],
    since: datetime,
    batch_ids: Sequence[UUID],
    per_kind: int,
) -> tuple[Any, ...]:
    """`HISTORY_SQL`'s parameters: up to `per_kind` newest readings per patient and kind (`kinds`, each reported
    as its `kind_idx`) measured from `since`, the readings `batch_ids` left out."""
    until = datetime.now(UTC) + HISTORY_UNTIL_AHEAD
    return (list(patient_ids), list(kinds), list(kind_idx), since, until, list(batch_ids), per_kind)


class HistoryColumns(NamedTuple):
    """The history, column by column: row i of each array is one reading."""

    patient_row: NDArray[np.int64]
    """0-based position of the reading's patient in the `patient_ids` asked for."""
    kind_idx: NDArray[np.int64]
    measured_at: NDArray[np.int64]
    """Unix seconds."""
    value: NDArray[np.float64]


def load_history(conn: Connection[Any], params: tuple[Any, ...]) -> HistoryColumns:
    """The history query (`history_params`) read through binary COPY into numpy columns."""
    data = bytearray()
    with conn.cursor() as cur:
        # Each (patient, kind) must be read newest first through the index so that the LIMIT ends the scan: a
        # bitmap scan reads the whole window and sorts it, which the planner picks when it expects few rows per
        # patient, and a patient on continuous oximetry has thousands. For this statement only.
        bitmap = cur.execute("SELECT current_setting('enable_bitmapscan')").fetchone()
        cur.execute("SET LOCAL enable_bitmapscan = off")
        # COPY takes no server-side parameters: psycopg binds them client-side, as literals.
        with cur.copy(HISTORY_COPY, params) as copy:
            for chunk in copy:
                data += chunk
        cur.execute("SELECT set_config('enable_bitmapscan', %s, true)", (bitmap[0] if bitmap else "on",))
    rows = history_rows(bytes(data))
    return HistoryColumns(
        rows["row"].astype(np.int64) - 1,
        rows["kind"].astype(np.int64),
        epoch_seconds(rows["at"]),
        rows["value"].astype(np.float64),
    )


_PG_EPOCH_US = 946_684_800 * 1_000_000
"""PostgreSQL's binary timestamptz counts microseconds from 2000-01-01 00:00 UTC."""


def epoch_seconds(pg_microseconds: NDArray[Any]) -> NDArray[np.int64]:
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


def history_rows(data: bytes) -> NDArray[Any]:
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


__all__ = [
    "HISTORY_COPY",
    "HISTORY_SQL",
    "HISTORY_UNTIL_AHEAD",
    "PATIENT_INPUTS_SQL",
    "HistoryColumns",
    "PatientInputs",
    "disable_jit",
    "epoch_seconds",
    "history_params",
    "history_rows",
    "load_history",
    "patient_inputs",
]
