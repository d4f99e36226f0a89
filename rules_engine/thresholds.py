"""Per-reading threshold rules over a whole batch: one gather of the limit table, four comparisons.

A reading breaches a low limit when strictly below it and a high limit when strictly above it (a value exactly
at a limit is within the plan); a NaN limit never breaches. Severity: RED beats YELLOW beats NONE. Values are
compared as they are shown, at their kind's decimals (`kinds_index.round_as_shown`): 35.06 °C is 35.1 °C, at
the limit 35.1 and so within the plan, as NEWS2, the texts and FHIR read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rules_engine.kinds_index import N_KINDS, round_as_shown
from rules_engine.profiles import Limit
from rules_engine.severity import Severity

NO_BREACH = -1
"""Breached-limit code of a reading within all its limits; otherwise the code is a `Limit` column."""

_SIDE_LOW = 0
_SIDE_HIGH = 1


def evaluate_thresholds(
    patient_rows: NDArray[np.int64],
    kind_idx: NDArray[np.int64],
    values: NDArray[np.float64],
    limits: NDArray[np.float64],
) -> tuple[NDArray[np.int8], NDArray[np.int8]]:
    """Severity code (`Severity`) and breached-limit code (`Limit` column or NO_BREACH) per reading.

    `limits` is the (n_patients, N_KINDS, 4) table from `build_patient_rules`.
    """
    if len(kind_idx) and (kind_idx.min() < 0 or kind_idx.max() >= N_KINDS):
        raise ValueError(f"kind_idx outside 0..{N_KINDS - 1}")
    if len(patient_rows) and (patient_rows.min() < 0 or patient_rows.max() >= limits.shape[0]):
        raise ValueError(f"patient_rows outside 0..{limits.shape[0] - 1} (rows of the limit table)")
    flat = np.take(limits.reshape(-1, 4), patient_rows * N_KINDS + kind_idx, axis=0)
    values = round_as_shown(values, kind_idx)
    red_low = values < flat[:, Limit.RED_LOW]
    red_high = values > flat[:, Limit.RED_HIGH]
    yellow_low = values < flat[:, Limit.YELLOW_LOW]
    yellow_high = values > flat[:, Limit.YELLOW_HIGH]
    red = red_low | red_high
    yellow = yellow_low | yellow_high
    severity = np.where(red, np.int8(Severity.RED), np.where(yellow, np.int8(Severity.YELLOW), np.int8(0)))
    # One of the four conditions at most holds per side; the red code wins over the yellow on the same side.
    breached = np.select(
        [red_low, red_high, yellow_low, yellow_high],
        [np.int8(Limit.RED_LOW), np.int8(Limit.RED_HIGH), np.int8(Limit.YELLOW_LOW), np.int8(Limit.YELLOW_HIGH)],
        np.int8(NO_BREACH),
    ).astype(np.int8, copy=False)
    return severity.astype(np.int8, copy=False), breached


@dataclass(frozen=True, slots=True)
class ThresholdBreaches:
    """The worst breaching reading per (patient, kind, side) of a batch: one row per alarm candidate."""

    patient_row: NDArray[np.int64]
    kind_idx: NDArray[np.int64]
    high: NDArray[np.bool_]
    """True for a high-side breach (value above a limit), False for low."""
    severity: NDArray[np.int8]
    breached: NDArray[np.int8]
    value: NDArray[np.float64]
    """The worst reading at its kind's decimals (what was compared, what the text shows)."""
    limit: NDArray[np.float64]
    reading_index: NDArray[np.int64]
    """Batch index of the worst reading."""
    count: NDArray[np.int64]
    """How many readings of the batch breached this side's limits."""
    first_at: NDArray[np.int64]
    last_at: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.patient_row)


def worst_breaches(
    patient_rows: NDArray[np.int64],
    kind_idx: NDArray[np.int64],
    values: NDArray[np.float64],
    measured_at: NDArray[np.int64],
    severity: NDArray[np.int8],
    breached: NDArray[np.int8],
    limits: NDArray[np.float64],
) -> ThresholdBreaches:
    """Reduce per-reading results to the worst reading per (patient, kind, side).

    Worst = highest severity, then furthest beyond the limit (lowest value for low, highest for high), then latest.
    """
    hit = np.flatnonzero(breached != NO_BREACH)
    p, k, t = patient_rows[hit], kind_idx[hit], measured_at[hit]
    v = round_as_shown(values[hit], k)
    sev, code = severity[hit], breached[hit]
    high = (code == Limit.YELLOW_HIGH) | (code == Limit.RED_HIGH)
    group = (p * N_KINDS + k) * 2 + np.where(high, _SIDE_HIGH, _SIDE_LOW)
    badness = np.where(high, v, -v)
    order = np.lexsort((t, badness, sev, group))
    group_sorted = group[order]
    last = np.flatnonzero(np.append(group_sorted[1:] != group_sorted[:-1], len(order) > 0))
    starts = np.concatenate([[0], last[:-1] + 1]).astype(np.int64)[: len(last)]
    count = (last - starts + 1).astype(np.int64)
    t_sorted = t[order]
    first_at = np.minimum.reduceat(t_sorted, starts) if len(last) else starts
    last_at = np.maximum.reduceat(t_sorted, starts) if len(last) else starts
    pick = order[last]
    limit = limits[p[pick], k[pick], code[pick].astype(np.int64)]
    return ThresholdBreaches(
        patient_row=p[pick],
        kind_idx=k[pick],
        high=high[pick],
        severity=sev[pick],
        breached=code[pick],
        value=v[pick],
        limit=limit,
        reading_index=hit[pick].astype(np.int64),
        count=count,
        first_at=first_at.astype(np.int64),
        last_at=last_at.astype(np.int64),
    )
