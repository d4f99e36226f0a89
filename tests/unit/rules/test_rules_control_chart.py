"""The two-zone control chart for single readings: the warning zone needs persistence (2 of the last 3 measurement
days), a reading beyond the action limit asks for a repeat, red hard floors never wait, a hand-set limit is used as
written, and before the run-in trial limits from the readings so far do the same."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rules_builders import at, readings

from rules_engine import LimitOverrides, build_patient_rules, evaluate_batch, kind_index
from rules_engine.control_chart import ACTION_K, PERSIST_DAYS, action_limits
from rules_engine.personal import PersonalBaselines
from rules_engine.repeats import awaits_repeat, settle_repeats
from vitals import Kind

SPO2 = Kind.SPO2
RULE = "threshold.spo2.low"


def _personal(centre: float = 96.0, spread: float = 1.0) -> PersonalBaselines:
    return PersonalBaselines.of([0], [kind_index(SPO2)], [centre], [spread], [28])


def _spo2(history: list[tuple[float, float]], value: float, *, personal: bool = True, overrides=None):
    """A heart-failure patient's SpO2 `value` on day 30 at 07:00 after `history` rows of (day, value); returns
    the SpO2 threshold candidate or None."""
    rules = build_patient_rules(
        ["heart_failure"], overrides, personal=_personal() if personal else PersonalBaselines.empty()
    )
    hist = readings([(0, SPO2, at(30 + day, hours=7), v) for day, v in history])
    result = evaluate_batch(readings([(0, SPO2, at(30, hours=7), value)]), rules, hist)
    found = [c for c in result.candidates if c.rule == RULE]
    return found[0] if found else None


# Centre 96, spread 1.0: warning (yellow) limit 92 (the protocol's; SpO2 bands only relax), action limit
# 96 − max(3.5 × 1.0, 7) = 89, red = the hard floor 85. So 89–91 is the warning zone, 85–88 is far.


@pytest.mark.parametrize(
    ("history", "value", "opens", "days"),
    [
        ([(-2, 91.0), (-1, 96.0)], 90.0, True, 2),  # 2 of the last 3 measurement days beyond 92: opens
        ([(-2, 96.0), (-1, 91.0)], 91.0, True, 2),
        ([(-2, 91.0), (-1, 90.0)], 89.0, True, 3),
        ([(-2, 96.0), (-1, 96.0)], 90.0, False, 1),  # 1 of 3: counted, not alarmed
        ([], 90.0, False, 1),  # no history: one day of one
        ([(-3, 90.0), (-2, 96.0), (-1, 96.0)], 90.0, False, 1),  # the older breach is a fourth measurement day back
        ([(-6, 91.0), (-5, 96.0)], 90.0, True, 2),  # missed days between: measurement days count, within a week
        ([(-9, 91.0), (-8, 96.0)], 90.0, False, 1),  # more than a week back: no persistence
        ([(-2, 96.0), (-1, 96.0), (-0.1, 91.0)], 90.0, False, 1),  # twice on the same day is one day
    ],
)
def test_a_warning_zone_reading_alarms_only_on_two_of_the_last_three_measurement_days(
    history: list[tuple[float, float]], value: float, opens: bool, days: int
) -> None:
    candidate = _spo2(history, value)
    assert (candidate is not None) is opens
    if candidate is not None:
        assert candidate.severity == "yellow"
        assert candidate.details["persistence"] == {"days_beyond": days, "of_days": PERSIST_DAYS, "action_limit": 89.0}
        assert not awaits_repeat(candidate)  # the days before confirmed it
        assert candidate.explanation_nb.endswith(f"Utenfor grensen {days} av de siste 3 måledagene.")
        assert candidate.explanation_en.endswith(f"Beyond the limit on {days} of the last 3 measurement days.")


@pytest.mark.parametrize("value", [88.0, 86.0, 85.0])
def test_a_single_reading_far_from_the_usual_asks_for_a_repeat(value: float) -> None:
    candidate = _spo2([(-2, 96.0), (-1, 96.0)], value)
    assert candidate is not None and candidate.severity == "yellow"
    assert "persistence" not in candidate.details
    assert awaits_repeat(candidate)
    batch = readings([(0, SPO2, at(30, hours=7), value)])
    rules = build_patient_rules(["heart_failure"], personal=_personal())
    evaluation = evaluate_batch(batch, rules)
    settled = settle_repeats(batch, evaluation, [], set(), timeout_minutes=30, now=at(30, hours=7))
    assert [d.outcome for d in settled.decisions] == ["requested"]
    assert settled.alarms == []  # the alarm opens on the confirming repeat or at the timeout


@pytest.mark.parametrize(("personal", "value", "limit"), [(True, 84.0, 85.0), (False, 89.0, 90.0)])
def test_red_never_waits_run_in_or_not(personal: bool, value: float, limit: float) -> None:
    """After the run-in red is the hard floor (< 85 %); before it, the protocol's red (< 90 % in heart failure)."""
    candidate = _spo2([(-2, 96.0)] * 6, value, personal=personal)
    assert candidate is not None
    assert (candidate.severity, candidate.limit) == ("red", limit)
    assert not awaits_repeat(candidate)


