from __future__ import annotations

import math

import numpy as np
import pytest
import rules_reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from rules_engine import (
    KIND_ORDER,
    N_KINDS,
    NO_BREACH,
    PROTOCOLS,
    Limit,
    LimitOverrides,
    Protocol,
    Severity,
    build_patient_rules,
    evaluate_thresholds,
    kind_index,
    protocol_code,
    worst_breaches,
)
from vitals import KINDS, Kind


def _one(protocol: Protocol, kind: Kind, value: float) -> tuple[int, int]:
    rules = build_patient_rules([protocol_code(protocol)])
    severity, breached = evaluate_thresholds(
        np.array([0]), np.array([kind_index(kind)]), np.array([value]), rules.limits
    )
    return int(severity[0]), int(breached[0])


@pytest.mark.parametrize(
    ("protocol", "kind", "value", "severity", "limit"),
    [
        # COPD, BTS 2017 target 88–92 %: limits are the last acceptable values.
        (Protocol.COPD, Kind.SPO2, 88, Severity.NONE, NO_BREACH),
        (Protocol.COPD, Kind.SPO2, 87, Severity.YELLOW, Limit.YELLOW_LOW),
        (Protocol.COPD, Kind.SPO2, 84, Severity.YELLOW, Limit.YELLOW_LOW),
        (Protocol.COPD, Kind.SPO2, 83, Severity.RED, Limit.RED_LOW),
        (Protocol.COPD, Kind.SPO2, 100, Severity.NONE, NO_BREACH),
        # General, SpO2 scale 1: ≤91 red, 92–93 yellow.
        (Protocol.GENERAL, Kind.SPO2, 94, Severity.NONE, NO_BREACH),
        (Protocol.GENERAL, Kind.SPO2, 93, Severity.YELLOW, Limit.YELLOW_LOW),
        (Protocol.GENERAL, Kind.SPO2, 92, Severity.YELLOW, Limit.YELLOW_LOW),
        (Protocol.GENERAL, Kind.SPO2, 91, Severity.RED, Limit.RED_LOW),
        # Diabetes, ADA levels: 3.9 is within, 3.8 level 1, 2.9 level 2; 13.9 within, 14.0 yellow, 16.8 red.
        (Protocol.DIABETES, Kind.GLUCOSE, 3.9, Severity.NONE, NO_BREACH),
        (Protocol.DIABETES, Kind.GLUCOSE, 3.8, Severity.YELLOW, Limit.YELLOW_LOW),
        (Protocol.DIABETES, Kind.GLUCOSE, 3.0, Severity.YELLOW, Limit.YELLOW_LOW),
        (Protocol.DIABETES, Kind.GLUCOSE, 2.9, Severity.RED, Limit.RED_LOW),
        (Protocol.DIABETES, Kind.GLUCOSE, 13.9, Severity.NONE, NO_BREACH),
        (Protocol.DIABETES, Kind.GLUCOSE, 14.0, Severity.YELLOW, Limit.YELLOW_HIGH),
        (Protocol.DIABETES, Kind.GLUCOSE, 16.7, Severity.YELLOW, Limit.YELLOW_HIGH),
        (Protocol.DIABETES, Kind.GLUCOSE, 16.8, Severity.RED, Limit.RED_HIGH),
        # Hypertension, ESH grades: grade 2 (≥160) yellow, grade 3 (≥180) red.
        # Hypertension: single home readings keep only the red grade-3 limit; the home mean does the rest.
        (Protocol.HYPERTENSION, Kind.BP_SYSTOLIC, 160, Severity.NONE, NO_BREACH),
        (Protocol.HYPERTENSION, Kind.BP_SYSTOLIC, 179, Severity.NONE, NO_BREACH),
        (Protocol.HYPERTENSION, Kind.BP_SYSTOLIC, 180, Severity.RED, Limit.RED_HIGH),
        (Protocol.HYPERTENSION, Kind.BP_DIASTOLIC, 109, Severity.NONE, NO_BREACH),
        (Protocol.HYPERTENSION, Kind.BP_DIASTOLIC, 110, Severity.RED, Limit.RED_HIGH),
        # Heart failure: SBP <90 red, <100 yellow.
        # ESC 2021 symptomatic hypotension < 90 → yellow; the hard floor < 80 → red.
        (Protocol.HEART_FAILURE, Kind.BP_SYSTOLIC, 89, Severity.YELLOW, Limit.YELLOW_LOW),
        (Protocol.HEART_FAILURE, Kind.BP_SYSTOLIC, 79, Severity.RED, Limit.RED_LOW),
        (Protocol.HEART_FAILURE, Kind.BP_SYSTOLIC, 90, Severity.NONE, NO_BREACH),
        # ESC 2021 oxygen below 90 % → red; NEWS2 ≤ 91 scores 3 → yellow.
        (Protocol.HEART_FAILURE, Kind.SPO2, 93, Severity.NONE, NO_BREACH),
        (Protocol.HEART_FAILURE, Kind.SPO2, 91, Severity.YELLOW, Limit.YELLOW_LOW),
        (Protocol.HEART_FAILURE, Kind.SPO2, 89, Severity.RED, Limit.RED_LOW),
        # General pulse from NEWS2: ≤40 red, 41–50 yellow, 111–130 yellow, ≥131 red.
        (Protocol.GENERAL, Kind.PULSE_RATE, 40, Severity.RED, Limit.RED_LOW),
        (Protocol.GENERAL, Kind.PULSE_RATE, 41, Severity.YELLOW, Limit.YELLOW_LOW),
        (Protocol.GENERAL, Kind.PULSE_RATE, 51, Severity.NONE, NO_BREACH),
        (Protocol.GENERAL, Kind.PULSE_RATE, 110, Severity.NONE, NO_BREACH),
        (Protocol.GENERAL, Kind.PULSE_RATE, 111, Severity.YELLOW, Limit.YELLOW_HIGH),
        (Protocol.GENERAL, Kind.PULSE_RATE, 131, Severity.RED, Limit.RED_HIGH),
        (Protocol.GENERAL, Kind.BODY_TEMPERATURE, 35.0, Severity.RED, Limit.RED_LOW),
        (Protocol.GENERAL, Kind.BODY_TEMPERATURE, 38.1, Severity.YELLOW, Limit.YELLOW_HIGH),
        (Protocol.GENERAL, Kind.BODY_TEMPERATURE, 39.1, Severity.RED, Limit.RED_HIGH),
        # No absolute weight limit in any protocol: weight is judged by trend.
        (Protocol.HEART_FAILURE, Kind.BODY_WEIGHT, 250.0, Severity.NONE, NO_BREACH),
    ],
)
def test_protocol_limit_edges(protocol: Protocol, kind: Kind, value: float, severity: Severity, limit: int) -> None:
    assert _one(protocol, kind, value) == (severity, limit)


