"""Local advice is a pure function of the plan: reading → zone → the plan's advice, the same zones the rules use."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.patient.advice import evaluate_measurement, evaluate_reading, zone_of
from rules_engine.kinds_index import KIND_INDEX, N_KINDS
from rules_engine.severity import Severity
from rules_engine.thresholds import evaluate_thresholds
from tests.patient.plans import plan
from vitals import Kind
from vitals.plan import KindZones


@pytest.mark.parametrize(
    ("value", "zone"),
    [
        (70.0, "green"),
        (82.0, "green"),
        (82.1, "yellow"),
        (84.0, "yellow"),
        (84.04, "yellow"),
        (84.1, "red"),
        (120.0, "red"),
    ],
)
def test_weight_zone_edges_follow_the_plan_limits(value: float, zone: str) -> None:
    verdict = evaluate_reading(plan(), Kind.BODY_WEIGHT, value)
    assert verdict.zone == zone


def test_red_weight_gets_the_plans_weight_advice_and_red_pressure_the_general_red_advice() -> None:
    weight = evaluate_reading(plan(), Kind.BODY_WEIGHT, 86.0)
    assert weight.advice is not None and weight.advice.nb.startswith("Vekten har økt mye")
    assert weight.advice.en.startswith("Your weight has gone up a lot")
    pressure = evaluate_reading(plan(), Kind.BP_SYSTOLIC, 85.0)
    assert pressure.zone == "red" and pressure.advice is not None and pressure.advice.en == "Call the nurse now."
    green = evaluate_reading(plan(), Kind.BP_SYSTOLIC, 128.0)
    assert green.zone == "green" and green.advice is not None and green.advice.nb.startswith("Alt ser bra ut")


def test_a_kind_without_zones_or_without_a_plan_has_no_zone_and_no_advice() -> None:
    assert evaluate_reading(plan(), Kind.SPO2, 80.0).zone is None
    assert evaluate_reading(plan(), Kind.SPO2, 80.0).advice is None
    assert evaluate_reading(None, Kind.BODY_WEIGHT, 120.0).zone is None


def test_a_blood_pressure_measurement_takes_its_worst_part() -> None:
    verdict = evaluate_measurement(
        plan(), [(Kind.BP_SYSTOLIC, 160.0), (Kind.BP_DIASTOLIC, 95.0), (Kind.PULSE_RATE, 130.0)]
    )
    assert verdict.zone == "red" and verdict.deciding_kind is Kind.PULSE_RATE
    assert [p.zone for p in verdict.parts] == ["yellow", None, "red"]
    assert verdict.advice is not None and verdict.advice.nb == "Ring sykepleieren nå."
    calm = evaluate_measurement(plan(), [(Kind.BP_SYSTOLIC, 120.0), (Kind.BP_DIASTOLIC, 80.0)])
    assert calm.zone == "green"


limit = st.one_of(st.none(), st.floats(min_value=50, max_value=100, allow_nan=False))


@given(
    limits=st.lists(limit, min_size=4, max_size=4).filter(lambda xs: any(x is not None for x in xs)),
    value=st.floats(min_value=50, max_value=100, allow_nan=False),
)
def test_the_gateway_and_the_rules_judge_a_reading_alike(limits: list[float | None], value: float) -> None:
    present = sorted(x for x in limits if x is not None)
    ordered = iter(present)
    limits = [next(ordered) if x is not None else None for x in limits]
    zones = KindZones(
        kind=Kind.SPO2, unit="%", red_low=limits[0], yellow_low=limits[1], yellow_high=limits[2], red_high=limits[3]
    )
    table = np.full((1, N_KINDS, 4), np.nan)
    table[0, KIND_INDEX[Kind.SPO2]] = [math.nan if x is None else x for x in limits]
    severity, _ = evaluate_thresholds(np.array([0]), np.array([KIND_INDEX[Kind.SPO2]]), np.array([value]), table)
    expected = {Severity.NONE: "green", Severity.YELLOW: "yellow", Severity.RED: "red"}[Severity(int(severity[0]))]
    assert zone_of(zones, value) == expected
