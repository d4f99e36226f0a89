"""Readings as columns (patient row, kind index, time, value), and the sorted view the windowed rules share.

Times are int64 epoch seconds (datetime64 input is converted). `SortedReadings` concatenates history and batch,
sorts them by (patient, kind, time) once, and answers window questions with `searchsorted` on a packed key.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rules_engine.kinds_index import N_KINDS

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


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
    group: IntArray
    """patient_row * N_KINDS + kind_idx: one group per patient and kind, contiguous after sorting."""
    key: IntArray
    """group * span + (measured_at - t0): sorted, so windows are `searchsorted` ranges."""
    t0: int
    span: int

    @property
    def is_batch(self) -> BoolArray:
        return self.source >= self.n_history

    def batch_index(self, rows: IntArray) -> IntArray:
        """Batch row numbers of sorted rows (history rows give negative numbers)."""
        return self.source[rows] - self.n_history

    def pack(self, group: IntArray, at: IntArray) -> IntArray:
        """The sort key of (group, time), with time clamped into the key's range."""
        return group * self.span + (np.clip(at, self.t0, self.t0 + self.span - 1) - self.t0)

    def first_at_or_after(self, group: IntArray, at: IntArray) -> IntArray:
        """Index of the first row of `group` at time >= `at` (the group's end if none)."""
        return np.searchsorted(self.key, self.pack(group, at), side="left").astype(np.int64)

    def last_at_or_before(self, group: IntArray, at: IntArray) -> IntArray:
        """Index of the last row of `group` at time <= `at`, or -1 where the group has none."""
        idx = np.searchsorted(self.key, self.pack(group, at), side="right").astype(np.int64) - 1
        found = idx >= 0
        found[found] = self.group[idx[found]] == group[found]
        return np.where(found, idx, -1)

    def rows_of_kind(self, kind_idx: int) -> IntArray:
        return np.flatnonzero(self.kind_idx == kind_idx)


def sort_readings(history: ReadingArrays, batch: ReadingArrays) -> SortedReadings:
    """Concatenate and sort once; skips the sort when the input is already in order."""
    patient = np.concatenate([history.patient_row, batch.patient_row])
    kind = np.concatenate([history.kind_idx, batch.kind_idx])
    at = np.concatenate([history.measured_at, batch.measured_at])
    value = np.concatenate([history.value, batch.value])
    n = len(patient)
    t0 = int(at.min()) if n else 0
    span = (int(at.max()) - t0 + 1) if n else 1
    group = patient * N_KINDS + kind
    if n and (int(group.max()) + 1) * span >= np.iinfo(np.int64).max:
        raise ValueError("patient rows times time span too large for the packed sort key")
    key = group * span + (at - t0)
    if n > 1 and not bool(np.all(key[1:] >= key[:-1])):
        order = np.argsort(key, kind="stable")
        patient, kind, at, value, group, key = (a[order] for a in (patient, kind, at, value, group, key))
        source = order.astype(np.int64)
    else:
        source = np.arange(n, dtype=np.int64)
    return SortedReadings(patient, kind, at, value, source, len(history), group, key, t0, span)
