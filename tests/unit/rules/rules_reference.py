"""Straightforward per-reading Python versions of the threshold and trend rules.

The oracle for the vectorised rules in the tests, and the loop baseline of `bench/rules.py`. Written for
obviousness, not speed: plain lists and dicts, one reading at a time.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence

RED, YELLOW, NONE = 3, 2, 0
RED_LOW, YELLOW_LOW, YELLOW_HIGH, RED_HIGH = 0, 1, 2, 3
DAY_S = 86_400


def threshold(value: float, limits: Sequence[float]) -> tuple[int, int]:
    """(severity, breached limit or -1) of one reading: strictly beyond a limit breaches it; NaN never does."""
    red_low, yellow_low, yellow_high, red_high = limits
    if value < red_low:
        return RED, RED_LOW
    if value > red_high:
        return RED, RED_HIGH
    if value < yellow_low:
        return YELLOW, YELLOW_LOW
    if value > yellow_high:
        return YELLOW, YELLOW_HIGH
    return NONE, -1


def thresholds(
    patient_rows: Sequence[int], kind_idx: Sequence[int], values: Sequence[float], limits: Sequence
) -> list[tuple[int, int]]:
    return [threshold(v, limits[p][k]) for p, k, v in zip(patient_rows, kind_idx, values, strict=True)]


def worst_per_rule(
    patient_rows: Sequence[int],
    kind_idx: Sequence[int],
    values: Sequence[float],
    measured_at: Sequence[int],
    results: Sequence[tuple[int, int]],
) -> dict[tuple[int, int, bool], tuple[int, int, int]]:
    """(patient, kind, high side) → (batch index of the worst reading, count, severity)."""
    worst: dict[tuple[int, int, bool], tuple[int, int, int]] = {}
    for i, (severity, code) in enumerate(results):
        if code < 0:
            continue
        high = code in (YELLOW_HIGH, RED_HIGH)
        key = (patient_rows[i], kind_idx[i], high)
        badness = values[i] if high else -values[i]
        if key not in worst:
            worst[key] = (i, 1, severity)
            continue
        best, count, best_severity = worst[key]
        best_badness = values[best] if high else -values[best]
        if (severity, badness, measured_at[i]) >= (best_severity, best_badness, measured_at[best]):
            worst[key] = (i, count + 1, severity)
        else:
            worst[key] = (best, count + 1, best_severity)
    return worst


def _series(
    patient_rows: Sequence[int], kind_idx: Sequence[int], measured_at: Sequence[int], values: Sequence[float], kind: int
) -> dict[int, list[tuple[int, int, float]]]:
    """patient → [(time, input position, value)] of one kind, in time order (input order breaks ties)."""
    series: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    for i, (p, k, t, v) in enumerate(zip(patient_rows, kind_idx, measured_at, values, strict=True)):
        if k == kind:
            series[p].append((t, i, v))
    for readings in series.values():
        readings.sort()
    return series


def weight_gain(
    patient_rows: Sequence[int],
    kind_idx: Sequence[int],
    measured_at: Sequence[int],
    values: Sequence[float],
    first_batch: int,
    weight_kind: int,
    gain_limit: Sequence[float],
    window_days: Sequence[float],
) -> dict[int, tuple[float, float, bool]]:
    """patient → (largest gain, value at its end, breached); inputs are history then batch (from `first_batch`)."""
    out: dict[int, tuple[float, float, bool]] = {}
    for p, readings in _series(patient_rows, kind_idx, measured_at, values, weight_kind).items():
        if math.isnan(gain_limit[p]):
            continue
        window = round(window_days[p] * DAY_S)
        best: tuple[float, int, float] | None = None
        for pos, (t, i, v) in enumerate(readings):
            if i < first_batch:
                continue
            lowest = min(w for (s, _, w) in readings[: pos + 1] if s >= t - window)
            gain = round(v - lowest, 2)
            if best is None or (gain, pos) >= (best[0], best[1]):
                best = (gain, pos, v)
        if best is not None:
            out[p] = (best[0], best[2], best[0] > gain_limit[p])
    return out


def baseline_drift(
    patient_rows: Sequence[int],
    kind_idx: Sequence[int],
    measured_at: Sequence[int],
    values: Sequence[float],
    first_batch: int,
    kind: int,
    limit: Sequence[float],
    direction: str,
    baseline_days: Sequence[float],
    min_readings: Sequence[float],
    decimals: int = 0,
) -> dict[int, tuple[float, float, bool]]:
    """patient → (baseline median, change, breached) at the patient's latest batch reading of `kind`."""
    out: dict[int, tuple[float, float, bool]] = {}
    for p, readings in _series(patient_rows, kind_idx, measured_at, values, kind).items():
        batch_positions = [pos for pos, (_, i, _) in enumerate(readings) if i >= first_batch]
        if not batch_positions or math.isnan(limit[p]):
            continue
        pos = batch_positions[-1]
        t, _, v = readings[pos]
        window = round(baseline_days[p] * DAY_S)
        baseline = [w for (s, _, w) in readings[:pos] if s >= t - window]
        if len(baseline) < max(min_readings[p], 1):
            continue
        median = statistics.median(baseline)
        change = round(v - median, decimals + 1)
        if direction == "fall":
            breached = -change > limit[p]
        elif direction == "rise":
            breached = change > limit[p]
        else:
            breached = abs(change) > limit[p]
        out[p] = (median, change, breached)
    return out
