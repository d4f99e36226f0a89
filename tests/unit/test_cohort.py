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
