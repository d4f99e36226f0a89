"""Trend rules against the patient's own history: weight gain within a window, drift from a personal baseline.

Both work on `SortedReadings` (history + batch sorted by patient, kind, time): windows are `searchsorted` ranges,
window minima come from `np.minimum.reduceat`, baseline medians from one sort of the flattened windows.
Trend limits are strict like thresholds: a change exactly equal to the limit does not alarm. Changes are rounded
to one decimal more than the kind displays, so float noise (84.1 − 82.1) never decides a breach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from rules_engine.kinds_index import KIND_INDEX
from rules_engine.profiles import TrendSetting
from rules_engine.readings import BoolArray, FloatArray, IntArray, SortedReadings, run_starts
from rules_engine.severity import Severity
from vitals import KINDS, Kind

DAY_S = 86_400

Direction = Literal["fall", "rise", "either"]


@dataclass(frozen=True, slots=True)
class TrendResults:
    """One row per evaluated patient: the window that decided, its start and end values, and the change."""

    rule: str
    kind: Kind
    patient_row: IntArray
    start_at: IntArray
    """Weight gain: time of the window minimum. Baseline drift: first reading of the baseline window."""
    end_at: IntArray
    start_value: FloatArray
    """Weight gain: the window minimum. Baseline drift: the baseline median."""
    end_value: FloatArray
    delta: FloatArray
    limit: FloatArray
    window_s: IntArray
    count: IntArray
    """Readings in the window (weight gain) or in the baseline (drift)."""
    breached: BoolArray
    severity: NDArray[np.int8]
    reading_index: IntArray
    """Batch index of the reading at the window's end."""

    def __len__(self) -> int:
        return len(self.patient_row)

    def breaches(self) -> TrendResults:
        """Only the rows that breached their limit."""
        keep = np.flatnonzero(self.breached)
        return TrendResults(
            self.rule,
            self.kind,
            *(getattr(self, name)[keep] for name in _ARRAY_FIELDS),
        )


_ARRAY_FIELDS = (
    "patient_row",
    "start_at",
    "end_at",
    "start_value",
    "end_value",
    "delta",
    "limit",
    "window_s",
    "count",
    "breached",
    "severity",
    "reading_index",
)


def _flatten_ranges(starts: IntArray, lengths: IntArray) -> tuple[IntArray, IntArray]:
    """All indices of the ranges [start, start + length), concatenated, and each range's offset in that list."""
    offsets = np.cumsum(lengths) - lengths
    flat = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(offsets - starts, lengths)
    return flat, offsets.astype(np.int64)


def _range_reduce(ufunc: np.ufunc, values: FloatArray, starts: IntArray, stops: IntArray, fill: float) -> FloatArray:
    """ufunc.reduce over each [start, stop) (all non-empty), with overlapping ranges allowed."""
    if len(starts) == 0:
        return np.zeros(0, dtype=np.float64)
    padded = np.append(values, fill)
    pairs = np.empty(2 * len(starts), dtype=np.int64)
    pairs[0::2] = starts
    pairs[1::2] = stops
    result: FloatArray = ufunc.reduceat(padded, pairs)[0::2]
    return result


def _empty(rule: str, kind: Kind) -> TrendResults:
    i = np.zeros(0, dtype=np.int64)
    f = np.zeros(0, dtype=np.float64)
    return TrendResults(rule, kind, i, i, i, f, f, f, f, i, i, np.zeros(0, dtype=np.bool_), np.zeros(0, np.int8), i)


