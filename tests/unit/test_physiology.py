"""Physiology: determinism, schedules, device resolution and plausibility of simulated patients."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from device_simulators.physiology import (
    DEVICE_KINDS,
    PROTOCOLS,
    SCHEDULES,
    PatientModel,
    draw_baseline,
    dumps_acts,
    plausible,
)
from device_simulators.scenarios import SCENARIOS
from vitals import Kind

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def _digest(seed: int) -> str:
    blob = b"".join(dumps_acts(spec.generate(seed, START, 14)) for spec in SCENARIOS.values())
    return hashlib.sha256(blob).hexdigest()


def test_same_seed_gives_byte_identical_acts_and_another_seed_does_not() -> None:
    assert _digest(11) == _digest(11)
    assert _digest(11) != _digest(12)


def test_a_dates_acts_do_not_depend_on_the_span_asked_for() -> None:
    model = PatientModel.of(5, "heart_failure")
    short = model.acts(START + timedelta(days=3), 2)
    long = model.acts(START, 10)
    first_day = START.date() + timedelta(days=3)
    zone = ZoneInfo("Europe/Oslo")
    in_long = [a for a in long if a.at.astimezone(zone).date() in (first_day, first_day + timedelta(days=1))]
    assert dumps_acts(short) == dumps_acts(in_long)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_scheduled_session_is_taken_once_a_day_near_its_planned_local_time(protocol: str) -> None:
    model = PatientModel.of(3, protocol)  # type: ignore[arg-type]
    acts = model.acts(START, 14)
    zone = ZoneInfo("Europe/Oslo")
    per_tag = Counter(a.tag for a in acts)
    for session in SCHEDULES[protocol]:  # type: ignore[index]
        days = sum(1 for i in range(14) if (START.date() + timedelta(days=i)).weekday() in session.weekdays)
        assert per_tag[session.tag] == days * session.repeats
        for act in (a for a in acts if a.tag == session.tag):
            local = act.at.astimezone(zone)
            planned = local.replace(hour=session.hour, minute=session.minute, second=0)
            late = 45 if local.weekday() >= 5 and session.hour < 11 else 0
            off = (local - planned).total_seconds() / 60 - late
            assert -session.jitter_min <= off <= session.jitter_min + session.repeats + 1
    assert [a.at for a in acts] == sorted(a.at for a in acts)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_devices_report_their_kinds_at_device_resolution_with_a_correct_local_clock(protocol: str) -> None:
    zone = ZoneInfo("Europe/Oslo")
    for act in PatientModel.of(9, protocol).acts(START, 7):  # type: ignore[arg-type]
        assert tuple(k for k, _ in act.values) == DEVICE_KINDS[act.device_type]
        assert act.device_time == act.at.astimezone(zone).replace(tzinfo=None)
        assert act.at.microsecond == 0 and timedelta(seconds=3) <= act.upload_after - act.at <= timedelta(seconds=40)
        assert plausible(act)
        for kind, value in act.values:
            decimals = 1 if kind in (Kind.BODY_WEIGHT, Kind.BODY_TEMPERATURE, Kind.GLUCOSE) else 0
            assert value == round(value, decimals)


def test_blood_pressure_mean_lies_between_diastolic_and_systolic() -> None:
    for act in (a for a in PatientModel.of(4, "hypertension").acts(START, 14) if a.device_type.startswith("blood")):
        sys_, dia, mean = act.value(Kind.BP_SYSTOLIC), act.value(Kind.BP_DIASTOLIC), act.value(Kind.BP_MEAN)
        assert dia < mean < sys_
        assert abs(mean - (dia + (sys_ - dia) / 3)) <= 0.5


def test_baselines_differ_between_patients_and_follow_the_protocol() -> None:
    copd = {draw_baseline(seed, "copd").spo2 for seed in range(40)}
    heart = {draw_baseline(seed, "heart_failure").spo2 for seed in range(40)}
    assert copd <= {92.0, 93.0} and heart <= {97.0, 98.0}
    weights = [draw_baseline(seed, "heart_failure").weight for seed in range(40)]
    assert len(set(weights)) > 30


def test_morning_blood_pressure_runs_higher_than_evening_and_temperature_peaks_in_the_afternoon() -> None:
    acts = [a for seed in range(12) for a in PatientModel.of(seed, "hypertension").acts(START, 14)]
    morning = [a.value(Kind.BP_SYSTOLIC) for a in acts if a.tag == "morning_bp"]
    evening = [a.value(Kind.BP_SYSTOLIC) for a in acts if a.tag == "evening_bp"]
    assert sum(morning) / len(morning) > sum(evening) / len(evening) + 2
    model = PatientModel.of(1, "general")
    zone = model.zone
    r = __import__("random").Random(0)
    temps = {
        hour: model.act(datetime(2026, 3, 3, hour, 0, tzinfo=zone), "thermometer", "t", r).value(Kind.BODY_TEMPERATURE)
        for hour in (4, 17)
    }
    assert temps[17] > temps[4]


def test_scenario_output_is_plain_data_that_survives_json() -> None:
    acts = SCENARIOS["sensor_glitches"].generate(2, START, 14)
    text = dumps_acts(acts).decode()
    assert '"NaN"' in text and "NaN," not in text
    assert all(math.isfinite(v) or math.isnan(v) for a in acts for _, v in a.values)
