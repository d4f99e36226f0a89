"""Combined deterioration rules: several small changes over days, each against the patient's personal baseline,
weighed together.

Heart failure (`combined.heart_failure`): weight up, pulse up, SpO2 down, breathing rate up. COPD
(`combined.copd`): SpO2 down, pulse up, temperature up, breathing rate up. For each input kind the *recent level*
is an EWMA of the patient's daily medians over the last `EWMA_DAYS` (`recent_ewma`: one scale read in clothes or
one pulse taken after the stairs does not move a day, and a missed day only drops out); its deviation from the
personal centre, in the deteriorating direction only, is standardised by the EWMA's own standard error (personal
spread, floored by the kind's `min_spread`, times √Σw²/Σw — the EWMA control chart's statistic, Montgomery,
*Introduction to Statistical Quality Control*, §9.2) and capped at `Z_CAP`, so no single parameter decides
alone. The score is the weighted sum of these contributions: a weighted sum of standardised deviations, the
multiparameter form of the early-warning and telemonitoring indices (e.g. Moazeni et al., Eur Heart J Digit Health
2023;4(6):455, where heart rate and systolic pressure charted against a personal baseline beat weight alone; Zhang
et al., BMC Med Inform Decis Mak 2016;16:133 on trend alerts). The rule alarms (yellow) when the score exceeds
`SCORE_LIMIT` with at least `MIN_CONTRIBUTING` parameters each a full standard error or more beyond the usual.

Pure: sorted readings and `PatientRules` in, one row per evaluated patient out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rules_engine.kinds_index import KIND_INDEX, N_KINDS
from rules_engine.personal import MIN_SPREAD, segment_medians
from rules_engine.profiles import PatientRules, Protocol, protocol_code
from rules_engine.readings import FloatArray, IntArray, SortedReadings
from rules_engine.severity import Severity
from rules_engine.trends import TrendResults
from vitals import KINDS, Kind

DAY_S = 86_400
RECENT_DAYS = 3.0
"""The recent level is the median over three days: the window of the ESC's "> 2 kg in 3 days" self-care advice."""
EWMA_LAMBDA = 0.3
"""EWMA weight of the newest day: λ = 0.3 reacts to a shift of about one spread within a few days (Lucas &
Saccucci 1990, table 3), the pace of a decompensation or an exacerbation over 5–14 days."""
EWMA_DAYS = 10.0
"""Days the EWMA reads: (1 − 0.3)^10 < 3 %, older days add nothing."""
EWMA_CLIP = 2.0
"""Each day's median enters the EWMA at most this many spreads from the usual (Huber's robust M-estimation with
k ≈ 2σ; Lucas & Crosier's robust CUSUM, Technometrics 1982;24:199, does the same for a cumulative chart)."""
Z_CAP = 3.0
"""A parameter contributes at most three spreads (a Shewhart action limit), so one cannot outvote the others."""
SCORE_LIMIT = 5.5
"""Alarm above this sum of EWMA z-scores: e.g. two parameters each about 2.8 standard errors beyond the usual, or
three at about 1.9 — each short of the EWMA chart's usual L ≈ 2.7–3 limits (Lucas & Saccucci 1990) alone, beyond
them together, which is the point of weighing small changes together. Chosen with sensitivity ≥ 0.8 as the
constraint on both the benchmark's cohort (bench/alarm_quality.py) and the unit tests' independent heart-failure
cohort (tests/unit/rules/home_cohort.py), not fitted to one of them."""
MIN_CONTRIBUTING = 2
"""At least two parameters must each be a full standard error beyond the usual: one parameter alone has its own
rule."""


@dataclass(frozen=True, slots=True)
class CombinedInput:
    kind: Kind
    direction: float
    """+1: a rise is deterioration; −1: a fall is."""
    weight: float = 1.0


