"""NEWS2 (Royal College of Physicians, National Early Warning Score 2, 2017) from home measurements.

Sub-scores use the chart's exact bands. Values are first rounded to the kind's displayed decimals (half to even),
so 38.05 °C is read as the chart reads 38.0. At home two chart parameters are not measured:

- consciousness (ACVPU) is assumed Alert and scores 0; the explanation says so;
- air or oxygen comes from the plan (`PatientRules.on_oxygen`, default air): oxygen scores 2 and selects the
  oxygen bands of SpO2 scale 2.

The aggregate is scored from each parameter's latest reading within `window_s` before the patient's latest
NEWS2 reading in the batch. Missing parameters make the result `partial`: the sum of what was measured is a lower
bound, so its severity still stands. Severity (RCP 2017 clinical response): aggregate ≥ 7 → RED (emergency
response); 5–6, or any single parameter scoring 3 → YELLOW (urgent review); 0–4 without a 3 → NONE.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from rules_engine.kinds_index import KIND_INDEX, N_KINDS, round_as_shown
from rules_engine.readings import BoolArray, FloatArray, IntArray, SortedReadings, run_starts
from rules_engine.severity import Severity
from vitals import Kind

MISSING = -1
"""Sub-score of a parameter without a reading in the window."""
DEFAULT_WINDOW_S = 3600
"""One observation round: readings more than an hour apart are not scored together."""
RED_AGGREGATE = 7
YELLOW_AGGREGATE = 5
OXYGEN_SCORE = 2


class News2Parameter(IntEnum):
    RESP_RATE = 0
    SPO2 = 1
    SYSTOLIC = 2
    PULSE = 3
    TEMPERATURE = 4


PARAMETER_KINDS: dict[News2Parameter, tuple[Kind, ...]] = {
    News2Parameter.RESP_RATE: (Kind.RESP_RATE,),
    News2Parameter.SPO2: (Kind.SPO2,),
    News2Parameter.SYSTOLIC: (Kind.BP_SYSTOLIC,),
    # Either pulse source counts; the later reading wins, pulse_rate on a tie.
    News2Parameter.PULSE: (Kind.PULSE_RATE, Kind.HEART_RATE),
    News2Parameter.TEMPERATURE: (Kind.BODY_TEMPERATURE,),
}
N_PARAMETERS = len(News2Parameter)


def _band(values: FloatArray, upper_edges: tuple[float, ...], scores: tuple[int, ...]) -> NDArray[np.int8]:
    """Score by bands whose upper edges are inclusive: value ≤ edge[0] → scores[0], ≤ edge[1] → scores[1], …"""
    idx = np.searchsorted(np.asarray(upper_edges, dtype=np.float64), values, side="left")
    out = np.asarray(scores, dtype=np.int8)[np.minimum(idx, len(scores) - 1)]
    return np.where(np.isnan(values), np.int8(MISSING), out).astype(np.int8)


def _rounded(values: FloatArray, kind: Kind) -> FloatArray:
    return round_as_shown(values, KIND_INDEX[kind])


def score_resp_rate(values: FloatArray) -> NDArray[np.int8]:
    """≤8: 3 · 9–11: 1 · 12–20: 0 · 21–24: 2 · ≥25: 3."""
    return _band(_rounded(values, Kind.RESP_RATE), (8, 11, 20, 24), (3, 1, 0, 2, 3))


def score_spo2_scale1(values: FloatArray) -> NDArray[np.int8]:
    """≤91: 3 · 92–93: 2 · 94–95: 1 · ≥96: 0."""
    return _band(_rounded(values, Kind.SPO2), (91, 93, 95), (3, 2, 1, 0))


def score_spo2_scale2(values: FloatArray, on_oxygen: BoolArray) -> NDArray[np.int8]:
    """≤83: 3 · 84–85: 2 · 86–87: 1 · 88–92: 0 · ≥93 on air: 0 · on oxygen 93–94: 1, 95–96: 2, ≥97: 3."""
    v = _rounded(values, Kind.SPO2)
    on_air = _band(v, (83, 85, 87), (3, 2, 1, 0))
    oxygen_high = _band(v, (92, 94, 96), (0, 1, 2, 3))
    return np.where(np.asarray(on_oxygen, dtype=np.bool_) & (v >= 93), oxygen_high, on_air).astype(np.int8)


def score_systolic(values: FloatArray) -> NDArray[np.int8]:
    """≤90: 3 · 91–100: 2 · 101–110: 1 · 111–219: 0 · ≥220: 3."""
    return _band(_rounded(values, Kind.BP_SYSTOLIC), (90, 100, 110, 219), (3, 2, 1, 0, 3))


def score_pulse(values: FloatArray) -> NDArray[np.int8]:
    """≤40: 3 · 41–50: 1 · 51–90: 0 · 91–110: 1 · 111–130: 2 · ≥131: 3."""
    return _band(_rounded(values, Kind.PULSE_RATE), (40, 50, 90, 110, 130), (3, 1, 0, 1, 2, 3))


def score_temperature(values: FloatArray) -> NDArray[np.int8]:
    """≤35.0: 3 · 35.1–36.0: 1 · 36.1–38.0: 0 · 38.1–39.0: 1 · ≥39.1: 2."""
    return _band(_rounded(values, Kind.BODY_TEMPERATURE), (35.0, 36.0, 38.0, 39.0), (3, 1, 0, 1, 2))


def news2_severity(score: IntArray, any_three: BoolArray) -> NDArray[np.int8]:
    red = score >= RED_AGGREGATE
    yellow = (score >= YELLOW_AGGREGATE) | any_three
    return np.where(red, np.int8(Severity.RED), np.where(yellow, np.int8(Severity.YELLOW), np.int8(0))).astype(np.int8)


@dataclass(frozen=True, slots=True)
class News2Results:
    """One row per patient with a NEWS2 parameter in the batch; parameter columns follow `News2Parameter`."""

    patient_row: IntArray
    anchor_at: IntArray
    window_s: int
    values: FloatArray
    """(m, N_PARAMETERS), NaN where missing."""
    measured_at: IntArray
    """(m, N_PARAMETERS), time of each parameter's reading (0 where missing)."""
    sub_scores: NDArray[np.int8]
    """(m, N_PARAMETERS), MISSING where no reading in the window."""
    reading_index: IntArray
    """(m, N_PARAMETERS), batch index of each parameter's reading; -1 for a history reading or a missing one."""
    scale2: BoolArray
    on_oxygen: BoolArray
    score: IntArray
    """Sum of measured sub-scores, plus 2 for oxygen; consciousness is assumed alert (0)."""
    partial: BoolArray
    any_three: BoolArray
    severity: NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.patient_row)

    @property
    def n_measured(self) -> IntArray:
        return np.asarray((self.sub_scores != MISSING).sum(axis=1), dtype=np.int64)

    def missing_parameters(self, row: int) -> list[News2Parameter]:
        return [News2Parameter(int(i)) for i in np.flatnonzero(self.sub_scores[row] == MISSING)]


