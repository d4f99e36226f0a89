"""Table tests for the clinical defects an outside review found: oxygen and SpO2 scale from the plan,
one rounding per kind, the weekly weight-gain and home blood-pressure rules, and honest wording."""

from __future__ import annotations

import numpy as np
import pytest
from rules_builders import HOUR, at, daily, readings

from rules_engine import AlarmCandidate, Severity, build_patient_rules, evaluate_batch, kind_index
from rules_engine.explain import format_value
from rules_engine.profiles import Limit
from vitals import KINDS, Kind


def _candidates(protocol: str, history: list[tuple], batch: list[tuple], **rules: object) -> dict[str, AlarmCandidate]:
    built = build_patient_rules([protocol], **rules)  # type: ignore[arg-type]
    result = evaluate_batch(readings(batch), built, readings(history))
    return {c.rule: c for c in result.candidates}


# --- NEWS2: home oxygen and the SpO2 scale are the clinician's, from the plan -----------------------------------


@pytest.mark.parametrize(
    ("scale2", "on_oxygen", "score", "severity"),
    [
        # RCP 2017 chart: oxygen scores 2; scale 2 on oxygen SpO2 ≥ 97 scores 3; scale 1 SpO2 ≥ 96 scores 0.
        (True, True, 5, "yellow"),
        (False, True, 2, None),
        (True, False, 0, None),
        (False, False, 0, None),
    ],
)
def test_copd_patient_on_home_oxygen_news2(scale2: bool, on_oxygen: bool, score: int, severity: str | None) -> None:
    batch = [(0, Kind.SPO2, at(0), 97), (0, Kind.PULSE_RATE, at(0), 72), (0, Kind.RESP_RATE, at(0), 18)]
    built = build_patient_rules(["copd"], spo2_scale2=[scale2], on_oxygen=[on_oxygen])
    result = evaluate_batch(readings(batch), built)
    assert result.news2 is not None and result.news2.score.tolist() == [score]
    found = {c.rule: c for c in result.candidates}
    assert (found["news2"].severity if "news2" in found else None) == severity


def test_copd_no_longer_implies_scale_2_and_a_clinician_set_scale_2_target_wins() -> None:
    """RCP 2017 (NEWS2, chapter 'SpO2 scale 2'): scale 2 only for confirmed hypercapnic respiratory failure with a
    prescribed 88–92 % target, decided and recorded by a clinician; in all other cases scale 1. The COPD alarm
    limits (BTS 2017 target 88–92 %) stay the condition's own."""
    spo2 = kind_index(Kind.SPO2)
    default = build_patient_rules(["copd", "general"])
    assert default.spo2_scale2.tolist() == [False, False]
    assert default.limits[:, spo2, : Limit.YELLOW_LOW + 1].tolist() == [[84.0, 88.0], [92.0, 94.0]]
    scale2 = build_patient_rules(["general", "heart_failure"], spo2_scale2=[True, True])
    assert scale2.limits[:, spo2, : Limit.YELLOW_LOW + 1].tolist() == [[84.0, 88.0], [84.0, 88.0]]
    assert scale2.limit_source_name(1, spo2, Limit.RED_LOW) == "spo2_scale2"
    # NEWS2 on scale 1 for a COPD patient at 90 %: the chart's 3, not scale 2's 0.
    result = evaluate_batch(
        readings([(0, Kind.SPO2, at(0), 90), (0, Kind.PULSE_RATE, at(0), 80)]), build_patient_rules(["copd"])
    )
    assert result.news2 is not None and result.news2.score.tolist() == [3]


# --- one rounding per kind: compare and explain the same number ---------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "rule", "severity"),
    [
        (Kind.BODY_TEMPERATURE, 35.06, None, 0),  # shown 35.1 °C: at the red limit 35.1 is within the plan
        (Kind.BODY_TEMPERATURE, 35.04, "threshold.body_temperature.low", Severity.RED),  # 35.0
        (Kind.SPO2, 91.6, "threshold.spo2.low", Severity.YELLOW),  # 92 %: not under red 92, under yellow 94
        (Kind.SPO2, 93.5, None, 0),  # 94 % (half to even): at the yellow limit
        (Kind.GLUCOSE, 3.94, None, 0),  # 3.9 mmol/L: at the yellow limit
        (Kind.BP_SYSTOLIC, 100.6, None, 0),  # 101: at the yellow limit of the general protocol
        (Kind.RESP_RATE, 20.4, None, 0),  # 20/min
    ],
)
def test_limits_compare_the_value_rounded_as_it_is_shown(
    kind: Kind, value: float, rule: str | None, severity: int
) -> None:
    result = evaluate_batch(readings([(0, kind, at(0), value)]), build_patient_rules(["general"]))
    assert result.severity.tolist() == [severity]
    rules = {c.rule: c for c in result.candidates}
    if rule is None:
        assert not rules
        return
    candidate = rules[rule]
    shown = f"{value:.{KINDS[kind].decimals}f}"
    assert candidate.value == float(shown)
    assert candidate.explanation_en.split(",")[0].endswith(format_value(float(shown), kind, "en"))


