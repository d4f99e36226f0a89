"""Personal limits: the yellow zone of each kind follows the patient's own baseline once a run-in is over.

For each (patient, kind) a robust baseline is computed from the patient's readings: the median as centre and the
scaled median absolute deviation (MAD × 1.4826, a consistent estimator of σ for normal data) as spread. The
baseline window is the `WINDOW_DAYS` that end `LAG_DAYS` before the computation (never before the run-in is over),
so a slow deterioration of the last week is not absorbed into the patient's "usual". Personal yellow limits are
centre ± max(K · spread, minimum half-width of the kind) — Shewhart-style action limits (Montgomery, *Introduction
to Statistical Quality Control*, 3σ limits) with a clinically meaningful minimum so a very stable patient does not
alarm on noise — and never looser than the kind's red hard floor.

Layering (`apply_personal`): protocol default → personal (after the run-in) → a clinician's hand-set limit (the
override rows, applied after this by `build_patient_rules`) always wins. Red hard floors are absolute: a personal
layer never moves a red limit beyond them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rules_engine.kinds_index import KIND_INDEX, N_KINDS
from rules_engine.profiles import SOURCE_HARD_FLOOR, SOURCE_NONE, SOURCE_OVERRIDE, SOURCE_PERSONAL, Limit
from rules_engine.readings import BoolArray, FloatArray, IntArray, ReadingArrays
from vitals import KINDS, Kind

DAY_S = 86_400
NAN = float("nan")

RUN_IN_DAYS = 14
"""Days of follow-up before personal limits replace the protocol's (two weeks of daily readings)."""
MIN_READINGS = 10
"""Readings of a kind the baseline needs: 10 of a 14-day run-in leaves room for a missed day in three, and a MAD
from fewer than 10 values is too unstable (its relative standard error is ~0.4 at n = 10) to set limits with."""
WINDOW_DAYS = 28
"""Length of the baseline window: four weeks of daily readings."""
LAG_DAYS = 7
"""The baseline window ends this many days before now. Weight, pulse and SpO2 begin to change 1–2 weeks before a
heart-failure admission (Chaudhry et al., Circulation 2007;116:1549; Zile et al., Circ Heart Fail 2016): a baseline
of the last days would follow a decompensation and hide it. A lagged window still follows slow, harmless drift
(weeks), which a baseline frozen after the run-in would turn into alarms."""
K = 3.0
"""Half-width of the personal yellow band in spreads: Shewhart's 3σ action limits (Montgomery)."""
MAD_TO_SD = 1.4826


class Source(IntEnum):
    """The `PatientRules.limit_source` codes the personal layer writes (`profiles.LIMIT_SOURCES` names them; a
    condition's own default keeps its protocol code)."""

    PERSONAL = SOURCE_PERSONAL
    HARD_FLOOR = SOURCE_HARD_FLOOR
    HAND_SET = SOURCE_OVERRIDE
    NONE = SOURCE_NONE


@dataclass(frozen=True, slots=True)
class PersonalSpec:
    """How one kind's personal band is built."""

    low: bool
    high: bool
    min_half_width: float
    """The band is never narrower than centre ± this (a clinically meaningful change)."""
    min_spread: float
    """Floor of the spread used to standardise deviations (the device resolution and day-to-day noise)."""
    tighten: bool
    """May the personal band be tighter than the protocol's yellow limit? Only where a change from the patient's
    own usual is itself a recognised warning sign; otherwise personal limits only relax a protocol limit that the
    patient's usual range reaches into, and sustained changes inside it are the combined rule's job."""


