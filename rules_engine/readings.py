"""Readings as columns (patient row, kind index, time, value), and the sorted view the windowed rules share.

Times are int64 epoch seconds (datetime64 input is converted). `SortedReadings` concatenates history and batch,
sorts them by (patient, kind, time) once, and answers window questions with `searchsorted` on a packed key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rules_engine.kinds_index import N_KINDS

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

_T_MAX = np.iinfo(np.int64).max


def epoch_seconds(times: ArrayLike) -> IntArray:
    """int64 epoch seconds from int seconds or numpy datetime64 of any unit."""
    arr = np.asarray(times)
    if np.issubdtype(arr.dtype, np.datetime64):
        if np.isnat(arr).any():
            raise ValueError("measured_at contains NaT")
        return arr.astype("datetime64[s]").astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"measured_at must be int64 epoch seconds or datetime64, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


@dataclass(frozen=True, slots=True)
class ReadingArrays:
    """One column per field; row i of every array is reading i."""

    patient_row: IntArray
    kind_idx: IntArray
    measured_at: IntArray
    value: FloatArray

    @classmethod
    def of(cls, patient_row: ArrayLike, kind_idx: ArrayLike, measured_at: ArrayLike, value: ArrayLike) -> ReadingArrays:
        """Build with dtype conversion and shape checks."""
        readings = cls(
            np.asarray(patient_row, dtype=np.int64),
            np.asarray(kind_idx, dtype=np.int64),
            epoch_seconds(measured_at),
            np.asarray(value, dtype=np.float64),
        )
        n = len(readings.patient_row)
        for name in ("kind_idx", "measured_at", "value"):
            column = getattr(readings, name)
            if column.ndim != 1 or len(column) != n:
                raise ValueError(f"{name} has shape {column.shape}, expected ({n},) like patient_row")
        if n and (readings.kind_idx.min() < 0 or readings.kind_idx.max() >= N_KINDS):
            raise ValueError(f"kind_idx outside 0..{N_KINDS - 1}")
        if n and readings.patient_row.min() < 0:
            raise ValueError("patient_row must be non-negative")
        return readings

    @classmethod
    def empty(cls) -> ReadingArrays:
        return cls.of(np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0))

    def __len__(self) -> int:
        return len(self.patient_row)


@dataclass(frozen=True, slots=True)
class SortedReadings:
    """History and batch together, sorted by (patient, kind, time); history sorts before batch at equal times.

    `source` maps each sorted row back to its input: `source < n_history` is a history row, otherwise the batch
    row `source - n_history`.
    """

    patient_row: IntArray
    kind_idx: IntArray
    measured_at: IntArray
    value: FloatArray
    source: IntArray
    n_history: int
    is_batch: BoolArray
    group: IntArray
    """patient_row * N_KINDS + kind_idx: one group per patient and kind, contiguous after sorting."""
    key: IntArray
    """group * span + (measured_at - t0): sorted, so windows are `searchsorted` ranges."""
    t0: int
    span: int

    def batch_index(self, rows: IntArray) -> IntArray:
        """Batch row numbers of sorted rows (history rows give negative numbers)."""
        return self.source[rows] - self.n_history

    def _pack(self, group: IntArray, at: IntArray, low: int, high: int) -> IntArray:
        """The sort key of (group, time). Times are clamped to [t0 + low, t0 + high]: one step outside the data
        lands on the neighbouring group's first or last key, which is exactly the answer each search needs."""
        return group * self.span + (np.clip(at, self.t0 + low, self.t0 + high) - self.t0)

    def first_at_or_after(self, group: IntArray, at: IntArray) -> IntArray:
        """Index of the first row of `group` at time >= `at` (the group's end if none)."""
        key = self._pack(group, at, 0, self.span)
        return np.searchsorted(self.key, key, side="left").astype(np.int64)

    def last_at_or_before(self, group: IntArray, at: IntArray) -> IntArray:
        """Index of the last row of `group` at time <= `at`, or -1 where the group has none."""
        key = self._pack(group, at, -1, self.span - 1)
        idx = np.searchsorted(self.key, key, side="right").astype(np.int64) - 1
        found = idx >= 0
        found[found] = self.group[idx[found]] == group[found]
        return np.where(found, idx, -1)

    def rows_of_kind(self, kind_idx: int) -> IntArray:
        return np.flatnonzero(self.kind_idx == kind_idx)