def test_a_reading_shown_equal_to_its_limit_never_reads_under_that_limit() -> None:
    temps = np.round(np.arange(34.90, 35.30, 0.01), 2)
    batch = [(i, Kind.BODY_TEMPERATURE, at(0), float(v)) for i, v in enumerate(temps)]
    result = evaluate_batch(readings(batch), build_patient_rules(["general"] * len(temps)))
    for c in result.candidates:
        value_text, limit_text = c.explanation_nb.split(", ")
        assert value_text.split()[-2] != limit_text.split()[-2], c.explanation_nb


# --- weight: the real span of a gain, and a weekly rule beside the 3-day rule --------------------------------------


@pytest.mark.parametrize(
    ("hours", "nb", "en"),
    [(10, "på 10 timer", "in 10 hours"), (1, "på 1 time", "in 1 hour"), (48, "på 2 dager", "in 2 days")],
)
def test_weight_gain_is_described_over_its_real_span(hours: int, nb: str, en: str) -> None:
    # A second weighing half an hour before confirms the gain (one heavy reading alone is no trend).
    history = [(0, Kind.BODY_WEIGHT, at(0), 80.0), (0, Kind.BODY_WEIGHT, at(0, hours=hours - 0.5), 82.4)]
    found = _candidates("heart_failure", history, [(0, Kind.BODY_WEIGHT, at(0, hours=hours), 82.5)])
    gain = found["trend.weight_gain"]
    assert nb in gain.explanation_nb and en in gain.explanation_en
    assert "+2,5 kg på 3 dager" not in gain.explanation_nb


@pytest.mark.parametrize(
    ("per_day", "rules"),
    [
        (0.45, {"trend.weight_gain_7d"}),  # +3.15 kg in 7 days, +1.35 in 3: only the weekly rule
        (0.9, {"trend.weight_gain"}),  # +2.7 kg in 3 days: the 3-day rule speaks, the weekly one keeps quiet
        (0.25, set()),  # +1.75 kg in 7 days
    ],
)
def test_weekly_weight_gain_beside_the_three_day_rule(per_day: float, rules: set[str]) -> None:
    history = daily(0, Kind.BODY_WEIGHT, [80.0 + per_day * d for d in range(7)])
    found = _candidates("heart_failure", history, [(0, Kind.BODY_WEIGHT, at(7), 80.0 + per_day * 7)])
    assert set(found) == rules
    if "trend.weight_gain_7d" in found:
        week = found["trend.weight_gain_7d"]
        assert (week.severity, week.limit) == ("yellow", 2.3)
        assert "+3,2 kg på 7 dager" in week.explanation_nb and "+3.2 kg in 7 days" in week.explanation_en


@pytest.mark.parametrize(
    ("weights", "today", "raised"),
    [
        ([80.0, 80.1, 79.9, 80.0], 82.6, False),  # one scale read in clothes: the weighing before is the normal one
        ([80.0, 80.8, 81.7, 82.5], 82.5, True),  # +2.5 kg in 3 days, then steady: the next weighing confirms it
        ([80.0, 80.0, 80.1, 82.4], 82.5, True),  # two heavy weighings in a row: a gain
        ([80.0, 80.1, 82.6, 80.2], 80.1, False),  # yesterday's heavy reading, gone today
    ],
)
def test_a_weight_gain_alarms_when_two_weighings_in_a_row_show_it(
    weights: list[float], today: float, raised: bool
) -> None:
    history = daily(0, Kind.BODY_WEIGHT, weights)
    found = _candidates("heart_failure", history, [(0, Kind.BODY_WEIGHT, at(len(weights)), today)])
    assert ("trend.weight_gain" in found) is raised, found
    if raised:  # the explanation shows today's weighing against the window's minimum, as the chart does
        gain = found["trend.weight_gain"]
        assert f"Vekt {today:.1f}".replace(".", ",") in gain.explanation_nb
        assert f"+{today - 80.0:.1f}".replace(".", ",") in gain.explanation_nb


def test_weekly_weight_gain_is_off_outside_heart_failure() -> None:
    history = daily(0, Kind.BODY_WEIGHT, [80.0 + 0.45 * d for d in range(7)])
    assert _candidates("diabetes", history, [(0, Kind.BODY_WEIGHT, at(7), 83.15)]) == {}