def test_a_hand_set_limit_is_used_as_written_every_breach_asks_for_a_repeat() -> None:
    overrides = LimitOverrides.from_mapping({0: {SPO2: {"yellow_low": 94.0}}})
    candidate = _spo2([(-2, 96.0), (-1, 96.0)], 93.0, overrides=overrides)
    assert candidate is not None
    assert (candidate.limit, candidate.details["limit_source"]) == (94.0, "override")
    assert "persistence" not in candidate.details
    assert awaits_repeat(candidate)
    # Without the hand-set limit the same reading is inside the patient's usual range.
    assert _spo2([(-2, 96.0), (-1, 96.0)], 93.0) is None


@pytest.mark.parametrize(
    ("history", "value", "outcome"),
    [
        # Five readings at 94 make trial limits: centre 94, action 94 − 7 = 87; 91 is in the warning zone.
        ([(-d, 94.0) for d in range(5, 0, -1)], 91.0, None),
        ([(-d, 94.0) for d in range(5, 1, -1)] + [(-1, 91.0)], 91.0, "persistent"),
        # A patient at 98: action limit 91, so 90 (above the protocol's red 90) is far from the trial centre.
        ([(-d, 98.0) for d in range(5, 0, -1)], 90.0, "repeat"),
        # Four readings are too few for trial limits: as on the first day, a yellow reading asks for a repeat.
        ([(-d, 94.0) for d in range(4, 0, -1)], 91.0, "repeat"),
    ],
)
def test_before_the_run_in_trial_limits_from_the_readings_so_far_apply_the_same_logic(
    history: list[tuple[float, float]], value: float, outcome: str | None
) -> None:
    candidate = _spo2(history, value, personal=False)
    if outcome is None:
        assert candidate is None
        return
    assert candidate is not None and candidate.limit == 92.0  # the protocol's yellow limit is the warning limit
    assert awaits_repeat(candidate) is (outcome == "repeat")
    assert ("persistence" in candidate.details) is (outcome == "persistent")


@pytest.mark.parametrize(
    ("centre", "spread", "kind", "yellow_low", "yellow_high", "expected"),
    [
        # The minimum distance wins for a stable patient; a wide spread wins over it.
        (96.0, 1.0, Kind.SPO2, 92.0, math.nan, (89.0, math.nan)),
        (96.0, 3.0, Kind.SPO2, 92.0, math.nan, (96.0 - ACTION_K * 3.0, math.nan)),
        # Never inside the warning limit: a patient whose usual is near the limit.
        (92.0, 1.0, Kind.SPO2, 88.0, math.nan, (85.0, math.nan)),
        (70.0, 5.0, Kind.PULSE_RATE, 50.0, 110.0, (30.0, 110.0)),
        (95.0, 5.0, Kind.PULSE_RATE, 50.0, 120.0, (50.0, 135.0)),
        # A kind without an action distance has no action zone.
        (6.0, 0.5, Kind.GLUCOSE, 3.9, math.nan, (math.nan, math.nan)),
    ],
)
def test_action_limits_are_the_centre_plus_the_larger_of_k_spreads_and_the_minimum_distance(
    centre: float, spread: float, kind: Kind, yellow_low: float, yellow_high: float, expected: tuple[float, float]
) -> None:
    low, high = action_limits(
        np.array([centre]),
        np.array([spread]),
        np.array([kind_index(kind)]),
        np.array([yellow_low]),
        np.array([yellow_high]),
    )
    np.testing.assert_array_equal([low[0], high[0]], expected)
