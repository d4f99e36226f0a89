"""Small builders for rule tests: readings from literal rows, times in days from a fixed origin."""

from __future__ import annotations

from collections.abc import Sequence

from rules_engine import ReadingArrays, kind_index
from vitals import Kind

T0 = 1_790_000_000
DAY = 86_400
HOUR = 3_600


def at(days: float = 0.0, hours: float = 0.0) -> int:
    return T0 + round(days * DAY + hours * HOUR)


def readings(rows: Sequence[tuple[int, Kind, int, float]]) -> ReadingArrays:
    """Rows of (patient_row, kind, measured_at, value)."""
    if not rows:
        return ReadingArrays.empty()
    patients, kinds, times, values = zip(*rows, strict=True)
    return ReadingArrays.of(patients, [kind_index(k) for k in kinds], times, values)


def daily(patient: int, kind: Kind, values: Sequence[float], *, first_day: float = 0.0) -> list[tuple]:
    """One reading a day from `first_day`."""
    return [(patient, kind, at(first_day + i), v) for i, v in enumerate(values)]