def weight_gain(readings: SortedReadings, trends: NDArray[np.float64]) -> TrendResults:
    """Largest weight gain per patient among the batch's weight readings.

    For each batch weight reading at time t the gain is its value minus the minimum weight within [t − W, t]
    (history included), W = the patient's `weight_window_days`. Per patient the largest gain is reported (ties:
    the latest reading); it breaches when it exceeds `weight_gain_kg`.
    """
    rule, kind = "trend.weight_gain", Kind.BODY_WEIGHT
    rows = readings.rows_of_kind(KIND_INDEX[kind])
    patient = readings.patient_row[rows]
    limit_all = trends[patient, TrendSetting.WEIGHT_GAIN_KG]
    ev = rows[readings.is_batch[rows] & ~np.isnan(limit_all)]
    if len(ev) == 0:
        return _empty(rule, kind)
    p = readings.patient_row[ev]
    end_at = readings.measured_at[ev]
    window_s = np.rint(trends[p, TrendSetting.WEIGHT_WINDOW_DAYS] * DAY_S).astype(np.int64)
    start = readings.first_at_or_after(readings.group[ev], end_at - window_s)
    window_min = _range_reduce(np.minimum, readings.value, start, ev + 1, np.inf)
    gain = np.round(readings.value[ev] - window_min, KINDS[kind].decimals + 1)

    seg = run_starts(p)
    best = np.maximum.reduceat(gain, seg)
    seg_len = np.diff(np.append(seg, len(ev)))
    is_best = gain == np.repeat(best, seg_len)
    pick = np.maximum.reduceat(np.where(is_best, np.arange(len(ev)), -1), seg)

    j, s, low = ev[pick], start[pick], window_min[pick]
    lengths = j - s + 1
    flat, offsets = _flatten_ranges(s, lengths)
    at_min = np.where(readings.value[flat] == np.repeat(low, lengths), np.arange(len(flat)), len(flat))
    min_row = flat[np.minimum.reduceat(at_min, offsets)]

    limit = trends[p[pick], TrendSetting.WEIGHT_GAIN_KG]
    breached = gain[pick] > limit
    return TrendResults(
        rule=rule,
        kind=kind,
        patient_row=p[pick],
        start_at=readings.measured_at[min_row],
        end_at=end_at[pick],
        start_value=low,
        end_value=readings.value[j],
        delta=gain[pick],
        limit=limit,
        window_s=window_s[pick],
        count=lengths.astype(np.int64),
        breached=breached,
        severity=np.where(breached, np.int8(Severity.YELLOW), np.int8(Severity.NONE)).astype(np.int8),
        reading_index=readings.batch_index(j),
    )


def baseline_drift(
    readings: SortedReadings,
    trends: NDArray[np.float64],
    kind: Kind,
    setting: TrendSetting,
    direction: Direction,
    rule: str,
    severity: Severity = Severity.NEEDS_REVIEW,
) -> TrendResults:
    """Latest batch value per patient against the median of the same kind over the preceding baseline window.

    The baseline is every reading in [t − baseline_days, t) before the latest one; with fewer than
    `baseline_min_readings` the patient is not evaluated. Breach: the change exceeds the limit in `direction`.
    """
    rows = readings.rows_of_kind(KIND_INDEX[kind])
    batch_rows = rows[readings.is_batch[rows]]
    if len(batch_rows) == 0:
        return _empty(rule, kind)
    p_all = readings.patient_row[batch_rows]
    latest = batch_rows[np.append(p_all[1:] != p_all[:-1], True)]
    p = readings.patient_row[latest]
    limit = trends[p, setting]
    window_s = np.rint(trends[p, TrendSetting.BASELINE_DAYS] * DAY_S).astype(np.int64)
    end_at = readings.measured_at[latest]
    start = readings.first_at_or_after(readings.group[latest], end_at - window_s)
    count = latest - start
    keep = ~np.isnan(limit) & (count >= np.maximum(trends[p, TrendSetting.BASELINE_MIN_READINGS], 1))
    if not keep.any():
        return _empty(rule, kind)
    latest, p, limit, window_s, end_at, start, count = (
        a[keep] for a in (latest, p, limit, window_s, end_at, start, count)
    )

    flat, offsets = _flatten_ranges(start, count)
    segment = np.repeat(np.arange(len(latest)), count)
    baseline_values = readings.value[flat]
    ordered = baseline_values[np.lexsort((baseline_values, segment))]
    median = (ordered[offsets + (count - 1) // 2] + ordered[offsets + count // 2]) / 2

    end_value = readings.value[latest]
    delta = np.round(end_value - median, KINDS[kind].decimals + 1)
    if direction == "fall":
        breached = -delta > limit
    elif direction == "rise":
        breached = delta > limit
    else:
        breached = np.abs(delta) > limit
    return TrendResults(
        rule=rule,
        kind=kind,
        patient_row=p,
        start_at=readings.measured_at[start],
        end_at=end_at,
        start_value=median,
        end_value=end_value,
        delta=delta,
        limit=limit,
        window_s=window_s,
        count=count.astype(np.int64),
        breached=breached,
        severity=np.where(breached, np.int8(severity), np.int8(Severity.NONE)).astype(np.int8),
        reading_index=readings.batch_index(latest),
    )


def spo2_drop(readings: SortedReadings, trends: NDArray[np.float64]) -> TrendResults:
    return baseline_drift(readings, trends, Kind.SPO2, TrendSetting.SPO2_DROP, "fall", "trend.spo2_baseline")


def pulse_drift(readings: SortedReadings, trends: NDArray[np.float64]) -> TrendResults:
    return baseline_drift(readings, trends, Kind.PULSE_RATE, TrendSetting.PULSE_DRIFT, "either", "trend.pulse_baseline")


def evaluate_trends(readings: SortedReadings, trends: NDArray[np.float64]) -> list[TrendResults]:
    """Every trend rule, in a fixed order."""
    return [weight_gain(readings, trends), spo2_drop(readings, trends), pulse_drift(readings, trends)]
