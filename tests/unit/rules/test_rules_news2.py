from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from rules_builders import HOUR, at, readings

from rules_engine import (
    News2Parameter,
    Severity,
    build_patient_rules,
    evaluate_news2,
    protocol_code,
    score_pulse,
    score_resp_rate,
    score_spo2_scale1,
    score_spo2_scale2,
    score_systolic,
    score_temperature,
    sort_readings,
)
from rules_engine.news2 import news2_severity
from vitals import Kind

# RCP 2017 NEWS2 chart: (value, expected sub-score) at both sides of every band edge.
BANDS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], list[tuple[float, int]]]] = {
    "resp_rate": (score_resp_rate, [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3)]),
    "spo2_scale1": (score_spo2_scale1, [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)]),
    "systolic": (
        score_systolic,
        [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
    ),
    "pulse": (
        score_pulse,
        [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2), (131, 3)],
    ),
    "temperature": (
        score_temperature,
        [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1), (39.1, 2), (41.0, 2)],
    ),
}


@pytest.mark.parametrize(("name", "value", "score"), [(n, v, s) for n, (_, cases) in BANDS.items() for v, s in cases])
def test_news2_band_edges(name: str, value: float, score: int) -> None:
    fn, _ = BANDS[name]
    assert fn(np.array([value])).tolist() == [score]


@pytest.mark.parametrize(
    ("value", "on_oxygen", "score"),
    [
        (83, False, 3),
        (84, False, 2),
        (85, False, 2),
        (86, False, 1),
        (87, False, 1),
        (88, False, 0),
        (92, False, 0),
        (93, False, 0),  # ≥93 on air scores 0 on scale 2
        (100, False, 0),
        (83, True, 3),
        (88, True, 0),
        (92, True, 0),
        (93, True, 1),  # on oxygen: 93–94 → 1, 95–96 → 2, ≥97 → 3
        (94, True, 1),
        (95, True, 2),
        (96, True, 2),
        (97, True, 3),
        (100, True, 3),
    ],
)
def test_spo2_scale2_band_edges_on_air_and_oxygen(value: float, on_oxygen: bool, score: int) -> None:
    assert score_spo2_scale2(np.array([value]), np.array([on_oxygen])).tolist() == [score]


def test_values_round_to_the_kind_decimals_before_banding_and_nan_is_missing() -> None:
    assert score_temperature(np.array([38.04, 38.06, np.nan])).tolist() == [0, 1, -1]
    assert score_pulse(np.array([90.4, 90.6])).tolist() == [0, 1]


@pytest.mark.parametrize(
    ("score", "any_three", "severity"),
    [
        (0, False, Severity.NONE),
        (4, False, Severity.NONE),
        (3, True, Severity.YELLOW),
        (5, False, Severity.YELLOW),
        (6, False, Severity.YELLOW),
        (7, False, Severity.RED),
        (9, True, Severity.RED),
    ],
)
def test_aggregate_to_severity(score: int, any_three: bool, severity: Severity) -> None:
    assert news2_severity(np.array([score]), np.array([any_three])).tolist() == [severity]


def _full_round(patient: int, hours: float, rr: float, spo2: float, sbp: float, pulse: float, temp: float) -> list:
    t = at(1, hours=hours)
    return [
        (patient, Kind.RESP_RATE, t, rr),
        (patient, Kind.SPO2, t, spo2),
        (patient, Kind.BP_SYSTOLIC, t, sbp),
        (patient, Kind.PULSE_RATE, t, pulse),
        (patient, Kind.BODY_TEMPERATURE, t, temp),
    ]


def test_complete_round_scores_every_parameter() -> None:
    rules = build_patient_rules([protocol_code("general")])
    batch = _full_round(0, 0, rr=22, spo2=93, sbp=105, pulse=115, temp=38.5)
    result = evaluate_news2(sort_readings(readings([]), readings(batch)), rules.spo2_scale2, rules.on_oxygen)
    assert result.sub_scores.tolist() == [[2, 2, 1, 2, 1]]
    assert result.score.tolist() == [8]
    assert result.partial.tolist() == [False]
    assert result.severity.tolist() == [Severity.RED]
    assert result.missing_parameters(0) == []


def test_scale2_patient_scores_spo2_on_scale2_and_oxygen_adds_two() -> None:
    rules = build_patient_rules(
        [protocol_code("copd"), protocol_code("copd")], on_oxygen=[False, True], spo2_scale2=[True, True]
    )
    batch = _full_round(0, 0, 16, 95, 120, 70, 37.0) + _full_round(1, 0, 16, 95, 120, 70, 37.0)
    result = evaluate_news2(sort_readings(readings([]), readings(batch)), rules.spo2_scale2, rules.on_oxygen)
    assert result.scale2.tolist() == [True, True]
    assert result.sub_scores[:, News2Parameter.SPO2].tolist() == [0, 2]
    assert result.score.tolist() == [0, 4]


def test_partial_score_lists_missing_parameters_and_uses_history_within_the_window() -> None:
    rules = build_patient_rules([protocol_code("general")])
    history = [(0, Kind.BODY_TEMPERATURE, at(1, hours=-0.5), 39.5), (0, Kind.RESP_RATE, at(1, hours=-2), 30)]
    batch = [(0, Kind.SPO2, at(1), 91), (0, Kind.HEART_RATE, at(1), 135), (0, Kind.PULSE_RATE, at(1, hours=-0.2), 60)]
    result = evaluate_news2(sort_readings(readings(history), readings(batch)), rules.spo2_scale2, rules.on_oxygen)
    assert result.partial.tolist() == [True]
    assert result.missing_parameters(0) == [News2Parameter.RESP_RATE, News2Parameter.SYSTOLIC]  # RR is 2 h old
    # Pulse: the later of pulse_rate and heart_rate.
    assert result.values[0, News2Parameter.PULSE] == 135
    assert result.sub_scores[0].tolist() == [-1, 3, -1, 3, 2]
    assert result.score.tolist() == [8]
    assert result.severity.tolist() == [Severity.RED]
    assert result.reading_index[0].tolist() == [-1, 0, -1, 1, -1]


def test_single_parameter_three_is_yellow_below_aggregate_five() -> None:
    rules = build_patient_rules([protocol_code("general")])
    batch = _full_round(0, 0, rr=16, spo2=97, sbp=120, pulse=38, temp=37.0)
    result = evaluate_news2(sort_readings(readings([]), readings(batch)), rules.spo2_scale2, rules.on_oxygen)
    assert result.score.tolist() == [3]
    assert result.any_three.tolist() == [True]
    assert result.severity.tolist() == [Severity.YELLOW]


def test_only_patients_with_news2_readings_in_the_batch_are_scored() -> None:
    rules = build_patient_rules([protocol_code("general")] * 3)
    history = _full_round(1, -1, 30, 85, 80, 140, 34.0)
    batch = [(0, Kind.BODY_WEIGHT, at(1), 80.0), (2, Kind.SPO2, at(1), 97)]
    result = evaluate_news2(
        sort_readings(readings(history), readings(batch)), rules.spo2_scale2, rules.on_oxygen, window_s=HOUR
    )
    assert result.patient_row.tolist() == [2]