PERSONAL_SPECS: Mapping[Kind, PersonalSpec] = {
    # BTS 2017 oxygen guideline: a fall of ≥ 3 percentage points in SpO2 should prompt a fuller assessment. Only
    # relaxing: a single home reading a few points down is most often a cold finger or motion, while a sustained
    # fall is what the combined rule weighs.
    Kind.SPO2: PersonalSpec(low=True, high=False, min_half_width=3.0, min_spread=1.0, tighten=False),
    # No guideline figure for a single home pulse reading against the usual; a pulse taken after the stairs is
    # common, so the band only relaxes the protocol's limits (a patient whose usual pulse is 100 /min).
    Kind.PULSE_RATE: PersonalSpec(low=True, high=True, min_half_width=25.0, min_spread=4.0, tighten=False),
    Kind.HEART_RATE: PersonalSpec(low=True, high=True, min_half_width=25.0, min_spread=4.0, tighten=False),
    # A systolic fall of ≥ 20 mmHg is the consensus definition of orthostatic hypotension (Freeman et al., Clin Auton
    # Res 2011;21:69): the smallest fall treated as clinically relevant. Only the low side, and only relaxing:
    # the common false alarm is a heart-failure patient on full therapy who lives at 95 mmHg.
    Kind.BP_SYSTOLIC: PersonalSpec(low=True, high=False, min_half_width=20.0, min_spread=5.0, tighten=False),
    # IDSA fever in older adults in long-term care (High et al., Clin Infect Dis 2009;48:149): a rise of
    # > 1.1 °C (2 °F) over the person's baseline is fever.
    Kind.BODY_TEMPERATURE: PersonalSpec(low=False, high=True, min_half_width=1.1, min_spread=0.2, tighten=True),
    # Weight has no personal limits (the weight rules judge change); its baseline feeds the weight and combined
    # rules.
    Kind.BODY_WEIGHT: PersonalSpec(low=False, high=False, min_half_width=0.0, min_spread=0.5, tighten=False),
}
"""Kinds with a personal baseline. Glucose keeps the ADA's absolute hypoglycaemia levels; respiratory rate from an
oximeter's pleth signal is too imprecise to personalise; diastolic pressure adds nothing to systolic at home."""

BASELINE_KINDS: tuple[Kind, ...] = tuple(PERSONAL_SPECS)


def _floors(spo2_red_low: float) -> NDArray[np.float64]:
    """(N_KINDS, 2) red hard floors (low, high), strict like every limit: a value beyond the number is red."""
    table = np.full((N_KINDS, 2), NAN)
    for kind, low, high in (
        # BTS 2017: SpO2 < 85 % calls for high-flow oxygen in an acutely ill patient (scale 1); NEWS2 scale 2 scores
        # ≤ 83 % as 3, so a hypercapnic patient's floor is 84 %.
        (Kind.SPO2, spo2_red_low, NAN),
        # Systolic < 80 mmHg: well below the ESC 2021 shock criterion (< 90 mmHg with hypoperfusion) so a home cuff's
        # error cannot reach it from a patient's usual 100; NEWS2 ≥ 220 mmHg scores 3.
        (Kind.BP_SYSTOLIC, 80.0, 219.0),
        # ESH 2023: diastolic ≥ 120 mmHg with a high systolic is the hypertensive-emergency range.
        (Kind.BP_DIASTOLIC, NAN, 119.0),
        # Pulse < 40 or > 140 /min (the clinical specification's hard floor; NEWS2 scores ≤ 40 and ≥ 131 as 3).
        (Kind.PULSE_RATE, 40.0, 140.0),
        (Kind.HEART_RATE, 40.0, 140.0),
        # NEWS2: ≤ 35.0 °C and ≥ 39.1 °C score 3.
        (Kind.BODY_TEMPERATURE, 35.1, 39.0),
        # ADA Standards of Care 2024 §6: level 2 hypoglycaemia < 3.0 mmol/L.
        (Kind.GLUCOSE, 3.0, NAN),
    ):
        table[KIND_INDEX[kind]] = (low, high)
    return table


HARD_FLOORS_SCALE1 = _floors(85.0)
HARD_FLOORS_SCALE2 = _floors(84.0)
"""Red hard floors per SpO2 scale: (N_KINDS, 2) as (red_low, red_high)."""