@pytest.mark.parametrize("protocol", list(Protocol))
def test_every_protocol_limit_is_inclusive_and_one_step_beyond_breaches(protocol: Protocol) -> None:
    for kind, limits in PROTOCOLS[protocol].limits.items():
        step = 10.0 ** -KINDS[kind].decimals
        for column, value in zip(Limit, limits.as_tuple(), strict=True):
            if math.isnan(value):
                continue
            beyond = value - step if column in (Limit.RED_LOW, Limit.YELLOW_LOW) else value + step
            _, at_code = _one(protocol, kind, value)
            assert at_code != column, f"{protocol} {kind} {column.name} at the limit must not breach it"
            beyond_severity, _ = _one(protocol, kind, round(beyond, KINDS[kind].decimals))
            expected = Severity.RED if column in (Limit.RED_LOW, Limit.RED_HIGH) else Severity.YELLOW
            assert beyond_severity >= expected, f"{protocol} {kind} {column.name} one step beyond"


def test_nan_limit_never_breaches_and_nan_value_is_not_an_alarm() -> None:
    limits = np.full((1, N_KINDS, 4), np.nan)
    severity, breached = evaluate_thresholds(np.array([0, 0]), np.array([0, 1]), np.array([1e9, np.nan]), limits)
    assert severity.tolist() == [0, 0]
    assert breached.tolist() == [NO_BREACH, NO_BREACH]


def test_patient_override_replaces_protocol_limit_and_nan_override_removes_it() -> None:
    spo2 = kind_index(Kind.SPO2)
    overrides = LimitOverrides.from_mapping({1: {Kind.SPO2: {"red_low": 85, "yellow_low": None}}})
    rules = build_patient_rules([protocol_code("copd"), protocol_code("copd")], overrides, spo2_scale2=[True, True])
    values = np.array([84.0, 84.0, 86.0, 86.0])
    severity, breached = evaluate_thresholds(np.array([0, 1, 0, 1]), np.full(4, spo2), values, rules.limits)
    assert severity.tolist() == [Severity.YELLOW, Severity.RED, Severity.YELLOW, Severity.NONE]
    assert breached.tolist() == [Limit.YELLOW_LOW, Limit.RED_LOW, Limit.YELLOW_LOW, NO_BREACH]


