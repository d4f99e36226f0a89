"""The rules' pure core: what is known about a set of patients, a batch of their readings and its history in,
alarm candidates and per-reading severities out.

The ingest path (`rules_engine.runtime`: inputs and history loaded from PostgreSQL in the ingest transaction) and
the offline replay (`rules_engine.replay`: inputs from a protocol or plan, history from memory) both call
`evaluate_patients`, so the alarms a replay predicts are the ones ingest would open. New per-patient inputs
(conditions, plan fields, personal limits) are added to `RuleInputs` and loaded at the edges, never queried here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rules_engine.candidates import BatchEvaluation, evaluate_batch
from rules_engine.personal import PersonalBaselines
from rules_engine.profiles import LimitOverrides, PatientRules, TrendOverrides, build_patient_rules, condition_matrix
from rules_engine.readings import ReadingArrays
from vitals import Kind

HISTORY_DAYS = 14
"""Days of history before a batch's earliest reading that the rules see."""
HISTORY_PER_KIND = 100
"""Newest readings per patient and kind fetched as history; bounds the cost for patients who measure often."""
HISTORY_KINDS: tuple[Kind, ...] = (
    Kind.BODY_WEIGHT,
    Kind.SPO2,
    Kind.PULSE_RATE,
    Kind.HEART_RATE,
    Kind.BP_SYSTOLIC,
    Kind.BP_DIASTOLIC,
    Kind.BODY_TEMPERATURE,
    Kind.RESP_RATE,
    Kind.GLUCOSE,
)
"""The kinds a windowed rule (trends, NEWS2, the threshold rules' persistence) reads from history."""


@dataclass(frozen=True, slots=True)
class RuleInputs:
    """Everything the rules know about each patient row besides the readings; row i is the batch's patient row i."""

    protocols: tuple[str, ...]
    """The follow-up protocol of each patient row (`rules_engine.profiles.Protocol` values)."""
    limit_overrides: LimitOverrides | None = None
    trend_overrides: TrendOverrides | None = None
    conditions: tuple[tuple[str, ...], ...] = ()
    """Further conditions of each patient row besides its protocol (empty: none for every row)."""
    spo2_scale2: tuple[bool, ...] = ()
    """The clinician's NEWS2 SpO2 scale 2 per row, from the active plan (empty: scale 1 for every row)."""
    on_oxygen: tuple[bool, ...] = ()
    """Home oxygen per row, from the active plan (empty: air for every row)."""
    personal: PersonalBaselines = field(default_factory=PersonalBaselines.empty)
    """Personal baselines in force (`rules_engine.personal`), one row per (patient row, kind) after the run-in; the
    ingest path loads the stored versions, the replay recomputes them at each day boundary."""

    def __len__(self) -> int:
        return len(self.protocols)

    def take(self, rows: ArrayLike) -> RuleInputs:
        """The inputs of patient rows `rows`, in that order (a row may repeat): row i of the result is row
        `rows[i]` of these inputs. The replay evaluates many batches of one patient in one call this way."""
        rows = np.asarray(rows, dtype=np.int64)
        picked = rows.tolist()
        return RuleInputs(
            protocols=tuple(self.protocols[r] for r in picked),
            limit_overrides=_take_overrides(self.limit_overrides, rows),
            trend_overrides=_take_trends(self.trend_overrides, rows),
            conditions=tuple(self.conditions[r] for r in picked) if self.conditions else (),
            spo2_scale2=tuple(self.spo2_scale2[r] for r in picked) if self.spo2_scale2 else (),
            on_oxygen=tuple(self.on_oxygen[r] for r in picked) if self.on_oxygen else (),
            personal=self.personal.take(rows),
        )

    def patient_rules(self) -> PatientRules:
        """The dense per-patient tables the rules index: conditions composed, personal limits after the run-in,
        hand-set overrides last."""
        return build_patient_rules(
            np.array(self.protocols, dtype=np.str_),
            self.limit_overrides,
            self.trend_overrides,
            conditions=condition_matrix(self.conditions) if self.conditions else None,
            spo2_scale2=self.spo2_scale2 or None,
            on_oxygen=self.on_oxygen or None,
            personal=self.personal,
        )


def _new_rows(old_rows: NDArray[np.int64], rows: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For override rows of patient `old_rows`: (index of each copied override, its new patient row), one copy per
    position of that patient in `rows`."""
    order = np.argsort(rows, kind="stable")
    ordered = rows[order]
    start = np.searchsorted(ordered, old_rows, side="left")
    count = np.searchsorted(ordered, old_rows, side="right") - start
    source = np.repeat(np.arange(len(old_rows)), count)
    offset = np.arange(len(source)) - np.repeat(np.cumsum(count) - count, count)
    return source, order[np.repeat(start, count) + offset]


def _take_overrides(overrides: LimitOverrides | None, rows: NDArray[np.int64]) -> LimitOverrides | None:
    if overrides is None:
        return None
    source, new_row = _new_rows(overrides.patient_row, rows)
    return LimitOverrides.of(new_row, overrides.kind_idx[source], overrides.limit[source], overrides.value[source])


def _take_trends(overrides: TrendOverrides | None, rows: NDArray[np.int64]) -> TrendOverrides | None:
    if overrides is None:
        return None
    source, new_row = _new_rows(overrides.patient_row, rows)
    return TrendOverrides.of(new_row, overrides.setting[source], overrides.value[source])


def evaluate_patients(inputs: RuleInputs, batch: ReadingArrays, history: ReadingArrays) -> BatchEvaluation:
    """Evaluate one batch: `batch.patient_row` and `history.patient_row` index the rows of `inputs`.

    `history` is what the runtime's history query gives: up to `HISTORY_PER_KIND` newest readings per patient and
    kind of `HISTORY_KINDS` from `HISTORY_DAYS` before the batch's earliest reading on, the batch itself excluded.
    """
    return evaluate_batch(batch, inputs.patient_rules(), history)
