"""The ground-truth cohort: deterministic from its seed, every condition's devices, episodes after the run-in and
no readings while the patient is in hospital."""

from __future__ import annotations

from datetime import timedelta

from device_simulators.cohort import RUN_IN_DAYS, build_cohort
from vitals import Kind


def test_the_cohort_is_deterministic_and_keeps_its_ground_truth_apart_from_the_readings() -> None:
    cohort = build_cohort(seed=11, patients=30, weeks=10)
    again = build_cohort(seed=11, patients=30, weeks=10)
    assert cohort.readings == again.readings and cohort.episodes == again.episodes
    assert cohort.readings != build_cohort(seed=12, patients=30, weeks=10).readings
    assert cohort.episodes, "30 patients over 10 weeks had no episode"
    kinds = {kind for _, kind, _, _ in cohort.readings}
    assert {Kind.BODY_WEIGHT, Kind.PULSE_RATE, Kind.SPO2, Kind.BP_SYSTOLIC} <= kinds
    diabetic = {p.patient_id for p in cohort.patients if "diabetes" in p.conditions}
    assert {pid for pid, kind, _, _ in cohort.readings if kind == Kind.GLUCOSE} == diabetic
    for e in cohort.episodes:
        assert e.onset >= cohort.start + timedelta(days=RUN_IN_DAYS) and e.onset < e.admission < e.discharge
        inside = [at for pid, _, _, at in cohort.readings if pid == e.patient_id and e.admission <= at < e.discharge]
        assert len(inside) <= 20, "readings while in hospital"  # only the admission day's own morning readings
    per_day = len(cohort.readings) / (30 * 70)
    assert 5 < per_day < 14  # missed sessions and holidays thin out the daily ~9–12 readings


def test_an_episode_shifts_the_readings_only_until_admission() -> None:
    from datetime import timedelta

    from device_simulators.cohort import _episode_shift

    cohort = build_cohort(seed=3, patients=40, weeks=12)
    episode = cohort.episodes[0]
    assert _episode_shift(episode, episode.onset + (episode.admission - episode.onset) / 2)
    assert _episode_shift(episode, episode.admission - timedelta(hours=1))
    assert _episode_shift(episode, episode.discharge + timedelta(days=1)) == {}
    assert _episode_shift(episode, episode.admission) == {}


def test_a_heart_failure_only_cohort_has_only_heart_failure_patients() -> None:
    from device_simulators.cohort import HEART_FAILURE_ONLY

    cohort = build_cohort(seed=3, patients=20, weeks=4, mix=HEART_FAILURE_ONLY)
    assert {p.conditions for p in cohort.patients} == {("heart_failure",)}
