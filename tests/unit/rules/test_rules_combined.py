"""Combined deterioration rules (heart failure, COPD), weight above the personal baseline, and the alarm burden
of the whole rule set on a noisy home cohort."""

from __future__ import annotations

import home_cohort
import pytest
from rules_builders import at, readings

from rules_engine import Severity, build_patient_rules, evaluate_batch, kind_index
from rules_engine.combined import SCORE_LIMIT
from rules_engine.personal import PersonalBaselines
from vitals import Kind

HF_BASELINE = {Kind.BODY_WEIGHT: (82.0, 0.3), Kind.PULSE_RATE: (68.0, 4.0), Kind.SPO2: (96.0, 0.7)}
COPD_BASELINE = {Kind.SPO2: (92.0, 1.0), Kind.PULSE_RATE: (80.0, 4.0), Kind.BODY_TEMPERATURE: (36.6, 0.15)}


def _rules(protocol: str, baseline: dict[Kind, tuple[float, float]]):
    kinds = list(baseline)
    personal = PersonalBaselines.of(
        [0] * len(kinds),
        [kind_index(k) for k in kinds],
        [baseline[k][0] for k in kinds],
        [baseline[k][1] for k in kinds],
        [20] * len(kinds),
    )
    return build_patient_rules([protocol], personal=personal)


def _three_days(values: dict[Kind, tuple[float, float, float]]) -> tuple[list, list]:
    """Days 28 and 29 as history, day 30 as the batch."""
    history, batch = [], []
    for kind, per_day in values.items():
        for day, value in zip((28, 29, 30), per_day, strict=True):
            (batch if day == 30 else history).append((0, kind, at(day, hours=7), value))
    return history, batch


def _combined(protocol: str, baseline, values):
    history, batch = _three_days(values)
    result = evaluate_batch(readings(batch), _rules(protocol, baseline), readings(history))
    return {c.rule: c for c in result.candidates}


@pytest.mark.parametrize(
    ("values", "alarms"),
    [
        # Classic decompensation: weight +1.5 kg, pulse +8, SpO2 −2 over three days.
        ({Kind.BODY_WEIGHT: (82.8, 83.5, 84.2), Kind.PULSE_RATE: (74, 76, 80), Kind.SPO2: (95, 94, 93)}, True),
        # Stable: nothing.
        ({Kind.BODY_WEIGHT: (82.1, 81.9, 82.2), Kind.PULSE_RATE: (70, 66, 69), Kind.SPO2: (96, 97, 96)}, False),
        # One parameter alone, however far (weight +3 kg): the weight rule's job, not the combined rule's.
        ({Kind.BODY_WEIGHT: (84.5, 85.0, 85.2), Kind.PULSE_RATE: (68, 69, 67), Kind.SPO2: (96, 96, 96)}, False),
        # One scale read in clothes and one pulse after the stairs: the 3-day medians do not move.
        ({Kind.BODY_WEIGHT: (82.0, 83.6, 82.1), Kind.PULSE_RATE: (68, 98, 69), Kind.SPO2: (96, 95, 96)}, False),
        # Improvement never scores: weight down, pulse down, SpO2 up.
        ({Kind.BODY_WEIGHT: (80.0, 79.5, 79.0), Kind.PULSE_RATE: (58, 56, 55), Kind.SPO2: (99, 99, 99)}, False),
    ],
)
def test_heart_failure_combined_rule(values, alarms: bool) -> None:
    found = _combined("heart_failure", HF_BASELINE, values)
    assert ("combined.heart_failure" in found) is alarms