COMBINED_RULES: Mapping[str, tuple[Protocol, tuple[CombinedInput, ...]]] = {
    # ESC 2021 heart-failure guideline: congestion shows as weight gain, a rising heart rate and falling saturation.
    "combined.heart_failure": (
        Protocol.HEART_FAILURE,
        (
            CombinedInput(Kind.BODY_WEIGHT, 1.0),
            CombinedInput(Kind.PULSE_RATE, 1.0),
            CombinedInput(Kind.SPO2, -1.0),
            CombinedInput(Kind.RESP_RATE, 1.0),
        ),
    ),
    # GOLD 2024: an exacerbation brings falling saturation, tachycardia and, with infection, fever.
    "combined.copd": (
        Protocol.COPD,
        (
            CombinedInput(Kind.SPO2, -1.0),
            CombinedInput(Kind.PULSE_RATE, 1.0),
            CombinedInput(Kind.BODY_TEMPERATURE, 1.0),
            CombinedInput(Kind.RESP_RATE, 1.0),
        ),
    ),
}


@dataclass(frozen=True, slots=True)
class CombinedResults:
    """One row per evaluated patient; per-input columns in the order of `inputs`."""

    rule: str
    inputs: tuple[CombinedInput, ...]
    patient_row: IntArray
    anchor_at: IntArray
    """The patient's latest batch reading of an input kind: the end of the recent window."""
    reading_index: IntArray
    """Batch index of that reading."""
    recent: FloatArray
    """(n, n_inputs): EWMA level of the last EWMA_DAYS (as measured; the score uses the robust level);
    NaN where the kind has no reading or no baseline."""
    centre: FloatArray
    spread: FloatArray
    """(n, n_inputs): the standardising spread actually used: personal σ floored by the kind's min_spread, times the
    EWMA's standard-error factor."""
    z: FloatArray
    """(n, n_inputs): the robust level's deviation in the deteriorating direction, in standard errors (0 where
    missing), uncapped."""
    contribution: FloatArray
    """(n, n_inputs): weight × min(max(z, 0), Z_CAP)."""
    count: IntArray
    """Readings in the recent windows."""
    score: FloatArray
    limit: FloatArray
    breached: NDArray[np.bool_]
    severity: NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.patient_row)

    def breaches(self) -> CombinedResults:
        keep = np.flatnonzero(self.breached)
        return CombinedResults(
            self.rule,
            self.inputs,
            *(getattr(self, name)[keep] for name in _ARRAY_FIELDS),
        )


_ARRAY_FIELDS = (
    "patient_row",
    "anchor_at",
    "reading_index",
    "recent",
    "centre",
    "spread",
    "z",
    "contribution",
    "count",
    "score",
    "limit",
    "breached",
    "severity",
)


def evaluate_combined_rule(
    readings: SortedReadings,
    rules: PatientRules,
    rule: str,
    *,
    score_limit: float = SCORE_LIMIT,
    min_contributing: int = MIN_CONTRIBUTING,
) -> CombinedResults:
    """Score `rule` for every patient with its condition (primary or further) who has a batch reading of one of
    its input kinds and a personal baseline of at least two of them."""
    protocol, inputs = COMBINED_RULES[rule]
    kind_idx = np.array([KIND_INDEX[i.kind] for i in inputs], dtype=np.int64)
    n_patients = rules.n_patients
    on_protocol = (
        rules.conditions[:, protocol_code(protocol)]
        if rules.conditions.shape[0]
        else np.zeros(n_patients, dtype=np.bool_)
    )
    # The anchor: each patient's latest batch reading of an input kind.
    candidate = readings.is_batch & np.isin(readings.kind_idx, kind_idx)
    candidate &= on_protocol[readings.patient_row] if n_patients else candidate
    rows = np.flatnonzero(candidate)
    if len(rows) == 0 or not len(rules.centre):
        return _empty(rule, inputs)
    order = rows[np.lexsort((readings.measured_at[rows], readings.patient_row[rows]))]
    p_sorted = readings.patient_row[order]
    last = order[np.append(p_sorted[1:] != p_sorted[:-1], True)]
    p = readings.patient_row[last]
    anchor = readings.measured_at[last]
    centre = rules.centre[p][:, kind_idx]
    has_baseline = ~np.isnan(centre)
    keep = has_baseline.sum(axis=1) >= 2
    if not keep.any():
        return _empty(rule, inputs)
    p, anchor, last, centre = p[keep], anchor[keep], last[keep], centre[keep]
    spread = np.maximum(np.nan_to_num(rules.spread[p][:, kind_idx], nan=0.0), MIN_SPREAD[kind_idx])

    n, m = len(p), len(inputs)
    recent = np.full((n, m), np.nan)
    count = np.zeros(n, dtype=np.int64)
    robust = np.full((n, m), np.nan)
    precision = np.ones((n, m))
    for j, k in enumerate(kind_idx):
        recent[:, j], robust[:, j], counted, precision[:, j] = recent_ewma(
            readings, p, anchor, int(k), centre=centre[:, j], spread=spread[:, j]
        )
        count += counted
    directions = np.array([i.direction for i in inputs])
    weights = np.array([i.weight for i in inputs])
    spread = spread * precision
    z = np.nan_to_num(directions * (robust - centre) / spread, nan=0.0)
    contribution = weights * np.clip(z, 0.0, Z_CAP)
    score = np.round(contribution.sum(axis=1), 2)
    contributing = (z >= 1.0).sum(axis=1)
    breached = (score > score_limit) & (contributing >= min_contributing)
    return CombinedResults(
        rule=rule,
        inputs=inputs,
        patient_row=p,
        anchor_at=anchor,
        reading_index=readings.batch_index(last),
        recent=recent,
        centre=centre,
        spread=spread,
        z=z,
        contribution=contribution,
        count=count,
        score=score,
        limit=np.full(n, score_limit),
        breached=breached,
        severity=np.where(breached, np.int8(Severity.YELLOW), np.int8(Severity.NONE)).astype(np.int8),
    )


