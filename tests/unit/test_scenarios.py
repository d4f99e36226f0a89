"""Scenarios replayed through the real rule evaluation (pure, act by act as a live gateway would deliver them):
each raises the alarms a clinician expects, at the expected time, and nothing it should not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from device_simulators.physiology import MeasurementAct, plausible
from device_simulators.scenarios import CLOCK_RESET_TO, SCENARIOS, default_onset
from rules_engine.candidates import evaluate_batch
from rules_engine.kinds_index import KIND_INDEX
from rules_engine.profiles import build_patient_rules
from rules_engine.readings import ReadingArrays
from vitals import Kind

START = datetime(2026, 2, 2, tzinfo=UTC)
DAYS = 14
SEEDS = range(8)
ZONE = ZoneInfo("Europe/Oslo")


def _arrays(acts: list[MeasurementAct]) -> ReadingArrays:
    rows = [(KIND_INDEX[k], int(a.at.timestamp()), v) for a in acts for k, v in a.values]
    return ReadingArrays.of(
        np.zeros(len(rows), dtype=np.int64),
        [r[0] for r in rows],
        np.array([r[1] for r in rows], dtype=np.int64),
        [r[2] for r in rows],
    )


def replay(protocol: str, acts: list[MeasurementAct]) -> dict[str, int]:
    """Rule → index of the day (from START) whose act first raised it; implausible acts never reach the rules."""
    # The simulated COPD patients live at 92–93 %: their clinician has set NEWS2 SpO2 scale 2 (target 88–92 %).
    rules = build_patient_rules(np.array([protocol]), spo2_scale2=[protocol == "copd"])
    first: dict[str, int] = {}
    history: list[MeasurementAct] = []
    for act in acts:
        if not plausible(act):
            continue
        recent = [h for h in history if h.at >= act.at - timedelta(days=14)]
        result = evaluate_batch(_arrays([act]), rules, _arrays(recent) if recent else None)
        day = (act.at.astimezone(ZONE).date() - START.astimezone(ZONE).date()).days
        for candidate in result.candidates:
            first.setdefault(candidate.rule, day)
        history.append(act)
    return first


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_raises_what_a_clinician_expects_and_nothing_else(name: str) -> None:
    spec = SCENARIOS[name]
    for seed in SEEDS:
        raised = set(replay(spec.protocol, spec.generate(seed, START, DAYS)))
        assert not spec.missing(raised), f"seed {seed}: missing {spec.missing(raised)}"
        assert raised <= spec.allowed_rules, f"seed {seed}: unexpected {raised - spec.allowed_rules}"


@pytest.mark.parametrize("protocol", ["general", "heart_failure", "copd", "diabetes", "hypertension"])
def test_stable_patient_raises_no_alarm_over_fourteen_days_for_many_patients(protocol: str) -> None:
    spec = SCENARIOS[f"stable_{protocol}"]
    for seed in range(40):
        assert replay(protocol, spec.generate(seed, START, DAYS)) == {}, f"seed {seed}"


def test_decompensation_weight_alarm_comes_on_day_three_or_four_of_the_weight_gain() -> None:
    """The ESC's "> 2 kg in 3 days", confirmed by the next weighing (one scale read in clothes is not a gain)."""
    onset = default_onset(DAYS)
    days = set()
    for seed in range(20):
        first = replay("heart_failure", SCENARIOS["heart_failure_decompensation"].generate(seed, START, DAYS))
        days.add(first["trend.weight_gain"] - onset + 1)
    assert days <= {3, 4}


def test_decompensation_gains_two_to_three_kg_in_three_days_with_rising_pulse_and_falling_spo2() -> None:
    acts = SCENARIOS["heart_failure_decompensation"].generate(4, START, DAYS)
    onset = default_onset(DAYS)

    def on_day(day: int, kind: Kind) -> list[float]:
        date = START.astimezone(ZONE).date() + timedelta(days=day)
        return [a.value(kind) for a in acts if a.at.astimezone(ZONE).date() == date and kind in dict(a.values)]

    before, after = on_day(onset - 1, Kind.BODY_WEIGHT)[0], on_day(onset + 2, Kind.BODY_WEIGHT)[0]
    assert 2.0 < after - before <= 3.3
    pulse_before = sum(on_day(onset - 1, Kind.PULSE_RATE)) / len(on_day(onset - 1, Kind.PULSE_RATE))
    pulse_after = sum(on_day(onset + 2, Kind.PULSE_RATE)) / len(on_day(onset + 2, Kind.PULSE_RATE))
    assert pulse_after > pulse_before + 4
    assert max(on_day(onset + 2, Kind.SPO2)) < max(on_day(onset - 2, Kind.SPO2))


def test_copd_exacerbation_takes_spo2_down_to_86_to_88_percent() -> None:
    for seed in SEEDS:
        acts = SCENARIOS["copd_exacerbation"].generate(seed, START, DAYS)
        last_days = [a.value(Kind.SPO2) for a in acts if a.device_type == "pulse_oximeter"][-4:]
        assert min(last_days) <= 87 and max(last_days) <= 88


def test_glitch_acts_carry_values_the_edge_refuses_and_nothing_else_does() -> None:
    acts = SCENARIOS["sensor_glitches"].generate(1, START, DAYS)
    glitches = [a for a in acts if a.tag == "glitch"]
    assert len(glitches) == 6
    assert all(not plausible(a) for a in glitches)
    assert all(plausible(a) for a in acts if a.tag != "glitch")


def test_missed_measurements_leave_whole_days_and_single_sessions_out() -> None:
    full = SCENARIOS["stable_heart_failure"].generate(3, START, DAYS)
    missed = SCENARIOS["missed_measurements"].generate(3, START, DAYS)
    kept_days = {a.at.astimezone(ZONE).date() for a in missed}
    assert len(kept_days) == DAYS - 2
    assert {(a.at, a.tag) for a in missed} < {(a.at, a.tag) for a in full}
    assert len(missed) < len(full) - 8


def test_gateway_offline_delays_uploads_of_the_outage_only() -> None:
    acts = SCENARIOS["gateway_offline"].generate(6, START, DAYS)
    delayed = [a for a in acts if a.upload_after - a.at > timedelta(minutes=1)]
    assert 2 <= len(delayed) <= 4  # the evening BP and the next morning's weight, BP and SpO2 (16 h from 17:00)
    latest = max(a.upload_after for a in delayed)
    assert all(a.at < latest for a in delayed)


def test_device_clock_wrong_moves_only_the_blood_pressure_monitor_back_to_2000() -> None:
    acts = SCENARIOS["device_clock_wrong"].generate(8, START, DAYS)
    wrong = [a for a in acts if a.device_time.year == CLOCK_RESET_TO.year]
    assert wrong and all(a.device_type == "blood_pressure_monitor" for a in wrong)
    assert all(a.device_time.year == 2026 for a in acts if a not in wrong)


def test_an_exacerbation_is_recognised_by_any_of_its_right_alarms_and_not_by_none() -> None:
    spec = SCENARIOS["copd_exacerbation"]
    assert spec.missing(set()) == {"one of news2, threshold.resp_rate.high, threshold.spo2.low, trend.spo2_baseline"}
    assert spec.missing({"threshold.pulse_rate.high"})  # a side effect alone is not the exacerbation
    assert not spec.missing({"threshold.resp_rate.high"}) and not spec.missing({"threshold.spo2.low", "news2"})
    assert SCENARIOS["hypoglycaemia"].missing({"threshold.glucose.high"}) == {"threshold.glucose.low"}
