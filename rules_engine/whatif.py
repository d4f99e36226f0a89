"""What-if for the threshold editor: how many alarms a patient's stored readings of the last 90 days would have
raised with the limits in force, and with the limits a clinician proposes, before they are saved.

Both counts come from the offline replay (`rules_engine.replay.replay`, the pure core ingest calls) over the same
readings; the inputs are ingest's (`rules_engine.runtime.load_rule_inputs`: conditions, plan fields, hand-set
limits and trend settings), the proposal replacing only the hand-set limits and trend settings. Readings from
`WARM_UP_DAYS` before the window are replayed too, so the first days of the window see their history and personal
baselines; alarms are counted when raised inside the window. Reads only; missed measurements and questionnaires
are not counted (limits do not change them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import numpy as np
from psycopg import Connection

from rules_engine.evaluation import HISTORY_DAYS, RuleInputs
from rules_engine.kinds_index import KIND_INDEX
from rules_engine.personal import LAG_DAYS, WINDOW_DAYS
from rules_engine.profiles import LimitOverrides, TrendOverrides
from rules_engine.replay import ReplayReadings, ReplaySettings, replay
from rules_engine.runtime import load_rule_inputs
from store.readings import patient_readings
from vitals import Kind

WHAT_IF_DAYS = 90
"""The window the editor's sentence speaks of."""
WARM_UP_DAYS = max(HISTORY_DAYS, WINDOW_DAYS + LAG_DAYS)
"""Days before the window replayed for history and baselines only: the rules' history and a baseline's window."""
MAX_READINGS = 20_000
"""Readings one what-if replays at most (window and warm-up), to bound the request: a patient measuring eight kinds
three times a day has about 3 000; 20 000 replay twice in 1–2.5 s on this 2-core machine under load (a continuous
glucose monitor's 36 000 readings in 125 days are refused with a problem that says so)."""

_KIND_BY_NAME: dict[str, int] = {kind.value: i for kind, i in KIND_INDEX.items()}

LimitMapping = Mapping[Kind | str, Mapping[str, float | None]]
"""kind → limit name → number (overrides) or None (the limit is off), as `LimitOverrides.from_mapping` reads it."""
TrendMapping = Mapping[str, float | None]
"""trend setting → number, or None (the trend rule is off)."""


class TooManyReadings(ValueError):
    """The patient has more readings in the window than one what-if replays."""


@dataclass(frozen=True, slots=True)
class WhatIf:
    days: int
    readings: int
    """Readings inside the window (the warm-up's are replayed but not counted)."""
    alarms_now: int
    alarms_proposed: int
    by_rule_now: dict[str, int]
    by_rule_proposed: dict[str, int]
    """Per rule, every rule that raised an alarm in either replay (0 where it raised none)."""
    seconds: float
    """Both replays together."""


def proposed_inputs(inputs: RuleInputs, limits: LimitMapping, trends: TrendMapping) -> RuleInputs:
    """One patient's ingest inputs with its hand-set limits and trend settings replaced by `limits` and `trends`
    (the whole set the patient would have after the save, not only the edited kinds)."""
    if len(inputs) != 1:
        raise ValueError("a what-if is for one patient")
    own_limits = LimitOverrides.from_mapping({0: limits}) if any(limits.values()) else None
    own_trends = TrendOverrides.from_mapping({0: trends}) if trends else None
    return replace(inputs, limit_overrides=own_limits, trend_overrides=own_trends)


def compare(
    readings: ReplayReadings,
    now_inputs: RuleInputs,
    proposed: RuleInputs,
    since: int,
    until: int,
    settings: ReplaySettings | None = None,
) -> WhatIf:
    """Replay `readings` once with each set of inputs; count the alarms raised in [since, until] (epoch s)."""
    inside = int(np.count_nonzero((readings.measured_at >= since) & (readings.measured_at <= until)))
    counts: list[Counter[str]] = []
    seconds = 0.0
    for inputs in (now_inputs, proposed):
        result = replay(readings, inputs, settings)
        seconds += result.seconds
        counts.append(Counter(a.rule for a in result.alarms if since <= a.raised_at <= until))
    now, then = counts
    rules = sorted(set(now) | set(then))
    return WhatIf(
        days=round((until - since) / 86_400),
        readings=inside,
        alarms_now=sum(now.values()),
        alarms_proposed=sum(then.values()),
        by_rule_now={r: now[r] for r in rules},
        by_rule_proposed={r: then[r] for r in rules},
        seconds=seconds,
    )


def what_if(
    conn: Connection[Any],
    patient_id: UUID,
    limits: LimitMapping,
    trends: TrendMapping,
    *,
    repeat_timeout_minutes: int,
    at: datetime | None = None,
) -> WhatIf:
    """The patient's last `WHAT_IF_DAYS` replayed with the limits in force and with `limits`/`trends`; raises
    `TooManyReadings` past `MAX_READINGS`."""
    until = at or datetime.now(UTC)
    since = until - timedelta(days=WHAT_IF_DAYS)
    stored = patient_readings(conn, patient_id, since - timedelta(days=WARM_UP_DAYS), until, limit=MAX_READINGS)
    if stored.truncated:
        raise TooManyReadings(
            f"the patient has more than {MAX_READINGS} readings in the last {WHAT_IF_DAYS + WARM_UP_DAYS} days; "
            "a what-if replays at most that many"
        )
    readings = ReplayReadings(
        patient_ids=(str(patient_id),),
        patient_row=np.zeros(len(stored), dtype=np.int64),
        kind_idx=np.array([_KIND_BY_NAME[k] for k in stored.kinds], dtype=np.int64),
        measured_at=np.array(stored.measured_at, dtype=np.int64),
        value=np.array(stored.values, dtype=np.float64),
    )
    inputs = load_rule_inputs(conn, [patient_id])
    settings = ReplaySettings(repeat_timeout_s=repeat_timeout_minutes * 60)
    return compare(
        readings,
        inputs,
        proposed_inputs(inputs, limits, trends),
        int(since.timestamp()),
        int(until.timestamp()),
        settings,
    )


__all__ = [
    "MAX_READINGS",
    "WARM_UP_DAYS",
    "WHAT_IF_DAYS",
    "TooManyReadings",
    "WhatIf",
    "compare",
    "proposed_inputs",
    "what_if",
]
