"""Repeat measurements for artefacts: a single yellow reading asks for a repeat before it becomes an alarm.

A pulse taken after the stairs or a scale read in clothes is one reading out of line; a real change shows again when
the patient measures once more. `awaits_repeat` says which candidates wait (a single yellow reading of a threshold
rule; red hard floors never wait), `settle_repeats` decides, for one batch, which candidates open alarms now, which
become repeat requests, and what the batch's readings do to the requests already waiting (confirm: the alarm opens;
back in range: cleared, no alarm; too late: expired, the alarm opens). Pure: arrays and candidates in, decisions
out; the requests' rows are `rules_engine.repeat_store`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from rules_engine.candidates import AlarmCandidate, BatchEvaluation
from rules_engine.explain import format_value
from rules_engine.kinds_index import KIND_INDEX, KIND_ORDER
from rules_engine.profiles import Limit
from rules_engine.readings import ReadingArrays

DEFAULT_TIMEOUT_MINUTES = 30
"""`Settings.repeat_timeout_minutes`: how long an alarm waits for the repeat before it opens anyway."""

Outcome = Literal["requested", "confirmed", "cleared", "expired"]


def awaits_repeat(candidate: AlarmCandidate) -> bool:
    """A single yellow reading of a threshold rule waits for a repeat measurement.

    Red (the hard floors) never waits; neither do trends, scores or missed measurements, which are made of several
    readings already, nor a threshold candidate that counts two readings of the batch (the batch repeated it), nor
    a persistent warning-zone candidate (`rules_engine.control_chart`: the days before confirmed it).
    """
    return (
        candidate.severity == "yellow"
        and candidate.rule.startswith("threshold.")
        and "persistence" not in candidate.details
        and candidate.count == 1
        and candidate.reading_index is not None
    )


@dataclass(frozen=True, slots=True)
class WaitingRepeat:
    """A repeat request stored earlier and still waiting; `patient_row` is the patient's row in this batch."""

    request_id: Any
    patient_row: int
    rule: str
    kind: str
    value: float
    measured_at: int
    """Epoch seconds of the reading that asked for the repeat."""
    due_at: int


@dataclass(frozen=True, slots=True)
class RepeatDecision:
    """What happened to one request: a new one (`candidate` set, `waiting` None) or a waiting one."""

    outcome: Outcome
    candidate: AlarmCandidate | None
    waiting: WaitingRepeat | None
    repeat_index: int | None = None
    """Batch index of the reading that confirmed or cleared the request."""


@dataclass(frozen=True, slots=True)
class RepeatDecisions:
    alarms: list[AlarmCandidate]
    """Candidates to upsert now: those that never wait, confirmed ones (annotated), new ones already expired."""
    decisions: list[RepeatDecision]


def repeat_note(outcome: Outcome, kind: str, first_value: float, timeout_minutes: int) -> tuple[str, str]:
    """The sentence an alarm opened from a repeat request ends with (bokmål, English)."""
    k = KIND_ORDER[KIND_INDEX_BY_NAME[kind]]
    if outcome == "confirmed":
        return (
            f"Bekreftet ved ny måling (første måling {format_value(first_value, k, 'nb')}).",
            f"Confirmed by a repeat measurement (first reading {format_value(first_value, k, 'en')}).",
        )
    return (f"Ingen ny måling innen {timeout_minutes} min.", f"No repeat within {timeout_minutes} min.")


def _joined(text: str, note: str) -> str:
    return f"{text} {note}" if text.endswith(".") else f"{text}. {note}"


def annotated_texts(
    texts: tuple[str, str],
    details: dict[str, Any],
    kind: str,
    outcome: Outcome,
    first_value: float,
    timeout_minutes: int,
    request_id: Any = None,
) -> tuple[str, str, dict[str, Any]]:
    """An alarm's explanations and details with the repeat's outcome added (one wording for ingest and timeout)."""
    nb, en = repeat_note(outcome, kind, first_value, timeout_minutes)
    repeat: dict[str, Any] = {"outcome": outcome, "first_value": first_value, "timeout_minutes": timeout_minutes}
    if request_id is not None:
        repeat["request_id"] = str(request_id)
    return _joined(texts[0], nb), _joined(texts[1], en), {**details, "repeat": repeat}


def annotate(
    candidate: AlarmCandidate, outcome: Outcome, first_value: float, timeout_minutes: int, request_id: Any = None
) -> AlarmCandidate:
    """The candidate with the repeat's outcome in its explanation and details."""
    assert candidate.kind is not None
    nb, en, details = annotated_texts(
        (candidate.explanation_nb, candidate.explanation_en),
        candidate.details,
        candidate.kind.value,
        outcome,
        first_value,
        timeout_minutes,
        request_id,
    )
    return dataclasses.replace(candidate, explanation_nb=nb, explanation_en=en, details=details)