def test_combined_alarm_explains_each_parameters_contribution() -> None:
    values = {Kind.BODY_WEIGHT: (82.8, 83.5, 84.2), Kind.PULSE_RATE: (74, 76, 80), Kind.SPO2: (95, 94, 93)}
    candidate = _combined("heart_failure", HF_BASELINE, values)["combined.heart_failure"]
    assert candidate.severity == Severity.YELLOW.label
    contributions = candidate.details["contributions"]
    # Weight: median 83.5 − 82.0 = 1.5 kg over a spread floored at 0.5 kg → 3 (capped); pulse (76 − 68) / 4 = 2;
    # SpO2 (96 − 94) / 1 (floored) = 2.
    assert {k: v["contribution"] for k, v in contributions.items()} == {
        "body_weight": 3.0,
        "pulse_rate": 2.0,
        "spo2": 2.0,
    }
    assert candidate.value == 7.0
    assert candidate.limit == SCORE_LIMIT
    assert candidate.explanation_nb == (
        "Samlet forverring ved hjertesvikt: poengsum 7,0, grense 4,0 – vekt +1,5 kg fra vanlig 82,0 kg (3,0), "
        "puls +8/min fra vanlig 68/min (2,0), oksygenmetning −2 prosentpoeng fra vanlig 96 % (2,0); median siste "
        "3 dager mot pasientens vanlige verdier"
    )
    assert candidate.explanation_en.startswith(
        "Combined deterioration in heart failure: score 7.0, limit 4.0 – body weight +1.5 kg from usual 82.0 kg (3.0)"
    )


def test_copd_combined_rule_weighs_spo2_pulse_and_temperature() -> None:
    values = {Kind.SPO2: (90, 89, 89), Kind.PULSE_RATE: (86, 90, 92), Kind.BODY_TEMPERATURE: (37.2, 37.5, 37.8)}
    found = _combined("copd", COPD_BASELINE, values)
    assert "combined.copd" in found
    assert "combined.heart_failure" not in found
    assert set(found["combined.copd"].details["contributions"]) == {"spo2", "pulse_rate", "body_temperature"}


def test_combined_rule_waits_for_the_personal_baseline() -> None:
    history, batch = _three_days(
        {Kind.BODY_WEIGHT: (82.8, 83.5, 84.2), Kind.PULSE_RATE: (74, 76, 80), Kind.SPO2: (95, 94, 93)}
    )
    result = evaluate_batch(readings(batch), build_patient_rules(["heart_failure"]), readings(history))
    assert not [c for c in result.candidates if c.rule.startswith("combined.")]


@pytest.mark.parametrize(
    ("weights", "alarms"),
    [
        ((84.2, 84.4, 84.3), True),  # 2.3 kg above the usual 82.0 on the 3-day median
        ((82.1, 84.6, 82.3), False),  # one heavy reading (clothes)
        ((83.5, 83.8, 84.0), False),  # 1.8 kg: within the 2 kg
    ],
)
def test_weight_above_the_personal_baseline(weights: tuple[float, float, float], alarms: bool) -> None:
    found = _combined("heart_failure", HF_BASELINE, {Kind.BODY_WEIGHT: weights})
    assert ("trend.weight_baseline" in found) is alarms
    assert "trend.weight_gain" not in found  # the 3-day window rule is replaced after the run-in
    if alarms:
        assert found["trend.weight_baseline"].explanation_en == (
            "Body weight 84.3 kg (median of the last 3 days), +2.3 kg above the patient's usual 82.0 kg, limit 2.0 kg"
        )


def test_stable_noisy_home_patients_raise_almost_no_alarms_and_decompensations_are_caught() -> None:
    """20 weeks of ordinary home noise (clothes, stairs, missed days, drift): after the run-in a stable patient
    raises well under one alarm a month, and the personal and combined rules catch the decompensations."""
    cohort = home_cohort.heart_failure_cohort(40, 140, seed=11)
    alarms = home_cohort.replay(cohort)
    after_run_in = [a for a in alarms if a[2] >= home_cohort.T0 + 14 * home_cohort.DAY]
    in_episode = {e.patient for e in cohort.episodes}
    stable_weeks = (40 - len(in_episode)) * (140 - 14) / 7
    stable_alarms = [a for a in after_run_in if a[0] not in in_episode]
    scored = home_cohort.score(cohort, alarms)
    print({"stable_after_run_in_per_patient_week": round(len(stable_alarms) / stable_weeks, 3), **scored})
    assert len(stable_alarms) / stable_weeks < 0.1
    assert scored["sensitivity"] >= 0.8
    thumb = home_cohort.score(cohort, home_cohort.rule_of_thumb(cohort))
    assert scored["ppv"] >= 3 * thumb["ppv"]