def recent_ewma(
    readings: SortedReadings,
    patient_row: IntArray,
    anchor: IntArray,
    kind_idx: int,
    lam: float | None = None,
    days: float | None = None,
    *,
    centre: FloatArray | None = None,
    spread: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, IntArray, FloatArray]:
    """EWMA level of each patient's readings of one kind over the `days` up to `anchor`: the daily medians (one
    scale read in clothes or one pulse after the stairs does not move a day), weighted (1 − λ)^age in days and
    normalised, so a missed day only drops out (Montgomery §9.2, the EWMA chart; Lucas & Saccucci, Technometrics
    1990;32:1, λ 0.2–0.3 for small sustained shifts). Returns (level, robust level — each day clipped to
    `centre` ± EWMA_CLIP · `spread` when given, what the score uses —, readings counted, standard-error factor
    √Σw² / Σw: the level's spread is the daily spread times it). NaN levels (factor 1) where there is no reading."""
    lam = EWMA_LAMBDA if lam is None else lam
    days = EWMA_DAYS if days is None else days
    n = len(patient_row)
    level = np.full(n, np.nan)
    factor = np.ones(n)
    group = patient_row * N_KINDS + kind_idx
    start = readings.first_at_or_after(group, anchor - round(days * DAY_S) + 1)
    stop = readings.last_at_or_before(group, anchor) + 1
    length = np.where(stop > start, stop - start, 0).astype(np.int64)
    if not length.any():
        return level, level.copy(), length, factor
    owner = np.repeat(np.arange(n), length)
    offsets = np.cumsum(length) - length
    flat = start[owner] + (np.arange(int(length.sum())) - offsets[owner])
    age = (anchor[owner] - readings.measured_at[flat]) // DAY_S
    key = owner * (int(days) + 2) + age
    keys, inverse = np.unique(key, return_inverse=True)
    daily = segment_medians(readings.value[flat], inverse, len(keys))
    day_owner, day_age = keys // (int(days) + 2), keys % (int(days) + 2)
    clipped = daily
    if centre is not None and spread is not None:
        # Huber-type robust EWMA: a day counts at most EWMA_CLIP spreads from the usual, so one artefact day (a
        # scale read in clothes, a pulse after the stairs) cannot carry the level alone.
        reach = EWMA_CLIP * spread[day_owner]
        clipped = np.clip(daily, centre[day_owner] - reach, centre[day_owner] + reach)
    w = (1.0 - lam) ** day_age
    total = np.bincount(day_owner, weights=w, minlength=n)
    has = total > 0
    level[has] = np.bincount(day_owner, weights=w * daily, minlength=n)[has] / total[has]
    robust = level.copy()
    robust[has] = np.bincount(day_owner, weights=w * clipped, minlength=n)[has] / total[has]
    factor[has] = np.sqrt(np.bincount(day_owner, weights=w * w, minlength=n)[has]) / total[has]
    return level, robust, length, factor


