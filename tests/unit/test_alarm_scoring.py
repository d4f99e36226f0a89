"""The alarm-quality scoring on a hand-made cohort with a known answer, the rule of thumb, and targets that fail
on a wrong result."""

from __future__ import annotations

from bench.alarm_scoring import TARGETS, Alarm, Window, compare, rule_of_thumb_candidates, score
from bench.checks import failed_targets

H = 3600
DAY = 24 * H


def _cohort() -> tuple[list[Window], list[Alarm]]:
    episodes = [Window("a", 10 * DAY, 15 * DAY), Window("b", 20 * DAY, 24 * DAY), Window("c", 30 * DAY, 33 * DAY)]
    alarms = [
        Alarm("a", "trend.weight_gain", "yellow", 12 * DAY),  # detects a
        Alarm("a", "news2", "yellow", 14 * DAY),  # inside a as well
        Alarm("a", "threshold.spo2.low", "yellow", 2 * DAY),  # false alarm
        Alarm("b", "trend.pulse_baseline", "needs_review", 21 * DAY),  # inside b, but does not detect it
        Alarm("b", "threshold.spo2.low", "red", 25 * DAY),  # after admission: outside
        Alarm("c", "missed.body_weight", "missed", 31 * DAY),  # counted apart
        Alarm("a", "threshold.pulse_rate.high", "yellow", 21 * DAY),  # b's window, wrong patient
    ]
    return episodes, alarms


def test_scoring_a_hand_made_cohort_gives_the_known_answer() -> None:
    episodes, alarms = _cohort()
    figures = score(alarms, episodes, patient_weeks=3.0)
    assert figures["detected"] == 1 and figures["sensitivity"] == round(1 / 3, 4)
    assert figures["alarms"] == 6 and figures["alarms_in_episodes"] == 3 and figures["ppv"] == 0.5
    assert figures["alarms_per_patient_week"] == 2.0 and figures["separate_alarms"] == 1
    assert figures["by_rule"]["threshold.spo2.low"] == {"alarms": 2, "in_episodes": 0}


def test_the_targets_fail_on_a_result_short_of_them_and_pass_on_one_that_meets_them() -> None:
    episodes, alarms = _cohort()
    engine = score(alarms, episodes, patient_weeks=3.0)
    thumb = score([Alarm("a", "rule_of_thumb", "yellow", 14 * DAY)], episodes, patient_weeks=3.0)
    failed = failed_targets(compare(engine, thumb), TARGETS)
    assert len(failed) == 3  # sensitivity 0.33, PPV 0.5 vs 1.0, rate 2.0 vs 0.33
    good = [Alarm(e.patient_id, "combined.heart_failure", "yellow", e.onset + H) for e in episodes]
    noisy_thumb = score(
        [Alarm("a", "rule_of_thumb", "yellow", d * DAY) for d in range(0, 60, 2)], episodes, patient_weeks=3.0
    )
    assert failed_targets(compare(score(good, episodes, 3.0), noisy_thumb), TARGETS) == []


def test_a_thumb_that_raises_nothing_fails_the_ratios_instead_of_dividing_by_zero() -> None:
    episodes, alarms = _cohort()
    figures = compare(score(alarms, episodes, 3.0), score([], episodes, 3.0))
    assert len(failed_targets(figures, TARGETS)) == 3


def test_rule_of_thumb_is_more_than_2_kg_above_the_lowest_weight_of_the_3_days_before() -> None:
    weights = [
        ("a", 0 * DAY, 80.0),
        ("a", 1 * DAY, 81.0),
        ("a", 2 * DAY, 82.0),  # exactly 2 kg: no
        ("a", 3 * DAY, 82.1),  # 2.1 above day 0 (3 days before): yes
        ("a", 4 * DAY, 83.1),  # 2.1 above day 1: yes
        ("b", 0 * DAY, 70.0),
        ("b", 4 * DAY, 72.5),  # the 70 kg is 4 days old: no
    ]
    assert rule_of_thumb_candidates(weights) == [("a", 3 * DAY), ("a", 4 * DAY)]