@dataclass(frozen=True, slots=True)
class PersonalBaselines:
    """One row per (patient, kind) with a baseline: the inputs of the personal layer, as the table stores them."""

    patient_row: IntArray
    kind_idx: IntArray
    centre: FloatArray
    spread: FloatArray
    """Robust σ (MAD × 1.4826), not floored."""
    n: IntArray
    window_start: IntArray
    window_end: IntArray
    """Epoch seconds: the readings in [window_start, window_end) made the baseline."""
    version: IntArray
    """Stored version (0 when computed in memory)."""

    def __len__(self) -> int:
        return len(self.patient_row)

    @classmethod
    def of(
        cls,
        patient_row: ArrayLike,
        kind_idx: ArrayLike,
        centre: ArrayLike,
        spread: ArrayLike,
        n: ArrayLike,
        window_start: ArrayLike | None = None,
        window_end: ArrayLike | None = None,
        version: ArrayLike | None = None,
    ) -> PersonalBaselines:
        rows = np.asarray(patient_row, dtype=np.int64)
        zeros = np.zeros(len(rows), dtype=np.int64)

        def ints(values: ArrayLike | None) -> IntArray:
            return zeros.copy() if values is None else np.asarray(values, dtype=np.int64)

        return cls(
            rows,
            np.asarray(kind_idx, dtype=np.int64),
            np.asarray(centre, dtype=np.float64),
            np.asarray(spread, dtype=np.float64),
            np.asarray(n, dtype=np.int64),
            ints(window_start),
            ints(window_end),
            ints(version),
        )

    @classmethod
    def empty(cls) -> PersonalBaselines:
        return cls.of([], [], [], [], [])

    def take(self, rows: ArrayLike) -> PersonalBaselines:
        """The baselines of patient rows `rows`, renumbered: row i of the result is row `rows[i]` here (a row may
        repeat), as `RuleInputs.take` does for the replay."""
        wanted = np.asarray(rows, dtype=np.int64)
        order = np.argsort(wanted, kind="stable")
        ordered = wanted[order]
        start = np.searchsorted(ordered, self.patient_row, side="left")
        count = np.searchsorted(ordered, self.patient_row, side="right") - start
        source = np.repeat(np.arange(len(self)), count)
        offset = np.arange(len(source)) - np.repeat(np.cumsum(count) - count, count)
        new_row = order[np.repeat(start, count) + offset]
        return PersonalBaselines(
            new_row.astype(np.int64),
            *(
                getattr(self, name)[source]
                for name in ("kind_idx", "centre", "spread", "n", "window_start", "window_end", "version")
            ),
        )

    @classmethod
    def concat(cls, parts: list[PersonalBaselines]) -> PersonalBaselines:
        """The rows of `parts` one after another (patient rows kept)."""
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in _COLUMNS))

    def select(self, index: ArrayLike, patient_row: ArrayLike) -> PersonalBaselines:
        """Rows `index` of these baselines, renumbered to patient rows `patient_row`."""
        at = np.asarray(index, dtype=np.int64)
        return PersonalBaselines(
            np.asarray(patient_row, dtype=np.int64), *(getattr(self, name)[at] for name in _COLUMNS[1:])
        )

    def dense(self, n_patients: int) -> tuple[FloatArray, FloatArray, IntArray]:
        """(centre, spread, version) as (n_patients, N_KINDS) tables; NaN (version −1) where no baseline."""
        centre = np.full((n_patients, N_KINDS), NAN)
        spread = np.full((n_patients, N_KINDS), NAN)
        version = np.full((n_patients, N_KINDS), -1, dtype=np.int64)
        centre[self.patient_row, self.kind_idx] = self.centre
        spread[self.patient_row, self.kind_idx] = self.spread
        version[self.patient_row, self.kind_idx] = self.version
        return centre, spread, version