def test_worst_reading_per_patient_kind_and_side_with_count() -> None:
    spo2, sys_ = kind_index(Kind.SPO2), kind_index(Kind.BP_SYSTOLIC)
    rules = build_patient_rules([protocol_code("general")] * 2)
    p = np.array([0, 0, 0, 0, 1, 0, 0])
    k = np.array([spo2, spo2, spo2, spo2, spo2, sys_, sys_])
    v = np.array([93.0, 90.0, 88.0, 97.0, 92.0, 230.0, 85.0])
    t = np.array([10, 20, 30, 40, 50, 60, 70])
    severity, breached = evaluate_thresholds(p, k, v, rules.limits)
    worst = worst_breaches(p, k, v, t, severity, breached, rules.limits)
    rows = {
        (int(worst.patient_row[i]), KIND_ORDER[int(worst.kind_idx[i])], bool(worst.high[i])): i
        for i in range(len(worst))
    }
    assert set(rows) == {
        (0, Kind.SPO2, False),
        (1, Kind.SPO2, False),
        (0, Kind.BP_SYSTOLIC, True),
        (0, Kind.BP_SYSTOLIC, False),
    }
    i = rows[(0, Kind.SPO2, False)]
    assert (worst.value[i], worst.count[i], worst.reading_index[i]) == (88.0, 3, 2)
    assert (worst.first_at[i], worst.last_at[i], worst.limit[i]) == (10, 30, 92.0)
    assert worst.severity[i] == Severity.RED and worst.breached[i] == Limit.RED_LOW
    high = rows[(0, Kind.BP_SYSTOLIC, True)]
    assert (worst.value[high], worst.breached[high], worst.limit[high]) == (230.0, Limit.RED_HIGH, 219.0)


@pytest.mark.parametrize(
    ("patient", "kind", "message"), [(0, N_KINDS, "kind_idx outside"), (2, 0, "patient_rows outside 0..1")]
)
def test_out_of_range_rows_are_refused_not_read_from_a_neighbour(patient: int, kind: int, message: str) -> None:
    rules = build_patient_rules([0, 0])
    with pytest.raises(ValueError, match=message):
        evaluate_thresholds(np.array([patient]), np.array([kind]), np.array([1.0]), rules.limits)


def test_empty_batch_gives_empty_results() -> None:
    rules = build_patient_rules([0])
    empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0)
    severity, breached = evaluate_thresholds(empty_i, empty_i, empty_f, rules.limits)
    worst = worst_breaches(empty_i, empty_i, empty_f, empty_i, severity, breached, rules.limits)
    assert len(severity) == 0 and len(worst) == 0


def _ordered_limits(draw: st.DrawFn) -> list[float]:
    raw = sorted(draw(st.lists(st.integers(0, 200), min_size=4, max_size=4)))
    return [float(x) if draw(st.booleans()) else math.nan for x in raw]


@st.composite
def _batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n_patients = draw(st.integers(1, 5))
    limits = np.array([[_ordered_limits(draw) for _ in range(N_KINDS)] for _ in range(n_patients)], dtype=np.float64)
    n = draw(st.integers(0, 60))
    p = np.array(draw(st.lists(st.integers(0, n_patients - 1), min_size=n, max_size=n)), dtype=np.int64)
    k = np.array(draw(st.lists(st.integers(0, N_KINDS - 1), min_size=n, max_size=n)), dtype=np.int64)
    v = np.array(draw(st.lists(st.integers(-5, 205), min_size=n, max_size=n)), dtype=np.float64)
    t = np.array(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), dtype=np.int64)
    return p, k, v, t, limits


@settings(max_examples=300, deadline=None)
@given(_batches())
def test_vectorised_thresholds_equal_the_per_reading_reference(batch: tuple[np.ndarray, ...]) -> None:
    p, k, v, t, limits = batch
    severity, breached = evaluate_thresholds(p, k, v, limits)
    expected = ref.thresholds(p.tolist(), k.tolist(), v.tolist(), limits.tolist())
    assert list(zip(severity.tolist(), breached.tolist(), strict=True)) == expected

    worst = worst_breaches(p, k, v, t, severity, breached, limits)
    expected_worst = ref.worst_per_rule(p.tolist(), k.tolist(), v.tolist(), t.tolist(), expected)
    got = {
        (int(worst.patient_row[i]), int(worst.kind_idx[i]), bool(worst.high[i])): (
            float(v[worst.reading_index[i]]),
            int(worst.count[i]),
            int(worst.severity[i]),
        )
        for i in range(len(worst))
    }
    assert got == {key: (v[i], count, sev) for key, (i, count, sev) in expected_worst.items()}