def run_starts(sorted_values: IntArray) -> IntArray:
    """Start index of each run of equal values in a sorted array (e.g. each patient's rows)."""
    if len(sorted_values) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]])).astype(np.int64)


def _packed(readings: ReadingArrays, t0: int, span: int) -> IntArray:
    return (readings.patient_row * N_KINDS + readings.kind_idx) * span + (readings.measured_at - t0)


def _is_sorted(key: IntArray) -> bool:
    return len(key) < 2 or bool(np.all(key[1:] >= key[:-1]))


def _merge_positions(history_key: IntArray, batch_key: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """For history already sorted: sort only the batch and merge it in with `searchsorted` (history first at equal
    keys). Returns (sorted position of each history row, sorted position of each sorted batch row, batch order)."""
    n = len(history_key) + len(batch_key)
    batch_order = np.argsort(batch_key, kind="stable")
    batch_at = np.searchsorted(history_key, batch_key[batch_order], side="right") + np.arange(len(batch_key))
    is_batch = np.zeros(n, dtype=np.bool_)
    is_batch[batch_at] = True
    return np.flatnonzero(~is_batch), batch_at, batch_order


def _merged(
    history: NDArray[Any], batch: NDArray[Any], history_at: IntArray, batch_at: IntArray, batch_order: IntArray
) -> NDArray[Any]:
    out = np.empty(len(history) + len(batch), dtype=history.dtype)
    out[history_at] = history
    out[batch_at] = batch[batch_order]
    return out


def sort_readings(history: ReadingArrays, batch: ReadingArrays) -> SortedReadings:
    """Concatenate and sort by (patient, kind, time) once.

    History as the database returns it (ORDER BY patient, kind, measured_at) is not re-sorted: only the batch is,
    and it is merged in. Unsorted history is sorted with the batch.
    """
    n_history, n = len(history), len(history) + len(batch)
    t0 = min(int(history.measured_at.min(initial=_T_MAX)), int(batch.measured_at.min(initial=_T_MAX))) if n else 0
    t1 = max(int(history.measured_at.max(initial=-_T_MAX)), int(batch.measured_at.max(initial=-_T_MAX))) if n else 0
    span = t1 - t0 + 1
    max_group = max(int(history.patient_row.max(initial=0)), int(batch.patient_row.max(initial=0))) * N_KINDS
    if (max_group + N_KINDS) * span >= np.iinfo(np.int64).max:
        raise ValueError("patient rows times time span too large for the packed sort key")
    history_key, batch_key = _packed(history, t0, span), _packed(batch, t0, span)
    columns = ("patient_row", "kind_idx", "measured_at", "value")
    if _is_sorted(history_key) and not _is_sorted(np.concatenate([history_key[-1:], batch_key])):
        history_at, batch_at, batch_order = _merge_positions(history_key, batch_key)
        merged = [_merged(getattr(history, c), getattr(batch, c), history_at, batch_at, batch_order) for c in columns]
        source = _merged(np.arange(n_history), n_history + np.arange(len(batch)), history_at, batch_at, batch_order)
        key = _merged(history_key, batch_key, history_at, batch_at, batch_order)
    else:
        key = np.concatenate([history_key, batch_key])
        source = np.arange(n, dtype=np.int64) if _is_sorted(key) else np.argsort(key, kind="stable").astype(np.int64)
        key = key[source]
        merged = [np.concatenate([getattr(history, c), getattr(batch, c)])[source] for c in columns]
    patient, kind, at, value = merged
    return SortedReadings(
        patient_row=patient,
        kind_idx=kind,
        measured_at=at,
        value=value,
        source=source,
        n_history=n_history,
        is_batch=source >= n_history,
        group=patient * N_KINDS + kind,
        key=key,
        t0=t0,
        span=span,
    )
