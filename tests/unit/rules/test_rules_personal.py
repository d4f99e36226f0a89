"""Personal limits: run-in, robust baseline, minimum width, hard floors, hand-set precedence, explanation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rules_builders import DAY, at, daily, readings

from rules_engine import LimitOverrides, Severity, build_patient_rules, evaluate_batch, kind_index
from rules_engine.personal import (
    LAG_DAYS,
    MIN_READINGS,
    RUN_IN_DAYS,
    WINDOW_DAYS,
    PersonalBaselines,
    compute_baselines,
)
from rules_engine.profiles import Limit
from vitals import Kind

SPO2 = kind_index(Kind.SPO2)
PULSE = kind_index(Kind.PULSE_RATE)
SYS = kind_index(Kind.BP_SYSTOLIC)


def _baseline(kind: Kind, centre: float, spread: float, n: int = 14, patient: int = 0) -> PersonalBaselines:
    return PersonalBaselines.of([patient], [kind_index(kind)], [centre], [spread], [n], version=[3])


@pytest.mark.parametrize(
    ("days_followed", "readings_taken", "expect_baseline"),
    [
        (RUN_IN_DAYS - 1, RUN_IN_DAYS - 1, False),  # run-in not over: protocol limits
        (RUN_IN_DAYS, MIN_READINGS - 1, False),  # run-in over but too few readings
        (RUN_IN_DAYS, MIN_READINGS, True),
        (RUN_IN_DAYS, RUN_IN_DAYS, True),
    ],
)
def test_baseline_exists_only_after_the_run_in_with_enough_readings(
    days_followed: int, readings_taken: int, expect_baseline: bool
) -> None:
    rows = daily(0, Kind.SPO2, [95, 96, 94, 95] * 4)[:readings_taken]
    found = compute_baselines(readings(rows), at(days_followed), [at(0)])
    assert (len(found) == 1) is expect_baseline


def test_baseline_is_median_and_scaled_mad_and_ignores_one_artefact() -> None:
    values = [70, 72, 68, 71, 69, 70, 73, 67, 70, 71, 69, 70, 72, 140]  # one pulse after the stairs
    found = compute_baselines(readings(daily(0, Kind.PULSE_RATE, values)), at(14), [at(0)])
    assert found.centre[0] == 70.0
    assert found.spread[0] == pytest.approx(1.0 * 1.4826)
    assert found.n[0] == 14


def test_baseline_window_lags_behind_so_a_slow_deterioration_is_not_absorbed() -> None:
    """60 days at 96 %, then the last 6 days falling: the baseline (days 7–35 before) still says 96."""
    values = [96.0] * 60 + [95, 94, 93, 92, 91, 90]
    found = compute_baselines(readings(daily(0, Kind.SPO2, values)), at(66), [at(0)])
    assert found.centre[0] == 96.0
    assert found.window_end[0] == at(66 - LAG_DAYS)
    assert found.window_start[0] == at(66 - LAG_DAYS - WINDOW_DAYS)
    assert found.n[0] == WINDOW_DAYS


def test_right_after_the_run_in_the_baseline_is_the_run_in_itself() -> None:
    found = compute_baselines(readings(daily(0, Kind.SPO2, [95.0] * 18)), at(18), [at(0)])
    assert found.window_end[0] == at(RUN_IN_DAYS)
    assert found.n[0] == RUN_IN_DAYS


@pytest.mark.parametrize(
    ("protocol", "kind", "centre", "spread", "expected", "yellow_source"),
    [
        # (yellow_low, yellow_high, red_low, red_high). After the run-in red is the hard floor wherever the kind
        # has one: the protocol's red between the floor and the personal yellow is the action zone (a far reading
        # asks for a repeat, rules_engine.control_chart).
        # Very stable SpO2 at 98: the band (the minimum 3 points, BTS) would be tighter than the protocol's 92,
        # and SpO2 only relaxes: the protocol's yellow stays.
        ("heart_failure", Kind.SPO2, 98.0, 0.0, (92.0, math.nan, 85.0, math.nan), "protocol"),
        # At 94 the band (91) relaxes the protocol's 92.
        ("heart_failure", Kind.SPO2, 94.0, 0.0, (91.0, math.nan, 85.0, math.nan), "personal"),
        # A patient who lives at 93 %: personal yellow 90.
        ("heart_failure", Kind.SPO2, 93.0, 1.0, (90.0, math.nan, 85.0, math.nan), "personal"),
        ("general", Kind.SPO2, 93.0, 1.0, (90.0, math.nan, 85.0, math.nan), "personal"),
        # A wide spread: 3σ wins over the minimum width; systolic only relaxes the protocol's 90.
        ("heart_failure", Kind.BP_SYSTOLIC, 105.0, 9.0, (80.0, 179.0, 80.0, 219.0), "personal"),
        ("general", Kind.BP_SYSTOLIC, 115.0, 4.0, (95.0, 179.0, 80.0, 219.0), "personal"),
        # A patient at 140: the band (120) would be tighter than the protocol's 90, which stays.
        ("heart_failure", Kind.BP_SYSTOLIC, 140.0, 5.0, (90.0, 179.0, 80.0, 219.0), "protocol"),
        # Pulse only relaxes: the protocol's 50/110 stay for a patient at 72; at 95 the high side moves to 120.
        ("heart_failure", Kind.PULSE_RATE, 72.0, 3.0, (47.0, 110.0, 40.0, 140.0), "personal"),
        ("heart_failure", Kind.PULSE_RATE, 95.0, 4.0, (50.0, 120.0, 40.0, 140.0), "protocol"),
    ],
)
def test_personal_band_min_width_hard_floors_and_red_layering(
    protocol: str,
    kind: Kind,
    centre: float,
    spread: float,
    expected: tuple[float, float, float, float],
    yellow_source: str,
) -> None:
    rules = build_patient_rules([protocol], personal=_baseline(kind, centre, spread))
    row = rules.limits[0, kind_index(kind)]
    got = (row[Limit.YELLOW_LOW], row[Limit.YELLOW_HIGH], row[Limit.RED_LOW], row[Limit.RED_HIGH])
    np.testing.assert_array_equal(got, expected)
    assert rules.limit_origin(0, kind_index(kind), Limit.YELLOW_LOW) == yellow_source


def test_before_the_run_in_the_protocol_limits_apply() -> None:
    plain = build_patient_rules(["heart_failure"])
    with_none = build_patient_rules(["heart_failure"], personal=PersonalBaselines.empty())
    np.testing.assert_array_equal(plain.limits, with_none.limits)
    assert plain.limit_origin(0, SPO2, Limit.YELLOW_LOW) == "protocol"


def test_a_hand_set_limit_wins_over_the_personal_one() -> None:
    overrides = LimitOverrides.from_mapping({0: {Kind.SPO2: {"yellow_low": 92.0}}})
    rules = build_patient_rules(["heart_failure"], overrides, personal=_baseline(Kind.SPO2, 97.0, 0.5))
    assert rules.limits[0, SPO2, Limit.YELLOW_LOW] == 92.0
    assert rules.limit_origin(0, SPO2, Limit.YELLOW_LOW) == "override"
    assert rules.limits[0, SPO2, Limit.RED_LOW] == 85.0  # after the run-in red is the hard floor
    assert rules.limit_origin(0, SPO2, Limit.RED_LOW) == "hard_floor"


def test_hard_floor_alarms_red_at_once_even_with_a_low_personal_band() -> None:
    rules = build_patient_rules(["heart_failure"], personal=_baseline(Kind.SPO2, 88.0, 2.0))
    batch = readings([(0, Kind.SPO2, at(30), 84.0)])
    result = evaluate_batch(batch, rules)
    (candidate,) = [c for c in result.candidates if c.rule == "threshold.spo2.low"]
    assert candidate.severity == Severity.RED.label
    assert candidate.limit == 85.0
    assert candidate.details["limit_source"] == "hard_floor"


def test_hard_floor_on_spo2_scale_2_is_84() -> None:
    rules = build_patient_rules(["copd"], spo2_scale2=[True], personal=_baseline(Kind.SPO2, 88.0, 2.0))
    assert rules.limits[0, SPO2, Limit.RED_LOW] == 84.0
    assert rules.limits[0, SPO2, Limit.YELLOW_LOW] == 84.0


def test_personal_breach_is_explained_against_the_patients_usual_value() -> None:
    rules = build_patient_rules(["heart_failure"], personal=_baseline(Kind.SPO2, 95.0, 1.2))
    # 87 is beyond the action limit (95 − 7 = 88): far from the usual, a candidate on its own.
    result = evaluate_batch(readings([(0, Kind.SPO2, at(30), 87.0)]), rules)
    (candidate,) = result.candidates
    assert candidate.severity == Severity.YELLOW.label
    assert candidate.limit == 91.0  # 95 − 3 × 1.2 = 91.4, rounded outwards to whole percent
    assert candidate.explanation_nb == (
        "Oksygenmetning 87 %, under pasientens vanlige 95 % ± 1,2 (personlig gul grense 91 %)"
    )
    assert (
        candidate.explanation_en
        == "Oxygen saturation 87%, below the patient's usual 95% ± 1.2 (personal yellow limit 91%)"
    )
    assert candidate.details["personal"] == {"centre": 95.0, "spread": 1.2, "version": 3}
    assert candidate.details["limit_source"] == "personal"


def test_a_reading_inside_the_personal_band_does_not_alarm_where_the_protocol_would() -> None:
    batch = readings([(0, Kind.SPO2, at(30), 91.0)])
    assert evaluate_batch(batch, build_patient_rules(["heart_failure"])).candidates
    personal = build_patient_rules(["heart_failure"], personal=_baseline(Kind.SPO2, 94.0, 0.8))
    assert not evaluate_batch(batch, personal).candidates


def test_baselines_are_computed_per_patient_and_kind_in_one_pass() -> None:
    rows = (
        daily(0, Kind.SPO2, [96.0] * 20)
        + daily(0, Kind.PULSE_RATE, [64.0] * 20)
        + daily(1, Kind.SPO2, [92.0] * 20)
        + daily(1, Kind.GLUCOSE, [6.0] * 20)  # glucose is not personalised
    )
    found = compute_baselines(readings(rows), at(20), [at(0), at(0)])
    got = {(int(p), int(k)): float(c) for p, k, c in zip(found.patient_row, found.kind_idx, found.centre, strict=True)}
    assert got == {(0, SPO2): 96.0, (0, PULSE): 64.0, (1, SPO2): 92.0}
    assert all(found.window_end - found.window_start == WINDOW_DAYS * DAY)


def test_news2_single_parameter_three_is_not_raised_twice() -> None:
    """SpO2 90 scores 3 with a normal pulse beside it: the threshold rule speaks, NEWS2 (aggregate 3) does not."""
    batch = readings([(0, Kind.SPO2, at(30), 90.0), (0, Kind.PULSE_RATE, at(30), 70.0)])
    rules = {c.rule for c in evaluate_batch(batch, build_patient_rules(["general"])).candidates}
    assert rules == {"threshold.spo2.low"}


@pytest.mark.parametrize(
    ("values", "personalised", "expected"),
    [
        # aggregate 5 (SpO2 93: 2, systolic 98: 2, pulse 95: 1) → yellow before the run-in only
        ((93.0, 98.0, 95.0), False, Severity.YELLOW.label),
        ((93.0, 98.0, 95.0), True, None),
        # aggregate 7 (SpO2 91: 3, systolic 95: 2, pulse 112: 2) → red, also after the run-in
        ((91.0, 95.0, 112.0), True, Severity.RED.label),
    ],
)
def test_news2_after_the_run_in_alarms_only_red(
    values: tuple[float, float, float], personalised: bool, expected: str | None
) -> None:
    spo2, systolic, pulse = values
    batch = readings(
        [(0, Kind.SPO2, at(30), spo2), (0, Kind.BP_SYSTOLIC, at(30), systolic), (0, Kind.PULSE_RATE, at(30), pulse)]
    )
    personal = _baseline(Kind.SPO2, 94.0, 1.0) if personalised else None
    found = {c.rule: c for c in evaluate_batch(batch, build_patient_rules(["general"], personal=personal)).candidates}
    assert (found["news2"].severity if "news2" in found else None) == expected


def test_take_renumbers_baselines_for_repeated_patient_rows() -> None:
    found = PersonalBaselines.of([0, 1, 1], [SPO2, SPO2, PULSE], [96.0, 92.0, 70.0], [1.0, 1.0, 3.0], [14, 14, 14])
    taken = found.take([1, 0, 1])
    got = sorted(zip(taken.patient_row.tolist(), taken.kind_idx.tolist(), taken.centre.tolist(), strict=True))
    assert got == sorted([(0, SPO2, 92.0), (0, PULSE, 70.0), (1, SPO2, 96.0), (2, SPO2, 92.0), (2, PULSE, 70.0)])