_COLUMNS = ("patient_row", "kind_idx", "centre", "spread", "n", "window_start", "window_end", "version")


def segment_medians(values: FloatArray, segment: IntArray, n_segments: int) -> FloatArray:
    """Median of `values` per segment id (0..n_segments−1; every segment non-empty), by one sort."""
    order = np.lexsort((values, segment))
    ordered, seg = values[order], segment[order]
    counts = np.bincount(seg, minlength=n_segments)
    offsets = np.cumsum(counts) - counts
    return np.asarray((ordered[offsets + (counts - 1) // 2] + ordered[offsets + counts // 2]) / 2, dtype=np.float64)


def compute_baselines(
    readings: ReadingArrays,
    at: int,
    since: ArrayLike,
    *,
    run_in_days: float = RUN_IN_DAYS,
    min_readings: int = MIN_READINGS,
    window_days: float = WINDOW_DAYS,
    lag_days: float = LAG_DAYS,
) -> PersonalBaselines:
    """Baselines at time `at` (epoch s) for every (patient, kind) of `BASELINE_KINDS` whose run-in is over.

    `since[patient_row]` is the start of the patient's follow-up (epoch s; their first reading). The run-in is over
    when `at − since ≥ run_in_days` and the window holds at least `min_readings` readings of the kind. The window
    is [end − window_days, end) with end = max(at − lag_days, since + run_in_days), capped at `at`: right after the
    run-in the baseline is the run-in itself; from then on it lags `lag_days` behind.
    """
    since_at = np.asarray(since, dtype=np.int64)
    wanted = np.isin(readings.kind_idx, [KIND_INDEX[k] for k in BASELINE_KINDS])
    p, k, t, v = (
        readings.patient_row[wanted],
        readings.kind_idx[wanted],
        readings.measured_at[wanted],
        readings.value[wanted],
    )
    run_in_s, lag_s, window_s = (round(d * DAY_S) for d in (run_in_days, lag_days, window_days))
    start_of = since_at[p]
    end = np.minimum(np.maximum(at - lag_s, start_of + run_in_s), at)
    inside = (at - start_of >= run_in_s) & (t < end) & (t >= end - window_s) & (t >= start_of) & ~np.isnan(v)
    p, k, t, v, end = p[inside], k[inside], t[inside], v[inside], end[inside]
    if len(p) == 0:
        return PersonalBaselines.empty()
    group = p * N_KINDS + k
    groups, segment, counts = np.unique(group, return_inverse=True, return_counts=True)
    centre = segment_medians(v, segment, len(groups))
    mad = segment_medians(np.abs(v - centre[segment]), segment, len(groups))
    first = np.full(len(groups), np.iinfo(np.int64).max)
    np.minimum.at(first, segment, t)
    window_end = np.zeros(len(groups), dtype=np.int64)
    window_end[segment] = end
    keep = counts >= max(min_readings, 1)
    groups = groups[keep]
    return PersonalBaselines.of(
        groups // N_KINDS,
        groups % N_KINDS,
        centre[keep],
        mad[keep] * MAD_TO_SD,
        counts[keep],
        window_end[keep] - window_s,
        window_end[keep],
    )


def _spec_table() -> tuple[BoolArray, BoolArray, FloatArray, FloatArray, BoolArray]:
    low = np.zeros(N_KINDS, dtype=np.bool_)
    high = np.zeros(N_KINDS, dtype=np.bool_)
    width = np.zeros(N_KINDS)
    spread = np.ones(N_KINDS)
    tighten = np.zeros(N_KINDS, dtype=np.bool_)
    for kind, spec in PERSONAL_SPECS.items():
        i = KIND_INDEX[kind]
        low[i], high[i], width[i], spread[i] = spec.low, spec.high, spec.min_half_width, spec.min_spread
        tighten[i] = spec.tighten
    return low, high, width, spread, tighten


SPEC_LOW, SPEC_HIGH, MIN_HALF_WIDTH, MIN_SPREAD, SPEC_TIGHTEN = _spec_table()


def personal_band(
    centre: FloatArray, spread: FloatArray, kind_idx: IntArray, *, k: float = K
) -> tuple[FloatArray, FloatArray]:
    """Personal (yellow_low, yellow_high) before the hard floors: centre ∓ max(k·spread, minimum half-width), rounded
    outwards to the kind's displayed decimals (a limit is compared and shown on one rounding). NaN on a side the
    kind does not personalise."""
    half = np.maximum(k * spread, MIN_HALF_WIDTH[kind_idx])
    scale = 10.0 ** np.array([KINDS[kind].decimals for kind in Kind], dtype=np.float64)[kind_idx]
    low = np.where(SPEC_LOW[kind_idx], np.floor((centre - half) * scale + 1e-9) / scale, NAN)
    high = np.where(SPEC_HIGH[kind_idx], np.ceil((centre + half) * scale - 1e-9) / scale, NAN)
    return low, high


def apply_personal(
    limits: FloatArray,
    source: NDArray[np.int8],
    personal: PersonalBaselines,
    spo2_scale2: BoolArray,
    *,
    k: float = K,
) -> None:
    """Layer personal yellow limits over the protocol's `limits` (n_patients, N_KINDS, 4) in place, and mark
    `source`.

    Per side the kind personalises: yellow = the personal band (for kinds that may not tighten, the looser of the
    band and the protocol's yellow), never looser than the hard floor. Red stays the
    protocol's where the protocol's red is at least as loose as the personal yellow (the patient's usual range
    does not reach into it); otherwise — or where the protocol has no red — red is the hard floor. Hand-set rows
    are applied after this and win.
    """
    if not len(personal):
        return
    rows, kinds = personal.patient_row, personal.kind_idx
    low, high = personal_band(personal.centre, personal.spread, kinds, k=k)
    floors = np.where(spo2_scale2[rows, None], HARD_FLOORS_SCALE2[kinds], HARD_FLOORS_SCALE1[kinds])
    for side, band, floor, yellow_col, red_col, looser in (
        ("low", low, floors[:, 0], Limit.YELLOW_LOW, Limit.RED_LOW, np.less_equal),
        ("high", high, floors[:, 1], Limit.YELLOW_HIGH, Limit.RED_HIGH, np.greater_equal),
    ):
        del side
        protocol_yellow = limits[rows, kinds, yellow_col]
        # A band that may not tighten applies only where the protocol has a limit on that side to relax.
        has = ~np.isnan(band) & (SPEC_TIGHTEN[kinds] | ~np.isnan(protocol_yellow))
        r, kk, band, floor = rows[has], kinds[has], band[has], floor[has]
        protocol_yellow = protocol_yellow[has]
        relax_only = ~SPEC_TIGHTEN[kk]
        if yellow_col == Limit.YELLOW_LOW:
            band = np.where(relax_only, np.fmin(band, protocol_yellow), band)
            yellow = np.where(np.isnan(floor), band, np.maximum(band, floor))
        else:
            band = np.where(relax_only, np.fmax(band, protocol_yellow), band)
            yellow = np.where(np.isnan(floor), band, np.minimum(band, floor))
        protocol_red = limits[r, kk, red_col]
        keep_red = ~np.isnan(protocol_red) & looser(protocol_red, yellow)
        red = np.where(keep_red, protocol_red, floor)
        changed = ~(yellow == protocol_yellow)
        limits[r, kk, yellow_col] = yellow
        source[r, kk, yellow_col] = np.where(changed, np.int8(Source.PERSONAL), source[r, kk, yellow_col])
        limits[r, kk, red_col] = red
        source[r, kk, red_col] = np.where(
            keep_red, source[r, kk, red_col], np.where(np.isnan(floor), Source.NONE, Source.HARD_FLOOR)
        ).astype(np.int8)
