"""Two-zone control chart for single readings after the run-in: warning limits, action limits and persistence.

The Shewhart chart's two zones (Montgomery, *Introduction to Statistical Quality Control*, 8th ed. 2019, §5.3.6
"warning limits"; ISO 7870-2:2023 §6) applied to a patient's personal baseline:

- the **warning limit** is the yellow limit in force (the personal band, or the protocol's where the band only
  relaxes it). A reading beyond it but inside the action limit is *counted*, not alarmed alone: the yellow
  threshold alarm needs persistence — `PERSIST_MIN_DAYS` of the last `PERSIST_DAYS` measurement days beyond the
  warning limit on the same side (the Western Electric *Statistical Quality Control Handbook*, 1956, rule 2:
  "two out of three successive points beyond 2σ on one side"), days within `PERSIST_LOOKBACK_DAYS`;
- the **action limit** is centre ∓ max(`ACTION_K` · spread, the kind's `ACTION_MIN_DISTANCE`), never inside the
  warning limit: a reading beyond it is "far from the patient's normal" and goes the artefact way
  (`rules_engine.repeats`: a repeat request that alarms when the repeat confirms it or none comes in time).

Red hard floors are outside both and alarm at once. Where a kind has no personal baseline (before the run-in, or
a kind that is not personalised) or the yellow limit is hand-set, there is no action zone: every yellow reading is
far from what the limit's author took as normal and goes the artefact way, as it always did.

Pure: the limits are tables in `PatientRules.action`; `persistence_days` reads the sorted readings.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rules_engine.kinds_index import KIND_INDEX, N_KINDS
from rules_engine.readings import BoolArray, FloatArray, IntArray, SortedReadings
from vitals import Kind

DAY_S = 86_400
NAN = float("nan")

ACTION_K = 3.5
"""Action limits in spreads (robust σ, floored by the kind's `min_spread`). 3.5σ rather than Shewhart's 3σ because
the warning zone below it has the persistence rule behind it, and a home reading has heavier tails than the normal
distribution the 3σ figure assumes (Montgomery §5.3: limits are widened when false alarms are costly)."""

ACTION_MIN_DISTANCE: Mapping[Kind, float] = {
    # BTS 2017 oxygen guideline: a fall of ≥ 3 percentage points prompts assessment; a single reading is "far"
    # only when that fall is beyond the oximeter's own error too, A_rms ≤ 4 points (ISO 80601-2-61): 3 + 4.
    Kind.SPO2: 7.0,
    # Varde default, no guideline figure: a pulse taken right after climbing stairs or walking to the device is
    # commonly 15–35 /min above the resting value and settles within minutes; a single resting reading 40 /min
    # above the usual is beyond that everyday exertion.
    Kind.PULSE_RATE: 40.0,
    Kind.HEART_RATE: 40.0,
    # Orthostatic hypotension is a ≥ 20 mmHg fall (Freeman et al., Clin Auton Res 2011;21:69); 30 mmHg adds a home
    # cuff's ±8–10 mmHg single-reading error (ESH 2021 home-monitoring statement).
    Kind.BP_SYSTOLIC: 30.0,
    # IDSA (High et al., Clin Infect Dis 2009;48:149): > 1.1 °C above baseline is fever; 1.5 °C is unambiguous.
    Kind.BODY_TEMPERATURE: 1.5,
    # Two NEWS2 bands above the usual (each band is about 4 /min wide): beyond the pleth signal's error.
    Kind.RESP_RATE: 8.0,
}
"""The least distance from the patient's centre at which a single reading counts as far, per kind."""

PERSIST_DAYS = 3
PERSIST_MIN_DAYS = 2
"""Western Electric rule 2: two of three successive measurement days beyond the warning limit on one side."""
PERSIST_LOOKBACK_DAYS = 7
"""The three measurement days must fall within a week: two breaches a fortnight apart are not persistence."""


def _distance_table() -> FloatArray:
    table = np.full(N_KINDS, NAN)
    for kind, distance in ACTION_MIN_DISTANCE.items():
        table[KIND_INDEX[kind]] = distance
    return table


MIN_DISTANCE = _distance_table()


def action_limits(
    centre: FloatArray, spread: FloatArray, kind_idx: IntArray, yellow_low: FloatArray, yellow_high: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(action_low, action_high): centre ∓ max(ACTION_K · spread, minimum distance), never inside the warning
    (yellow) limit; NaN where the kind has no action zone or the side has no warning limit. `spread` is the
    floored spread the rules standardise with."""
    distance = MIN_DISTANCE[kind_idx]
    half = np.maximum(ACTION_K * spread, distance)
    none = np.isnan(distance) | np.isnan(centre)
    low = np.where(none | np.isnan(yellow_low), NAN, np.fmin(centre - half, yellow_low))
    high = np.where(none | np.isnan(yellow_high), NAN, np.fmax(centre + half, yellow_high))
    return low, high


PROVISIONAL_DAYS = 14
PROVISIONAL_MIN_READINGS = 5
"""Before the run-in is over (no personal baseline yet), the action limit is set from trial limits: the median and
MAD of the kind's readings of the last 14 days, from at least five (Montgomery §5.4, "Phase I" trial control limits
from the first samples, revised as data accrue). With fewer there is no action zone and every yellow reading asks
for a repeat, as on the first day."""


def provisional_centres(
    readings: SortedReadings, patient_row: IntArray, kind_idx: IntArray, at: IntArray
) -> tuple[FloatArray, FloatArray]:
    """(centre, robust spread) of the history readings of each (patient, kind) in [at − PROVISIONAL_DAYS, at];
    NaN with fewer than PROVISIONAL_MIN_READINGS."""
    from rules_engine.personal import MAD_TO_SD, segment_medians

    n = len(patient_row)
    centre = np.full(n, NAN)
    spread = np.full(n, NAN)
    if n == 0:
        return centre, spread
    group = patient_row * N_KINDS + kind_idx
    start = readings.first_at_or_after(group, at - PROVISIONAL_DAYS * DAY_S)
    stop = readings.last_at_or_before(group, at) + 1
    length = np.maximum(stop - start, 0)
    owner = np.repeat(np.arange(n), length)
    offsets = np.cumsum(length) - length
    flat = start[owner] + (np.arange(int(length.sum())) - offsets[owner])
    history = ~readings.is_batch[flat]
    owner, flat = owner[history], flat[history]
    counts = np.bincount(owner, minlength=n)
    enough = np.flatnonzero(counts >= PROVISIONAL_MIN_READINGS)
    if len(enough) == 0:
        return centre, spread
    pick = np.isin(owner, enough)
    segment = np.searchsorted(enough, owner[pick])
    values = readings.value[flat[pick]]
    med = segment_medians(values, segment, len(enough))
    mad = segment_medians(np.abs(values - med[segment]), segment, len(enough))
    centre[enough] = med
    spread[enough] = mad * MAD_TO_SD
    return centre, spread


def persistence_days(
    readings: SortedReadings,
    patient_row: IntArray,
    kind_idx: IntArray,
    high: BoolArray,
    warning: FloatArray,
    at: IntArray,
) -> IntArray:
    """For each (patient, kind, side, warning limit, time): on how many of the last `PERSIST_DAYS` measurement days
    (UTC days with a reading of the kind, up to and including the day of `at`, within `PERSIST_LOOKBACK_DAYS`) a
    reading lay beyond `warning` on that side. Strict like every limit; values as the sorted readings hold them."""
    n = len(patient_row)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    group = patient_row * N_KINDS + kind_idx
    start = readings.first_at_or_after(group, at - PERSIST_LOOKBACK_DAYS * DAY_S + 1)
    stop = readings.last_at_or_before(group, at) + 1
    length = np.maximum(stop - start, 0)
    owner = np.repeat(np.arange(n), length)
    offsets = np.cumsum(length) - length
    flat = start[owner] + (np.arange(int(length.sum())) - offsets[owner])
    value = readings.value[flat]
    beyond = np.where(high[owner], value > warning[owner], value < warning[owner])
    day = readings.measured_at[flat] // DAY_S
    key = owner * (1 << 32) + (day - day.min() if len(day) else day)
    keys, inverse = np.unique(key, return_inverse=True)
    day_beyond = np.zeros(len(keys), dtype=np.bool_)
    np.logical_or.at(day_beyond, inverse, beyond)
    key_owner = keys >> 32
    # Rank of each measurement day from the newest (0) within its owner.
    last_of_owner = np.searchsorted(key_owner, key_owner, side="right") - 1
    rank = last_of_owner - np.arange(len(keys))
    counted = np.bincount(key_owner[(rank < PERSIST_DAYS) & day_beyond], minlength=n)
    return counted.astype(np.int64)


__all__ = [
    "ACTION_K",
    "ACTION_MIN_DISTANCE",
    "PERSIST_DAYS",
    "PERSIST_LOOKBACK_DAYS",
    "PERSIST_MIN_DAYS",
    "action_limits",
    "persistence_days",
    "provisional_centres",
]