# --- hypertension: the ESH home mean, not office grades on single readings -----------------------------------------


def _bp_days(systolic: float, diastolic: float, days: int, per_day: int = 2) -> list[tuple]:
    rows = []
    for d in range(days):
        for r in range(per_day):
            t = at(d, hours=8 + 12 * r)
            rows += [(0, Kind.BP_SYSTOLIC, t, systolic), (0, Kind.BP_DIASTOLIC, t, diastolic)]
    return rows


@pytest.mark.parametrize(
    ("systolic", "diastolic", "days", "kind", "value"),
    [
        (140, 80, 7, Kind.BP_SYSTOLIC, 140.0),  # home mean ≥ 135 systolic
        (128, 88, 7, Kind.BP_DIASTOLIC, 88.0),  # home mean ≥ 85 diastolic
        (135, 80, 7, Kind.BP_SYSTOLIC, 135.0),  # ESH's threshold is inclusive
        (134, 84, 7, None, None),  # below both
        (150, 95, 5, None, None),  # 10 readings: fewer than the 12 ESH asks for
    ],
)
def test_hypertension_home_blood_pressure_mean(
    systolic: float, diastolic: float, days: int, kind: Kind | None, value: float | None
) -> None:
    rows = _bp_days(systolic, diastolic, days)
    found = _candidates("hypertension", rows[:-2], rows[-2:])
    if kind is None:
        assert "bp.home_average" not in found
        return
    mean = found["bp.home_average"]
    assert (mean.kind, mean.value, mean.severity) == (kind, value, "needs_review")
    assert mean.count == days * 2
    assert "7 dager" in mean.explanation_nb and "135/85" in mean.explanation_en


@pytest.mark.parametrize(
    ("systolic", "severity"),
    [(170.0, 0), (179.0, 0), (180.0, Severity.RED), (95.0, Severity.YELLOW)],
)
def test_hypertension_single_readings_keep_only_red_hard_limits_on_the_high_side(
    systolic: float, severity: int
) -> None:
    result = evaluate_batch(readings([(0, Kind.BP_SYSTOLIC, at(0), systolic)]), build_patient_rules(["hypertension"]))
    assert result.severity.tolist() == [severity]


# --- NEWS2: a partial score is a minimum ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "nb", "en"),
    [
        (
            [(Kind.RESP_RATE, 25), (Kind.PULSE_RATE, 115)],
            "NEWS2 minst 5 (gul)",
            "NEWS2 at least 5 (yellow)",
        ),
        (
            [(Kind.RESP_RATE, 25), (Kind.PULSE_RATE, 115), (Kind.SPO2, 97), (Kind.BP_SYSTOLIC, 130),
             (Kind.BODY_TEMPERATURE, 37.0)],
            "NEWS2 5 (gul)",
            "NEWS2 5 (yellow)",
        ),
    ],
)  # fmt: skip
def test_partial_news2_is_worded_as_a_minimum(batch: list[tuple[Kind, float]], nb: str, en: str) -> None:
    rows = [(0, kind, at(0, hours=i / HOUR), value) for i, (kind, value) in enumerate(batch)]
    found = _candidates("general", [], rows)
    assert found["news2"].explanation_nb.startswith(nb + ":")
    assert found["news2"].explanation_en.startswith(en + ":")


def test_a_tailored_three_day_limit_also_lifts_the_weekly_limit() -> None:
    """The clinician accepted 3 kg in 3 days for this patient: a 2.5 kg gain raises neither weight rule."""
    from rules_engine.candidates import evaluate_batch
    from rules_engine.kinds_index import KIND_INDEX
    from rules_engine.profiles import TrendOverrides, TrendSetting, build_patient_rules
    from rules_engine.readings import ReadingArrays
    from vitals import Kind

    day = 86_400
    kind = KIND_INDEX[Kind.BODY_WEIGHT]
    history = ReadingArrays.of([0, 0, 0], [kind, kind, kind], [0, day, 2 * day], [80.0, 80.2, 82.4])
    batch = ReadingArrays.of([0], [kind], [3 * day], [82.5])
    tailored = TrendOverrides.of([0], [TrendSetting.WEIGHT_GAIN_KG], [3.0])
    rules = build_patient_rules(["heart_failure"], None, tailored)
    rules_default = build_patient_rules(["heart_failure"])
    tailored_rules = {c.rule for c in evaluate_batch(batch, rules, history).candidates}
    default_rules = {c.rule for c in evaluate_batch(batch, rules_default, history).candidates}
    assert not {"trend.weight_gain", "trend.weight_gain_7d"} & tailored_rules
    assert "trend.weight_gain" in default_rules  # the same readings do alarm on the default 2 kg rule
