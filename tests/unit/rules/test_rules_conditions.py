"""Multimorbidity: the conditions' limits and rules compose, the safer limit wins, and every
limit says which condition it came from."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rules_builders import at, readings

from rules_engine import build_patient_rules, evaluate_batch, kind_index
from rules_engine.profiles import (
    LIMIT_HIGHER_IS_SAFER,
    LIMIT_NAMES,
    LIMIT_SOURCES,
    TREND_NAMES,
    compose,
    condition_matrix,
    effective_limits,
    patient_rules_of,
)
from vitals import Kind
from vitals.plan import TREND_SETTINGS

NAN = math.nan

# (primary, other conditions, scale 2, kind, limit) → (value, condition it came from)
COMPOSITION = [
    # heart failure + diabetes + COPD: each condition's own limits survive side by side
    ("heart_failure", ["diabetes", "copd"], False, Kind.BP_SYSTOLIC, "red_low", 80.0, "heart_failure"),
    ("heart_failure", ["diabetes", "copd"], False, Kind.PULSE_RATE, "yellow_low", 50.0, "heart_failure"),
    ("heart_failure", ["diabetes", "copd"], False, Kind.GLUCOSE, "yellow_high", 13.9, "diabetes"),
    ("heart_failure", ["diabetes", "copd"], False, Kind.GLUCOSE, "red_low", 3.0, "general"),
    # COPD's own SpO2 limits (BTS target 88–92 %) are kept, not out-voted by the general 92/94 %
    ("diabetes", ["copd"], False, Kind.SPO2, "red_low", 84.0, "copd"),
    ("diabetes", [], False, Kind.SPO2, "red_low", 92.0, "general"),
    # COPD decides the SpO2 low limits whatever else the patient has (BTS 2017: the 88–92 % target for patients at
    # risk of hypercapnic failure); heart failure's own 92/90 % used to win here as the "safer" higher value
    ("heart_failure", ["diabetes", "copd"], False, Kind.SPO2, "red_low", 84.0, "copd"),
    ("heart_failure", ["diabetes", "copd"], False, Kind.SPO2, "yellow_low", 88.0, "copd"),
    ("copd", ["heart_failure"], False, Kind.SPO2, "yellow_low", 88.0, "copd"),
    # without COPD heart failure's own SpO2 limits stand
    ("heart_failure", ["diabetes"], False, Kind.SPO2, "red_low", 90.0, "heart_failure"),
    # a clinician-set scale 2 target wins over every condition's (and the general) SpO2 low limits
    ("heart_failure", ["diabetes", "copd"], True, Kind.SPO2, "red_low", 84.0, "spo2_scale2"),
    ("heart_failure", ["diabetes", "copd"], True, Kind.SPO2, "yellow_low", 88.0, "spo2_scale2"),
    # heart failure + hypertension: HF keeps its low systolic limits, hypertension its high ones
    ("hypertension", ["heart_failure"], False, Kind.BP_SYSTOLIC, "yellow_low", 90.0, "heart_failure"),
    ("hypertension", ["heart_failure"], False, Kind.BP_SYSTOLIC, "red_high", 179.0, "hypertension"),
    ("hypertension", ["heart_failure"], False, Kind.BP_SYSTOLIC, "yellow_high", NAN, "hypertension"),
    # order of the conditions does not matter
    ("heart_failure", ["hypertension"], False, Kind.BP_SYSTOLIC, "red_high", 179.0, "hypertension"),
    # no condition: the general protocol
    ("general", [], False, Kind.BP_SYSTOLIC, "yellow_high", 179.0, "general"),
]


@pytest.mark.parametrize(("primary", "others", "scale2", "kind", "limit", "value", "source"), COMPOSITION)
def test_conditions_compose_per_limit_with_their_source(
    primary: str, others: list[str], scale2: bool, kind: Kind, limit: str, value: float, source: str
) -> None:
    rules = patient_rules_of(primary, conditions=others, spo2_scale2=scale2)
    k, c = kind_index(kind), LIMIT_NAMES.index(limit)
    got = float(rules.limits[0, k, c])
    assert got == value or (math.isnan(value) and math.isnan(got))
    assert rules.limit_source_name(0, k, c) == source


@pytest.mark.parametrize(
    ("a", "b", "column", "expected"),
    [
        (88.0, 94.0, "yellow_low", 94.0),  # the higher low limit alarms sooner on a fall
        (41.0, 45.0, "red_low", 45.0),
        (110.0, 100.0, "yellow_high", 100.0),  # the lower high limit alarms sooner on a rise
        (NAN, 120.0, "red_high", 120.0),  # a limit beats none
        (NAN, NAN, "red_high", NAN),  # both conditions remove it: removed
    ],
)
def test_conflicts_resolve_to_the_safer_limit(a: float, b: float, column: str, expected: float) -> None:
    c = LIMIT_NAMES.index(column)
    tables = np.full((3, 1, 4), 50.0)
    tables[1, 0, c], tables[2, 0, c] = a, b
    own = np.zeros((3, 1, 4), dtype=np.bool_)
    own[1:, 0, c] = True
    values, source = compose(tables, own, np.array([[True, True, True], [True, False, True]]), LIMIT_HIGHER_IS_SAFER)
    got = values[0, 0, c]
    assert got == expected or (math.isnan(expected) and math.isnan(got))
    assert values[1, 0, c] == b or (math.isnan(b) and math.isnan(values[1, 0, c]))  # one condition: its own
    assert source[1, 0, c] == 2
    assert values[0, 0, (c + 1) % 4] == 50.0 and source[0, 0, (c + 1) % 4] == 0  # nobody's own: general


@pytest.mark.parametrize(
    ("conditions", "decides", "value", "source"),
    [
        ([True, True, True], None, 94.0, 2),  # no deciding condition: the safer (higher low limit) wins
        ([True, True, True], 1, 88.0, 1),  # condition 1 decides: its value stands although 94 is safer
        ([True, False, True], 1, 94.0, 2),  # the deciding condition is not the patient's: safer wins
        ([True, True, False], 1, 88.0, 1),
        ([True, True, True], 2, 94.0, 2),  # the deciding condition's value is the safer one anyway
    ],
)
def test_a_deciding_condition_sets_its_limit_whatever_the_others_set(
    conditions: list[bool], decides: int | None, value: float, source: int
) -> None:
    c = LIMIT_NAMES.index("yellow_low")
    tables = np.full((3, 1, 4), 50.0)
    tables[1, 0, c], tables[2, 0, c] = 88.0, 94.0
    own = np.zeros((3, 1, 4), dtype=np.bool_)
    own[1:, 0, c] = True
    deciding = None
    if decides is not None:
        deciding = np.zeros((3, 1, 4), dtype=np.bool_)
        deciding[decides, 0, c] = True
    values, sources = compose(tables, own, np.array([conditions]), LIMIT_HIGHER_IS_SAFER, deciding)
    assert (values[0, 0, c], sources[0, 0, c]) == (value, source)
    assert values[0, 0, (c + 1) % 4] == 50.0 and sources[0, 0, (c + 1) % 4] == 0  # other cells untouched


def test_trend_rules_compose_and_the_lower_allowed_change_wins() -> None:
    rules = patient_rules_of("copd", conditions=["heart_failure", "hypertension"])
    trends = dict(zip(TREND_NAMES, rules.trends[0].tolist(), strict=True))
    source = {n: LIMIT_SOURCES[int(s)] for n, s in zip(TREND_NAMES, rules.trend_source[0], strict=True)}
    assert (trends["weight_gain_kg"], source["weight_gain_kg"]) == (2.0, "heart_failure")
    assert (trends["weight_week_gain_kg"], source["weight_week_gain_kg"]) == (2.3, "heart_failure")
    assert (trends["spo2_drop"], source["spo2_drop"]) == (4.0, "copd")
    assert (trends["bp_home_systolic"], source["bp_home_systolic"]) == (135.0, "hypertension")
    assert source["baseline_days"] == "general"


def test_overrides_win_over_the_composition_and_say_so() -> None:
    limits = effective_limits("heart_failure", {"glucose": {"yellow_high": 12.0}}, conditions=["diabetes"])
    assert limits[Kind.GLUCOSE].yellow_high == 12.0
    rules = patient_rules_of("heart_failure", {"glucose": {"yellow_high": 12.0}}, conditions=["diabetes"])
    assert rules.limit_source_name(0, kind_index(Kind.GLUCOSE), LIMIT_NAMES.index("yellow_high")) == "override"


def test_an_alarm_names_the_condition_its_limit_came_from() -> None:
    rules = build_patient_rules(["heart_failure", "heart_failure"], conditions=condition_matrix([["diabetes"], []]))
    batch = [(0, Kind.GLUCOSE, at(0), 15.0), (0, Kind.BP_SYSTOLIC, at(0), 85.0), (1, Kind.GLUCOSE, at(0), 15.0)]
    found = {(c.patient_row, c.rule): c for c in evaluate_batch(readings(batch), rules).candidates}
    assert found[(0, "threshold.glucose.high")].details["condition"] == "diabetes"
    assert found[(0, "threshold.bp_systolic.low")].details["condition"] == "heart_failure"
    # several conditions: the text says whose limit it is; one condition: it need not
    assert found[(0, "threshold.glucose.high")].explanation_nb.endswith("over gul grense 13,9 mmol/L (diabetes)")
    assert found[(0, "threshold.bp_systolic.low")].explanation_en.endswith("limit 90 mmHg (heart failure)")
    assert (1, "threshold.glucose.high") not in found  # heart failure alone sets no high glucose limit


def test_the_plan_and_the_rules_name_the_same_trend_settings() -> None:
    assert tuple(TREND_NAMES) == TREND_SETTINGS
