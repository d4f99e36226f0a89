from __future__ import annotations

import math

import numpy as np
import pytest

from rules_engine import (
    KIND_ORDER,
    N_KINDS,
    PROTOCOLS,
    KindLimits,
    LimitOverrides,
    Protocol,
    TrendOverrides,
    TrendSetting,
    build_patient_rules,
    effective_limits,
    kind_index,
    kind_indices,
    protocol_code,
    validate_limits,
    validate_profile,
)
from rules_engine.profiles import TREND_NAMES
from rules_engine.validation import _TREND_BOUNDS
from vitals import Kind


def test_kind_index_follows_enum_order_and_maps_arrays() -> None:
    assert tuple(Kind) == KIND_ORDER
    assert [kind_index(k) for k in Kind] == list(range(N_KINDS))
    assert kind_indices(["spo2", "bp_systolic", "spo2"]).tolist() == [5, 0, 5]
    with pytest.raises(ValueError, match="unknown measurement kind 'weight'"):
        kind_indices(["weight"])


@pytest.mark.parametrize("protocol", list(Protocol))
def test_every_protocol_covers_every_kind_with_valid_limits(protocol: Protocol) -> None:
    limits = PROTOCOLS[protocol].limits
    assert set(limits) == set(Kind)
    for kind, kind_limits in limits.items():
        assert validate_limits(kind, kind_limits) == []


def test_layering_protocol_then_override_per_limit() -> None:
    overrides = LimitOverrides.from_mapping(
        {
            1: {Kind.SPO2: {"red_low": 85.0}},
            2: {Kind.SPO2: {"yellow_low": None}, "bp_systolic": {"red_high": 200.0}},
        }
    )
    rules = build_patient_rules(["copd", "copd", "copd", "general"], overrides, spo2_scale2=[True, True, True, False])
    spo2, sbp = kind_index(Kind.SPO2), kind_index(Kind.BP_SYSTOLIC)
    assert rules.limits[0, spo2, :2].tolist() == [84.0, 88.0]  # the scale-2 target
    assert rules.limits[1, spo2, :2].tolist() == [85.0, 88.0]  # one limit overridden, the other inherited
    assert rules.limits[2, spo2, 0] == 84.0 and math.isnan(rules.limits[2, spo2, 1])  # removed for this patient
    assert rules.limits[2, sbp, 3] == 200.0
    assert rules.limits[3, spo2, :2].tolist() == [92.0, 94.0]  # another protocol is untouched
    assert rules.spo2_scale2.tolist() == [True, True, True, False]
    assert rules.on_oxygen.tolist() == [False] * 4


def test_protocol_defaults_are_not_mutated_by_overrides() -> None:
    before = effective_limits("copd", spo2_scale2=True)[Kind.SPO2].as_tuple()
    build_patient_rules(["copd"], LimitOverrides.from_mapping({0: {Kind.SPO2: {"red_low": 70.0}}}), spo2_scale2=[True])
    assert np.array_equal(effective_limits("copd", spo2_scale2=True)[Kind.SPO2].as_tuple(), before, equal_nan=True)
    assert before[:2] == (84.0, 88.0)


def test_trend_overrides_and_protocol_trend_defaults() -> None:
    rules = build_patient_rules(
        [protocol_code("heart_failure")] * 2, trend_overrides=TrendOverrides.from_mapping({1: {"weight_gain_kg": 1.5}})
    )
    assert rules.trends[:, TrendSetting.WEIGHT_GAIN_KG].tolist() == [2.0, 1.5]
    assert rules.trends[:, TrendSetting.WEIGHT_WINDOW_DAYS].tolist() == [3.0, 3.0]
    assert np.isnan(build_patient_rules(["general"]).trends[0, TrendSetting.WEIGHT_GAIN_KG])


def test_unknown_protocol_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown protocol 'asthma'"):
        build_patient_rules(["asthma"])


def test_valid_edit_has_no_errors() -> None:
    assert validate_profile("copd", {"spo2": {"red_low": 85, "yellow_low": 89}}, {"spo2_drop": 5}) == []


@pytest.mark.parametrize(
    ("protocol", "overrides", "field", "message"),
    [
        ("copd", {"spo2": {"yellow_low": 80}}, "spo2.yellow_low", "yellow_low 80 is below red_low 84"),
        ("general", {"spo2": {"red_low": 40}}, "spo2.red_low", "red_low 40 % is outside the plausible range 50–100 %"),
        (
            "general",
            {"bp_systolic": {"red_high": 150}},
            "bp_systolic.red_high",
            "red_high 150 is below yellow_high 179",
        ),
        ("general", {"glucose": {"yellow_high": 2.0}}, "glucose.yellow_high", "yellow_high 2 is below yellow_low 3.9"),
        ("general", {"weight": {"red_high": 100}}, "weight", "unknown measurement kind 'weight'"),
        ("general", {"spo2": {"orange_low": 90}}, "spo2.orange_low", "unknown limit 'orange_low'"),
        ("general", {"spo2": {"red_low": float("inf")}}, "spo2.red_low", "must be a number or empty"),
    ],
)
def test_profile_errors_name_the_kind_and_limit(protocol: str, overrides: dict, field: str, message: str) -> None:
    errors = validate_profile(protocol, overrides)
    assert [e.field for e in errors] == [field]
    assert message in errors[0].message
    assert errors[0].message_nb


def test_profile_error_in_bokmaal() -> None:
    (error,) = validate_profile("copd", {"spo2": {"yellow_low": 80}}, spo2_scale2=True)
    assert error.message_nb == (
        "Oksygenmetning: gul nedre grense 80 er lavere enn rød nedre grense 84; "
        "rekkefølgen må være rød nedre ≤ gul nedre ≤ gul øvre ≤ rød øvre"
    )


def test_removing_an_inherited_limit_lets_the_others_stand() -> None:
    assert validate_profile("general", {"spo2": {"yellow_low": None, "red_low": 90}}) == []


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"weight_window_days": 10}, "trend.weight_window_days"),
        ({"weight_gain_kg": -1}, "trend.weight_gain_kg"),
        ({"baseline_days": None}, "trend.baseline_days"),
        ({"spo2_slope": 2}, "trend.spo2_slope"),
    ],
)
def test_trend_setting_errors(settings: dict, field: str) -> None:
    assert [e.field for e in validate_profile("general", None, settings)] == [field]


def test_switching_an_optional_trend_off_is_valid() -> None:
    assert validate_profile("heart_failure", None, {"weight_gain_kg": None}) == []


def test_every_trend_setting_has_validation_bounds() -> None:
    assert set(_TREND_BOUNDS) == set(TREND_NAMES)


def test_validate_limits_checks_nan_gaps_in_order() -> None:
    errors = validate_limits(Kind.PULSE_RATE, KindLimits(red_low=60, yellow_high=50))
    assert [e.field for e in errors] == ["pulse_rate.yellow_high"]