def recent_medians(
    readings: SortedReadings, patient_row: IntArray, anchor: IntArray, kind_idx: int, days: float = RECENT_DAYS
) -> tuple[FloatArray, IntArray]:
    """Median and count of each patient's readings of one kind in (anchor − days, anchor]; NaN where none."""
    group = patient_row * N_KINDS + kind_idx
    start = readings.first_at_or_after(group, anchor - round(days * DAY_S) + 1)
    stop = readings.last_at_or_before(group, anchor) + 1
    length = np.where(stop > start, stop - start, 0).astype(np.int64)
    median = np.full(len(patient_row), np.nan)
    has = length > 0
    if has.any():
        lengths = length[has]
        seg = np.repeat(np.arange(len(lengths)), lengths)
        offsets = np.cumsum(lengths) - lengths
        flat = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(offsets - start[has], lengths)
        median[has] = segment_medians(readings.value[flat], seg, len(lengths))
    return median, length


WEIGHT_MIN_READINGS = 2
"""The recent weight needs two readings: one scale read in clothes is never a gain on its own."""


def weight_above_baseline(readings: SortedReadings, rules: PatientRules) -> TrendResults:
    """After the run-in: the median weight of the last RECENT_DAYS against the personal baseline's centre.

    Breach (yellow) when it is more than the patient's `weight_gain_kg` above it, from at least
    WEIGHT_MIN_READINGS readings. The lagged baseline keeps a gain over one to two weeks visible, which a 3-day
    window's minimum misses, and the median ignores one heavy reading.
    """
    rule, kind = "trend.weight_baseline", Kind.BODY_WEIGHT
    k = KIND_INDEX[kind]
    rows = np.flatnonzero(readings.is_batch & (readings.kind_idx == k))
    if len(rows) == 0 or not len(rules.weight_baseline_kg):
        return _empty_trend(rule, kind)
    rows = rows[~np.isnan(rules.weight_baseline_kg[readings.patient_row[rows]])]
    if len(rows) == 0:
        return _empty_trend(rule, kind)
    p_all = readings.patient_row[rows]
    latest = rows[np.append(p_all[1:] != p_all[:-1], True)]
    p = readings.patient_row[latest]
    end_at = readings.measured_at[latest]
    recent, count = recent_medians(readings, p, end_at, k)
    centre = rules.centre[p, k]
    limit = rules.weight_baseline_kg[p]
    delta = np.round(recent - centre, KINDS[kind].decimals + 1)
    breached = (delta > limit) & (count >= WEIGHT_MIN_READINGS)
    window_s = np.full(len(p), round(RECENT_DAYS * DAY_S), dtype=np.int64)
    return TrendResults(
        rule=rule,
        kind=kind,
        patient_row=p,
        start_at=end_at - window_s,
        end_at=end_at,
        start_value=centre,
        end_value=recent,
        delta=delta,
        limit=limit,
        window_s=window_s,
        count=count,
        breached=breached,
        severity=np.where(breached, np.int8(Severity.YELLOW), np.int8(Severity.NONE)).astype(np.int8),
        reading_index=readings.batch_index(latest),
    )


def _empty_trend(rule: str, kind: Kind) -> TrendResults:
    i = np.zeros(0, dtype=np.int64)
    f = np.zeros(0)
    return TrendResults(rule, kind, i, i, i, f, f, f, f, i, i, np.zeros(0, dtype=np.bool_), np.zeros(0, np.int8), i)


def _empty(rule: str, inputs: tuple[CombinedInput, ...]) -> CombinedResults:
    i = np.zeros(0, dtype=np.int64)
    f = np.zeros(0)
    f2 = np.zeros((0, len(inputs)))
    return CombinedResults(
        rule, inputs, i, i, i, f2, f2, f2, f2, f2, i, f, f, np.zeros(0, dtype=np.bool_), np.zeros(0, dtype=np.int8)
    )


def evaluate_combined(readings: SortedReadings, rules: PatientRules) -> list[CombinedResults]:
    """Every combined rule, in a fixed order."""
    return [evaluate_combined_rule(readings, rules, rule) for rule in COMBINED_RULES]
