"""Trend rules against the patient's own history: weight gain within a window (and within a week), drift from a
personal baseline, the home blood-pressure mean.

Both work on `SortedReadings` (history + batch sorted by patient, kind, time): windows are `searchsorted` ranges,
window minima come from `np.minimum.reduceat`, baseline medians from one sort of the flattened windows.
Trend limits are strict like thresholds: a change exactly equal to the limit does not alarm. Changes are rounded
to one decimal more than the kind displays, so float noise (84.1 − 82.1) never decides a breach.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from rules_engine.kinds_index import KIND_INDEX, N_KINDS
from rules_engine.personal import segment_medians
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


RECENT_DAYS = 3
"""A drift is confirmed on the median of the last three days (the window of the ESC's "> 2 kg in 3 days" advice,
and the combined rules' recent level)."""
CONFIRM_READINGS = 2
"""A weight gain or a drift from the baseline alarms only when two readings show it: one scale read in clothes, one
pulse taken after the stairs or one cold finger is never a trend (`confirm_trend`)."""

WEEK_DAYS = 7.0
"""The window of `trend.weight_gain_7d` (fixed: the rule is "a week"; its limit is the setting)."""


def weight_gain(
    readings: SortedReadings,
    trends: NDArray[np.float64],
    *,
    rule: str = "trend.weight_gain",
    limit_setting: TrendSetting = TrendSetting.WEIGHT_GAIN_KG,
    window_days: float | None = None,
    confirmed: bool = False,
) -> TrendResults:
    """Largest weight gain per patient among the batch's weight readings; `confirmed`: only gains two weighings
    in a row show (what the rules alarm on).

    Unconfirmed: for each batch weight reading at time t the gain is its value minus the minimum weight within
    [t − W, t] (history included), W = the patient's `weight_window_days` (or `window_days` when given).

    Confirmed (`CONFIRM_READINGS`): for each batch weight reading at time t with a previous weighing at t', the gain
    is the lower of the two weights minus the minimum weight within [t' − W, t]. One scale
    read in clothes is never a gain (the lower weighing of the pair is the normal one); a real gain shows on the
    next weighing too, and the window reaches back from the earlier weighing, so "2.5 kg in 3 days, then steady"
    alarms on the weighing after it, one day later than the unconfirmed rule would. Without a previous weighing
    nothing is confirmed. Per patient the largest gain is reported (ties: the latest reading); it breaches when it
    exceeds the `limit_setting`.
    """
    kind = Kind.BODY_WEIGHT
    rows = readings.rows_of_kind(KIND_INDEX[kind])
    patient = readings.patient_row[rows]
    limit_all = trends[patient, limit_setting]
    ev = rows[readings.is_batch[rows] & ~np.isnan(limit_all)]
    if len(ev) == 0:
        return _empty(rule, kind)
    p = readings.patient_row[ev]
    end_at = readings.measured_at[ev]
    days = trends[p, TrendSetting.WEIGHT_WINDOW_DAYS] if window_days is None else np.full(len(p), window_days)
    window_s = np.rint(days * DAY_S).astype(np.int64)
    if confirmed:
        prev = np.maximum(ev - 1, 0)
        has_prev = (ev > 0) & (readings.group[prev] == readings.group[ev])
        window_from = np.where(has_prev, readings.measured_at[prev], end_at) - window_s
        value = np.where(has_prev, np.minimum(readings.value[ev], readings.value[prev]), -np.inf)
    else:
        window_from, value = end_at - window_s, readings.value[ev]
    start = readings.first_at_or_after(readings.group[ev], window_from)
    window_min = _range_reduce(np.minimum, readings.value, start, ev + 1, np.inf)
    gain: FloatArray = np.round(np.maximum(value - window_min, -1e9), KINDS[kind].decimals + 1).astype(np.float64)

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

    limit = trends[p[pick], limit_setting]
    breached = gain[pick] > limit
    return TrendResults(
        rule=rule,
        kind=kind,
        patient_row=p[pick],
        start_at=readings.measured_at[min_row],
        end_at=end_at[pick],
        start_value=low,
        end_value=readings.value[j],
        # Shown: the decisive weighing against the window minimum (what the nurse can check on the chart); the
        # confirmed gain, the lower weighing's, decided the breach.
        delta=np.round(readings.value[j] - low, KINDS[kind].decimals + 1),
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


def weight_gain_week(
    readings: SortedReadings, trends: NDArray[np.float64], short: TrendResults, *, short_confirmed: bool = False
) -> TrendResults:
    """`trend.weight_gain_7d`: the gain within 7 days against `weight_week_gain_kg`, for the slow accumulation the
    short-window rule misses. Where the short-window rule breached for the same patient, this one stays quiet
    (one gain, one alarm); and its limit is never below the short-window one, so a gain the patient's tailored
    3-day rule accepts is not alarmed a week-long way round."""
    week_limit = trends[:, TrendSetting.WEIGHT_WEEK_GAIN_KG]
    effective = trends.copy()
    effective[:, TrendSetting.WEIGHT_WEEK_GAIN_KG] = np.where(
        np.isnan(week_limit), np.nan, np.fmax(week_limit, trends[:, TrendSetting.WEIGHT_GAIN_KG])
    )
    week = weight_gain(
        readings,
        effective,
        rule="trend.weight_gain_7d",
        limit_setting=TrendSetting.WEIGHT_WEEK_GAIN_KG,
        window_days=WEEK_DAYS,
        confirmed=short_confirmed,
    )
    quiet = np.isin(week.patient_row, short.patient_row[short.breached])
    if not quiet.any():
        return week
    breached = week.breached & ~quiet
    severity = np.where(breached, week.severity, np.int8(Severity.NONE)).astype(np.int8)
    return replace(week, breached=breached, severity=severity)


@dataclass(frozen=True, slots=True)
class HomeBloodPressure:
    """`bp.home_average`: one row per patient with a blood-pressure reading in the batch and the rule on."""

    patient_row: IntArray
    start_at: IntArray
    end_at: IntArray
    systolic: FloatArray
    """Mean systolic over the window (one decimal), NaN without readings."""
    diastolic: FloatArray
    count_systolic: IntArray
    count_diastolic: IntArray
    limit_systolic: FloatArray
    limit_diastolic: FloatArray
    window_days: FloatArray
    breached_systolic: BoolArray
    breached_diastolic: BoolArray
    reading_index: IntArray
    """Batch index of the latest blood-pressure reading (systolic where there is one)."""

    def __len__(self) -> int:
        return len(self.patient_row)

    @property
    def breached(self) -> BoolArray:
        return np.asarray(self.breached_systolic | self.breached_diastolic, dtype=np.bool_)


def _window_mean(
    readings: SortedReadings, patients: IntArray, kind: Kind, start_at: IntArray, end_at: IntArray
) -> tuple[FloatArray, IntArray, IntArray]:
    """Mean, count and last row of `kind` per patient within [start_at, end_at] (prefix sums over the sort)."""
    group = patients * N_KINDS + KIND_INDEX[kind]
    first = readings.first_at_or_after(group, start_at)
    last = readings.last_at_or_before(group, end_at)
    count = np.where(last >= first, last - first + 1, 0).astype(np.int64)
    prefix = np.concatenate([[0.0], np.cumsum(readings.value)])
    total = prefix[np.maximum(last + 1, 0)] - prefix[np.minimum(first, len(readings.value))]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return np.asarray(np.round(mean, 1), dtype=np.float64), count, last


def home_blood_pressure(readings: SortedReadings, trends: NDArray[np.float64]) -> HomeBloodPressure:
    """Home blood-pressure means per patient over the `bp_home_days` before the latest batch BP reading.

    ESH defines home hypertension as a mean ≥ 135/85 mmHg, so this one rule's limits are inclusive: a component
    breaches when it has at least `bp_home_min_readings` readings and its mean (one decimal) is ≥ its limit.
    """
    bp = np.array([KIND_INDEX[Kind.BP_SYSTOLIC], KIND_INDEX[Kind.BP_DIASTOLIC]])
    rows = np.flatnonzero(readings.is_batch & np.isin(readings.kind_idx, bp))
    on = ~np.isnan(trends[readings.patient_row[rows], TrendSetting.BP_HOME_SYSTOLIC]) | ~np.isnan(
        trends[readings.patient_row[rows], TrendSetting.BP_HOME_DIASTOLIC]
    )
    rows = rows[on]
    patients = np.unique(readings.patient_row[rows])
    end_at = np.zeros(len(patients), dtype=np.int64)
    np.maximum.at(end_at, np.searchsorted(patients, readings.patient_row[rows]), readings.measured_at[rows])
    days = trends[patients, TrendSetting.BP_HOME_DAYS]
    start_at = end_at - np.rint(days * DAY_S).astype(np.int64)
    sys_mean, sys_n, sys_last = _window_mean(readings, patients, Kind.BP_SYSTOLIC, start_at, end_at)
    dia_mean, dia_n, dia_last = _window_mean(readings, patients, Kind.BP_DIASTOLIC, start_at, end_at)
    least = trends[patients, TrendSetting.BP_HOME_MIN_READINGS]
    limit_sys = trends[patients, TrendSetting.BP_HOME_SYSTOLIC]
    limit_dia = trends[patients, TrendSetting.BP_HOME_DIASTOLIC]
    with np.errstate(invalid="ignore"):
        hit_sys = (sys_n >= least) & (sys_mean >= limit_sys)
        hit_dia = (dia_n >= least) & (dia_mean >= limit_dia)
    last = np.where(sys_last >= 0, sys_last, dia_last)
    return HomeBloodPressure(
        patient_row=patients,
        start_at=start_at,
        end_at=end_at,
        systolic=sys_mean,
        diastolic=dia_mean,
        count_systolic=sys_n,
        count_diastolic=dia_n,
        limit_systolic=limit_sys,
        limit_diastolic=limit_dia,
        window_days=days,
        breached_systolic=hit_sys,
        breached_diastolic=hit_dia,
        reading_index=readings.batch_index(np.maximum(last, 0)) if len(last) else last,
    )


def confirm_trend(readings: SortedReadings, result: TrendResults) -> TrendResults:
    """The breaches of `result` that a second reading confirms (`CONFIRM_READINGS`).

    Weight gain is confirmed by `weight_gain` itself (the lower of two weighings in a row). Baseline drift: the
    median of the last `RECENT_DAYS` (the decisive reading included, at least two readings) must breach as the
    single reading did."""
    hit = np.flatnonzero(result.breached)
    if len(hit) == 0 or result.kind is Kind.BODY_WEIGHT:
        return result
    group = result.patient_row[hit] * N_KINDS + KIND_INDEX[result.kind]
    end_at = result.end_at[hit]
    end_row = readings.last_at_or_before(group, end_at)
    start = readings.first_at_or_after(group, end_at - RECENT_DAYS * DAY_S + 1)
    count = np.maximum(end_row - start + 1, 0)
    recent = np.full(len(hit), np.nan)
    has = count > 0
    flat, _ = _flatten_ranges(start[has], count[has])
    segment = np.repeat(np.arange(int(has.sum())), count[has])
    recent[has] = segment_medians(readings.value[flat], segment, int(has.sum()))
    delta = np.round(recent - result.start_value[hit], KINDS[result.kind].decimals + 1)
    same_side = np.sign(delta) == np.sign(result.delta[hit])
    confirmed = (count >= CONFIRM_READINGS) & same_side & (np.abs(delta) > result.limit[hit])
    breached = result.breached.copy()
    breached[hit] = confirmed
    severity = np.where(breached, result.severity, np.int8(Severity.NONE)).astype(np.int8)
    return replace(result, breached=breached, severity=severity)


def evaluate_trends(readings: SortedReadings, trends: NDArray[np.float64]) -> list[TrendResults]:
    """Every trend rule, in a fixed order, each breach confirmed by a second reading (`confirm_trend`)."""
    short = weight_gain(readings, trends, confirmed=True)
    return [
        short,
        *(
            confirm_trend(readings, r)
            for r in (
                weight_gain_week(readings, trends, short, short_confirmed=True),
                spo2_drop(readings, trends),
                pulse_drift(readings, trends),
            )
        ),
    ]
