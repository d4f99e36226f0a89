"""Alarm severities as ordered integer codes, so "worst" is a numpy maximum.

`NEEDS_REVIEW` is a signal relative to the patient's own history (drift from a personal baseline), not a breach of
a limit in the plan: the nurse looks at it when the queue allows. Thresholds only produce NONE, YELLOW and RED.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

SeverityLabel = Literal["needs_review", "yellow", "red"]


class Severity(IntEnum):
    NONE = 0
    NEEDS_REVIEW = 1
    YELLOW = 2
    RED = 3

    @property
    def label(self) -> SeverityLabel:
        if self is Severity.NONE:
            raise ValueError("severity NONE is not an alarm and has no label")
        labels: dict[Severity, SeverityLabel] = {
            Severity.NEEDS_REVIEW: "needs_review",
            Severity.YELLOW: "yellow",
            Severity.RED: "red",
        }
        return labels[self]