KIND_INDEX_BY_NAME: dict[str, int] = {kind.value: i for kind, i in KIND_INDEX.items()}
_LOW = (Limit.RED_LOW, Limit.YELLOW_LOW)
_HIGH = (Limit.YELLOW_HIGH, Limit.RED_HIGH)


def _side(breached: int) -> str | None:
    return "low" if breached in _LOW else "high" if breached in _HIGH else None


def settle_repeats(
    batch: ReadingArrays,
    evaluation: BatchEvaluation,
    waiting: Sequence[WaitingRepeat],
    open_alarms: Collection[tuple[int, str]],
    *,
    timeout_minutes: int,
    now: int,
) -> RepeatDecisions:
    """Decide the batch's repeats. `open_alarms` holds (patient row, rule) of unresolved alarms (a candidate that
    updates an open alarm never waits); `now` is epoch seconds. The repeat of a request is the first later reading
    of its kind in the batch: it confirms when it breaches the same side, clears when it does not, and comes too
    late (expired) when it was measured after `due_at`. A patient with a red candidate in the batch has none of
    its yellow candidates wait (the nurse comes for the red one anyway). With `timeout_minutes` 0 nothing waits."""
    timeout_s = timeout_minutes * 60

    def first_after(row: int, kind_idx: int, after: int) -> int | None:
        """Batch index of the earliest reading of (row, kind) measured after `after`."""
        later = np.flatnonzero((batch.patient_row == row) & (batch.kind_idx == kind_idx) & (batch.measured_at > after))
        return int(later[np.argmin(batch.measured_at[later])]) if len(later) else None

    by_key = {(c.patient_row, c.rule): c for c in evaluation.candidates}
    # A red reading brings the nurse at once: that patient's yellow readings of the batch go with it.
    red_rows = {c.patient_row for c in evaluation.candidates if c.severity == "red"}
    handled: set[tuple[int, str]] = set()
    alarms: list[AlarmCandidate] = []
    decisions: list[RepeatDecision] = []
    for w in waiting:
        key = (w.patient_row, w.rule)
        candidate = by_key.get(key)
        repeat = first_after(w.patient_row, KIND_INDEX_BY_NAME[w.kind], w.measured_at)
        if repeat is None and candidate is not None:
            repeat = candidate.reading_index  # an older reading of the same rule, arrived late: a second breach
        if repeat is None:
            continue
        handled.add(key)
        if int(batch.measured_at[repeat]) > w.due_at:
            decisions.append(RepeatDecision("expired", None, w, repeat))
            if candidate is not None:
                alarms.append(candidate)  # updates the alarm the expiry opens
        elif candidate is not None and _side(int(evaluation.breached_limit[repeat])) == w.rule.rsplit(".", 1)[-1]:
            decisions.append(RepeatDecision("confirmed", candidate, w, repeat))
            confirmed = annotate(candidate, "confirmed", w.value, timeout_minutes, w.request_id)
            # The alarm counts the reading that asked, and its window starts there.
            first = datetime.fromtimestamp(w.measured_at, tz=UTC)
            alarms.append(
                dataclasses.replace(
                    confirmed, count=confirmed.count + 1, window_start=min(first, confirmed.window_start)
                )
            )
        else:
            decisions.append(RepeatDecision("cleared", None, w, repeat))
            handled.discard(key)  # a later breach in the same batch starts again
    for c in evaluation.candidates:
        key = (c.patient_row, c.rule)
        if key in handled:
            continue
        if timeout_s <= 0 or key in open_alarms or c.patient_row in red_rows or not awaits_repeat(c):
            alarms.append(c)
            continue
        assert c.reading_index is not None
        measured = int(batch.measured_at[c.reading_index])
        due = measured + timeout_s
        later = first_after(c.patient_row, int(batch.kind_idx[c.reading_index]), measured)
        if later is not None and int(batch.measured_at[later]) <= due:
            decisions.append(RepeatDecision("cleared", c, None, later))
        elif later is not None or due <= now:
            decisions.append(RepeatDecision("expired", c, None, later))
            alarms.append(annotate(c, "expired", c.value, timeout_minutes))
        else:
            decisions.append(RepeatDecision("requested", c, None))
    return RepeatDecisions(alarms, decisions)


__all__ = [
    "DEFAULT_TIMEOUT_MINUTES",
    "RepeatDecision",
    "RepeatDecisions",
    "WaitingRepeat",
    "annotate",
    "annotated_texts",
    "awaits_repeat",
    "repeat_note",
    "settle_repeats",
]