def evaluate_news2(
    readings: SortedReadings,
    spo2_scale2: BoolArray,
    on_oxygen: BoolArray,
    *,
    window_s: int = DEFAULT_WINDOW_S,
) -> News2Results:
    """Score NEWS2 for every patient with a NEWS2 parameter among the batch readings."""
    param_kind_idx = np.array([KIND_INDEX[k] for kinds in PARAMETER_KINDS.values() for k in kinds], dtype=np.int64)
    in_batch = np.flatnonzero(readings.is_batch & np.isin(readings.kind_idx, param_kind_idx))
    if len(in_batch):
        p_rows = readings.patient_row[in_batch]
        starts = run_starts(p_rows)
        patients = p_rows[starts]
        anchor = np.maximum.reduceat(readings.measured_at[in_batch], starts)
    else:
        patients = anchor = np.zeros(0, dtype=np.int64)
    m = len(patients)

    values = np.full((m, N_PARAMETERS), np.nan)
    at = np.zeros((m, N_PARAMETERS), dtype=np.int64)
    source = np.full((m, N_PARAMETERS), -1, dtype=np.int64)
    for param, kinds in PARAMETER_KINDS.items():
        for kind in kinds:
            idx = readings.last_at_or_before(patients * N_KINDS + KIND_INDEX[kind], anchor)
            found = idx >= 0
            safe = np.where(found, idx, 0)
            found &= readings.measured_at[safe] >= anchor - window_s
            # A later reading of another source of the same parameter replaces an earlier one.
            newer = found & (np.isnan(values[:, param]) | (readings.measured_at[safe] > at[:, param]))
            values[:, param] = np.where(newer, readings.value[safe], values[:, param])
            at[:, param] = np.where(newer, readings.measured_at[safe], at[:, param])
            source[:, param] = np.where(newer, readings.source[safe] - readings.n_history, source[:, param])
    source[np.isnan(values) | (source < 0)] = -1

    scale2 = np.asarray(spo2_scale2, dtype=np.bool_)[patients]
    oxygen = np.asarray(on_oxygen, dtype=np.bool_)[patients]
    sub = np.empty((m, N_PARAMETERS), dtype=np.int8)
    sub[:, News2Parameter.RESP_RATE] = score_resp_rate(values[:, News2Parameter.RESP_RATE])
    spo2 = values[:, News2Parameter.SPO2]
    sub[:, News2Parameter.SPO2] = np.where(scale2, score_spo2_scale2(spo2, oxygen), score_spo2_scale1(spo2))
    sub[:, News2Parameter.SYSTOLIC] = score_systolic(values[:, News2Parameter.SYSTOLIC])
    sub[:, News2Parameter.PULSE] = score_pulse(values[:, News2Parameter.PULSE])
    sub[:, News2Parameter.TEMPERATURE] = score_temperature(values[:, News2Parameter.TEMPERATURE])

    measured = sub != MISSING
    score = np.where(measured, sub, 0).sum(axis=1).astype(np.int64) + np.where(oxygen, OXYGEN_SCORE, 0)
    any_three = (sub == 3).any(axis=1)
    return News2Results(
        patient_row=patients,
        anchor_at=anchor,
        window_s=window_s,
        values=values,
        measured_at=at,
        sub_scores=sub,
        reading_index=source,
        scale2=scale2,
        on_oxygen=oxygen,
        score=score,
        partial=~measured.all(axis=1),
        any_three=any_three,
        severity=news2_severity(score, any_three),
    )
