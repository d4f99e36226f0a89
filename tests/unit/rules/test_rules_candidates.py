from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from rules_builders import at, daily, readings

from rules_engine import (
    AlarmCandidate,
    ReadingArrays,
    Severity,
    build_patient_rules,
    evaluate_batch,
    kind_index,
)
from vitals import Kind

PATIENT_IDS = ["p-hf", "p-copd", "p-general"]


def _rules():
    # The COPD patient's clinician has set NEWS2 SpO2 scale 2 (confirmed hypercapnic failure, target 88–92 %).
    return build_patient_rules(["heart_failure", "copd", "general"], spo2_scale2=[False, True, False])


def _by_rule(candidates: list[AlarmCandidate]) -> dict[tuple[str, str], AlarmCandidate]:
    keyed = {(str(c.patient_id), c.rule): c for c in candidates}
    assert len(keyed) == len(candidates), "one candidate per patient and rule"
    return keyed


def test_batch_yields_one_explained_candidate_per_patient_and_rule() -> None:
    history = (
        daily(0, Kind.BODY_WEIGHT, [82.0, 81.7, 83.9])  # the weighing before confirms the gain
        + daily(1, Kind.SPO2, [93, 94, 92, 93, 94, 93])
        + daily(0, Kind.PULSE_RATE, [70, 72, 71, 69, 70, 73])
    )
    batch = [
        (0, Kind.BODY_WEIGHT, at(3), 84.1),
        (1, Kind.SPO2, at(6), 86),
        (1, Kind.SPO2, at(6, hours=0.1), 83),
        (1, Kind.SPO2, at(6, hours=0.2), 88),  # at the COPD yellow limit: only the drift speaks
        (2, Kind.BP_SYSTOLIC, at(6), 95),
        (2, Kind.RESP_RATE, at(6), 23),
        (2, Kind.PULSE_RATE, at(6), 95),
        (2, Kind.BODY_WEIGHT, at(6), 120.0),
    ]
    result = evaluate_batch(readings(batch), _rules(), readings(history), patient_ids=PATIENT_IDS)
    assert result.severity.tolist() == [0, Severity.YELLOW, Severity.RED, 0, Severity.YELLOW, Severity.YELLOW, 0, 0]
    found = _by_rule(result.candidates)
    assert set(found) == {
        ("p-hf", "trend.weight_gain"),
        ("p-copd", "threshold.spo2.low"),
        ("p-copd", "trend.spo2_baseline"),
        ("p-general", "threshold.bp_systolic.low"),
        ("p-general", "threshold.resp_rate.high"),
        ("p-general", "news2"),
    }

    weight = found[("p-hf", "trend.weight_gain")]
    assert (weight.severity, weight.kind, weight.value, weight.limit) == ("yellow", Kind.BODY_WEIGHT, 84.1, 2.0)
    assert weight.explanation_nb == "Vekt 84,1 kg, +2,4 kg på 2 dager, grense 2,0 kg på 3 dager"
    assert weight.explanation_en == "Body weight 84.1 kg, +2.4 kg in 2 days, limit 2.0 kg in 3 days"
    assert weight.window_start == datetime.fromtimestamp(at(1), tz=UTC)
    assert weight.window_end == datetime.fromtimestamp(at(3), tz=UTC)
    assert weight.reading_index == 0

    spo2 = found[("p-copd", "threshold.spo2.low")]
    assert (spo2.severity, spo2.value, spo2.limit, spo2.count, spo2.reading_index) == ("red", 83.0, 84.0, 2, 2)
    assert spo2.details["limit_name"] == "red_low"
    assert spo2.explanation_en == (
        "Oxygen saturation 83%, below the red limit 84% (NEWS2 scale 2 target) (2 readings below the limit)"
    )
    assert spo2.details["condition"] == "spo2_scale2"

    drift = found[("p-copd", "trend.spo2_baseline")]
    assert (drift.severity, drift.value, drift.details["baseline_median"]) == ("needs_review", 88.0, 93.0)
    assert drift.details["delta"] == -5.0 and drift.count == 8
    assert drift.reading_index == 3

    news2 = found[("p-general", "news2")]
    assert (news2.severity, news2.value, news2.limit, news2.kind) == ("yellow", 5.0, 5.0, None)
    assert news2.details["partial"] is True
    assert news2.details["missing"] == ["spo2", "temperature"]
    assert news2.details["sub_scores"] == {"resp_rate": 2, "systolic": 2, "pulse": 1}
    assert news2.explanation_nb.startswith("NEWS2 minst 5 (gul): respirasjonsfrekvens 23/min (2)")


def test_single_parameter_news2_is_left_to_the_threshold_rule() -> None:
    batch = [(2, Kind.SPO2, at(0), 88)]
    result = evaluate_batch(readings(batch), _rules(), patient_ids=PATIENT_IDS)
    assert [c.rule for c in result.candidates] == ["threshold.spo2.low"]
    assert result.news2 is not None and result.news2.severity.tolist() == [Severity.YELLOW]


def test_quiet_batch_gives_no_candidates_and_news2_can_be_switched_off() -> None:
    batch = readings([(2, Kind.SPO2, at(0), 97), (2, Kind.PULSE_RATE, at(0), 70)])
    quiet = evaluate_batch(batch, _rules())
    assert quiet.candidates == []
    assert quiet.severity.tolist() == [0, 0]
    assert evaluate_batch(batch, _rules(), news2=False).news2 is None


def test_datetime64_times_and_missing_patient_ids() -> None:
    times = np.array(["2026-11-21T08:00:00", "2026-11-21T08:05:00"], dtype="datetime64[s]")
    batch = ReadingArrays.of([2, 2], [kind_index(Kind.GLUCOSE)] * 2, times, [2.8, 3.5])
    (candidate,) = evaluate_batch(batch, _rules()).candidates
    assert candidate.patient_id is None and candidate.patient_row == 2
    assert (candidate.rule, candidate.severity, candidate.count) == ("threshold.glucose.low", "red", 2)
    assert candidate.window_start == datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    assert candidate.window_end == datetime(2026, 11, 21, 8, 5, tzinfo=UTC)
    assert candidate.explanation_nb == "Blodsukker 2,8 mmol/L, under rød grense 3,0 mmol/L (2 målinger under grensen)"
