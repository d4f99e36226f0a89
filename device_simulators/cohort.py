"""A ground-truth cohort for judging alarm quality: many patients over many weeks, with home-measurement noise and
artefacts, and deterioration episodes whose onset and admission times are known.

Built on the project's physiology (`physiology.PatientModel`: baselines, daily rhythm, device noise, time jitter);
this module adds what a real home programme sees on top:

- conditions: heart failure, COPD, diabetes, hypertension and multimorbid patients (the first condition picks the
  baseline ranges); everyone weighs, takes blood pressure/pulse and SpO2 every morning, diabetes adds glucose,
  COPD a temperature.
- usual values spread as in a clinic population (`_USUAL`: a treated heart-failure patient with a systolic near
  100, a COPD patient with an SpO2 of 89), not kept inside the protocol's limits as the physiology's stable patients.
- biology: day-to-day variability (weight SD 0.6 kg from food and fluid; pulse, SpO2, blood pressure), slow drift
  of weight and blood pressure over the weeks. These spreads are a modelling choice, not a citation: with them
  today's rules raise about 1.5 alarms per patient-week (the issue's outside cohort: 1.6) and the rule of thumb
  about 0.15 (outside cohort: 0.27).
- artefacts: a scale read in clothes (+0.5–1.5 kg), a pulse taken after the stairs (+15–35/min), SpO2 dips from cold
  fingers or motion (−3 to −8 points), each at a per-patient rate.
- adherence: each patient measures on a day with their own probability (0.6–0.98; a missed day misses every
  session), skips a single session now and then (5 %), and may have a holiday gap of several days.
- episodes (ground truth), each ending in an admission, then some days in hospital without readings:
  heart-failure decompensation — weight rises over 5–14 days, accelerating towards admission, with pulse up and SpO2
  slightly down. Chaudhry et al., Circulation 2007;116:1549 ("Patterns of weight change preceding hospitalization
  for heart failure"): weight rises gradually from about 30 days before admission and fastest in the last week;
  gains of 2–5 lb (0.9–2.3 kg) and > 5 lb (> 2.3 kg) in that week raised the odds of admission about 3- and 4.5-
  fold, so many admissions follow gains under 2 kg. Zhang et al., Eur J Heart Fail 2009;11:420 (TEN-HMS daily
  weights) found the simple weight-gain rules of thumb miss most heart-failure admissions. Here a quarter of the
  episodes gain under 2 kg and one in seven under 1 kg.
  COPD exacerbation — over 3–8 days SpO2 falls 2–5 points, pulse rises 5–15/min, breathing rate rises, and in about
  four of ten the temperature rises 0.5–1.5 °C. Hurst et al., BMC Pulm Med 2010;10:52 (domiciliary pulse oximetry
  at exacerbation of COPD) and Al Rajeh & Hurst, J Clin Med 2016;5:108: SpO2 falls and pulse rises in the days
  before an exacerbation is reported; fever is inconsistent.
  Rates: about 0.3 heart-failure admissions per patient per 20 weeks (the issue's outside cohort: 69 episodes
  among 240 patients over 21 weeks) and 0.45 COPD exacerbations (1–2 a year in moderate–severe COPD).

Deterministic: every draw comes from `physiology.rng(seed, purpose…)`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from device_simulators.physiology import (
    Baseline,
    MeasurementAct,
    PatientModel,
    Protocol,
    Session,
    draw_baseline,
    rng,
)
from vitals import Kind
from vitals.readings_csv import write_rows

Condition = Protocol
"""A condition uses the protocol vocabulary: heart_failure, copd, diabetes, hypertension."""

CONDITION_MIX: tuple[tuple[tuple[Condition, ...], float], ...] = (
    (("heart_failure",), 0.30),
    (("copd",), 0.20),
    (("diabetes",), 0.12),
    (("hypertension",), 0.13),
    (("heart_failure", "diabetes"), 0.10),
    (("heart_failure", "copd"), 0.07),
    (("copd", "diabetes"), 0.04),
    (("heart_failure", "diabetes", "copd"), 0.04),
)
"""Share of patients per condition set; the first condition is the patient's protocol."""

HEART_FAILURE_ONLY: tuple[tuple[tuple[Condition, ...], float], ...] = ((("heart_failure",), 1.0),)
"""A heart-failure programme: every patient has heart failure alone."""

EPISODES_PER_20_WEEKS: dict[str, float] = {"heart_failure": 0.30, "copd": 0.45}
RUN_IN_DAYS = 21
"""No episode starts before the patient has three weeks of readings (a personal baseline exists)."""

_MORNING: tuple[Session, ...] = (
    Session("morning_weight", "weight_scale", 7, 0, 25),
    Session("morning_bp", "blood_pressure_monitor", 7, 15, 25),
    Session("morning_spo2", "pulse_oximeter", 7, 20, 25),
)
_GLUCOSE: tuple[Session, ...] = (
    Session("fasting_glucose", "glucose_meter", 7, 5, 30, glucose_slot="fasting"),
    Session("dinner_glucose", "glucose_meter", 19, 0, 40, glucose_slot="after_meal"),
)
_TEMPERATURE = (Session("morning_temperature", "thermometer", 7, 25, 25),)


@dataclass(frozen=True, slots=True)
class Episode:
    """A deterioration with its ground truth: it began at `onset` and the patient was admitted at `admission`."""

    patient_id: str
    condition: str
    onset: datetime
    admission: datetime
    discharge: datetime
    weight_gain_kg: float = 0.0


@dataclass(frozen=True, slots=True)
class CohortPatient:
    patient_id: str
    seed: int
    conditions: tuple[Condition, ...]
    adherence: float
    """Probability of measuring at all on a given day."""

    @property
    def protocol(self) -> Condition:
        return self.conditions[0]


@dataclass(slots=True)
class Cohort:
    start: datetime
    days: int
    patients: list[CohortPatient]
    episodes: list[Episode]
    readings: list[tuple[str, Kind, float, datetime]] = field(repr=False)

    @property
    def patient_weeks(self) -> float:
        return len(self.patients) * self.days / 7

    def write_csv(self, path: Path) -> int:
        """The readings in `varde rules replay`'s CSV; returns the number of rows."""
        with path.open("w", encoding="utf-8", newline="") as out:
            return write_rows(out, self.readings)


def _conditions(r: random.Random, mix: tuple[tuple[tuple[Condition, ...], float], ...]) -> tuple[Condition, ...]:
    x, acc = r.random(), 0.0
    for conditions, share in mix:
        acc += share
        if x < acc:
            return conditions
    return mix[-1][0]


def _episodes(p: CohortPatient, start: datetime, days: int) -> list[Episode]:
    r = rng(p.seed, "cohort-episodes")
    out: list[Episode] = []
    busy_until = start + timedelta(days=RUN_IN_DAYS)
    end = start + timedelta(days=days)
    for condition in p.conditions:
        rate = EPISODES_PER_20_WEEKS.get(condition, 0.0) * days / 140
        count = _poisson(r, rate)
        for _ in range(count):
            if condition == "heart_failure":
                length = r.uniform(5, 14)
                gain = _hf_gain(r)
            else:
                length, gain = r.uniform(3, 8), 0.0
            earliest = busy_until
            latest = end - timedelta(days=length + 1)
            if latest <= earliest:
                break
            onset = earliest + (latest - earliest) * r.random()
            onset = onset.replace(microsecond=0)
            admission = onset + timedelta(days=length)
            discharge = admission + timedelta(days=r.uniform(4, 10))
            out.append(Episode(p.patient_id, condition, onset, admission, discharge, round(gain, 2)))
            busy_until = discharge + timedelta(days=14)
    return sorted(out, key=lambda e: e.onset)


def _hf_gain(r: random.Random) -> float:
    x = r.random()
    if x < 0.14:
        return r.uniform(0.0, 1.0)
    if x < 0.25:
        return r.uniform(1.0, 2.0)
    return r.uniform(2.0, 4.5)


def _poisson(r: random.Random, lam: float) -> int:
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= r.random()
        if p <= limit:
            return k
        k += 1


def _progress(episode: Episode, at: datetime) -> float:
    """0 before onset, rising to 1 at admission, and 0 again from admission on: the hospital treats the
    decompensation, so the patient comes home at their usual values (a heart-failure patient a little lighter,
    see `_patient_readings`), not with the episode's shift for the rest of the follow-up."""
    if at >= episode.admission:
        return 0.0
    span = (episode.admission - episode.onset).total_seconds()
    return min(1.0, max(0.0, (at - episode.onset).total_seconds() / span))


def _episode_shift(episode: Episode, at: datetime) -> dict[Kind, float]:
    x = _progress(episode, at)
    if x <= 0:
        return {}
    if episode.condition == "heart_failure":
        s = rng(0, "hf-shape", episode.patient_id, episode.onset.isoformat())
        return {
            Kind.BODY_WEIGHT: episode.weight_gain_kg * x**2,  # fastest in the last days (Chaudhry 2007)
            Kind.PULSE_RATE: s.uniform(4, 12) * x,
            Kind.SPO2: -s.uniform(1, 3) * x,
            Kind.RESP_RATE: s.uniform(1, 4) * x,
            Kind.BP_SYSTOLIC: -s.uniform(0, 8) * x,
        }
    s = rng(0, "copd-shape", episode.patient_id, episode.onset.isoformat())
    fever = s.uniform(0.5, 1.5) if s.random() < 0.4 else 0.0
    return {
        Kind.SPO2: -s.uniform(2, 5) * x,
        Kind.PULSE_RATE: s.uniform(5, 15) * x,
        Kind.RESP_RATE: s.uniform(2, 6) * x,
        Kind.BODY_TEMPERATURE: fever * x,
    }


def _schedule(conditions: tuple[Condition, ...]) -> tuple[Session, ...]:
    extra = (_GLUCOSE if "diabetes" in conditions else ()) + (_TEMPERATURE if "copd" in conditions else ())
    return _MORNING + extra


def _day_variation(p: CohortPatient, day: date, days_in: int) -> dict[Kind, float]:
    """Biology between days (food, fluid, activity) and slow drift over the weeks."""
    r = rng(p.seed, "cohort-day", day.isoformat())
    drift = rng(p.seed, "cohort-drift")
    weight_drift = drift.uniform(-1.5, 1.5) * days_in / 140
    bp_drift = drift.uniform(-6, 6) * days_in / 140
    return {
        Kind.BODY_WEIGHT: weight_drift + r.gauss(0, 0.6),
        Kind.PULSE_RATE: r.gauss(0, 4),
        Kind.SPO2: r.gauss(0, 0.7),
        Kind.BP_SYSTOLIC: bp_drift + r.gauss(0, 7),
        Kind.BP_DIASTOLIC: bp_drift / 2 + r.gauss(0, 4),
        Kind.BODY_TEMPERATURE: r.gauss(0, 0.15),
        Kind.RESP_RATE: r.gauss(0, 0.8),
        Kind.GLUCOSE: r.gauss(0, 0.08),
    }


@dataclass(frozen=True, slots=True)
class _Artefacts:
    clothes: float
    stairs: float
    cold_fingers: float
    holiday: tuple[date, date] | None


def _artefacts(p: CohortPatient, first: date, days: int) -> _Artefacts:
    r = rng(p.seed, "cohort-artefacts")
    holiday = None
    if r.random() < 0.35:
        begin = first + timedelta(days=r.randint(0, max(0, days - 12)))
        holiday = (begin, begin + timedelta(days=r.randint(3, 10)))
    return _Artefacts(r.uniform(0.03, 0.12), r.uniform(0.03, 0.08), r.uniform(0.02, 0.06), holiday)


def _round(kind: Kind, value: float) -> float:
    return round(value, 1) if kind in (Kind.BODY_WEIGHT, Kind.BODY_TEMPERATURE, Kind.GLUCOSE) else float(round(value))


_LIMITS: dict[Kind, tuple[float, float]] = {
    Kind.SPO2: (70, 100),
    Kind.PULSE_RATE: (30, 200),
    Kind.BODY_WEIGHT: (30, 250),
}


def _with_artefacts(act: MeasurementAct, a: _Artefacts, r: random.Random) -> Iterator[tuple[Kind, float]]:
    clothes = r.random() < a.clothes
    stairs = r.random() < a.stairs
    cold = r.random() < a.cold_fingers
    for kind, value in act.values:
        v = value
        if kind == Kind.BODY_WEIGHT and clothes:
            v += r.uniform(0.5, 1.5)
        elif kind == Kind.PULSE_RATE and stairs:
            v += r.uniform(15, 35)
        elif kind == Kind.SPO2 and cold:
            v -= r.uniform(3, 8)
        low, high = _LIMITS.get(kind, (-math.inf, math.inf))
        yield kind, _round(kind, min(high, max(low, v)))


_USUAL: dict[str, dict[str, tuple[float, float, float, float]]] = {
    # (mean, SD, low, high) of the patient's usual value.
    "heart_failure": {"systolic": (120, 15, 90, 165), "pulse": (70, 9, 50, 100), "spo2": (96, 1.3, 92, 99)},
    "copd": {"systolic": (132, 15, 100, 170), "pulse": (82, 9, 60, 105), "spo2": (92, 2.0, 87, 97)},
    "diabetes": {"systolic": (136, 14, 105, 175), "pulse": (74, 9, 55, 100), "spo2": (97, 1.0, 94, 99)},
    "hypertension": {"systolic": (144, 12, 115, 175), "pulse": (72, 9, 55, 100), "spo2": (97, 1.0, 94, 99)},
}


def _usual(p: CohortPatient) -> Baseline:
    """The patient's usual values, spread as in a clinic population rather than kept inside the protocol's limits
    (the physiology's stable patients are): a heart-failure patient on full treatment often runs a systolic near
    100, a COPD patient an SpO2 of 89 — their normal, and what fixed limits misjudge."""
    baseline = draw_baseline(p.seed, p.protocol)
    r = rng(p.seed, "cohort-usual")

    def draw(name: str) -> float:
        mean, sd, low, high = _USUAL[p.protocol][name]
        return float(round(min(high, max(low, r.gauss(mean, sd)))))

    systolic = draw("systolic")
    return replace(
        baseline,
        systolic=systolic,
        diastolic=float(round(systolic * 0.58 + r.gauss(0, 4))),
        pulse=draw("pulse"),
        spo2=draw("spo2"),
        resp_rate=float(round(r.uniform(15, 19) if "copd" in p.conditions else r.uniform(12, 17))),
    )


def _patient_readings(
    p: CohortPatient, start: datetime, days: int, episodes: list[Episode]
) -> list[tuple[str, Kind, float, datetime]]:
    baseline = _usual(p)
    base = PatientModel(p.seed, baseline, schedule=_schedule(p.conditions))
    first = base.local_dates(start, 1)[0]
    artefacts = _artefacts(p, first, days)
    out: list[tuple[str, Kind, float, datetime]] = []
    for i in range(days):
        day = first + timedelta(days=i)
        if artefacts.holiday and artefacts.holiday[0] <= day < artefacts.holiday[1]:
            continue
        noon = datetime.combine(day, time(12), base.zone)
        if any(e.admission <= noon < e.discharge for e in episodes):
            continue  # in hospital
        variation = _day_variation(p, day, i)
        after = [e for e in episodes if e.discharge <= noon and e.condition == "heart_failure"]
        if after:
            variation[Kind.BODY_WEIGHT] -= 0.8 * len(after)  # discharged at a lower (dry) weight
        r = rng(p.seed, "cohort-acts", day.isoformat())

        def shift(_day: date, at: datetime = noon, variation: dict[Kind, float] = variation) -> dict[Kind, float]:
            total = dict(variation)
            for e in episodes:
                for kind, delta in _episode_shift(e, at).items():
                    total[kind] = total.get(kind, 0.0) + delta
            return total

        if r.random() > p.adherence:
            continue  # a missed day
        model = PatientModel(p.seed, baseline, shift, base.schedule)
        for act in model.day(day):
            if r.random() < 0.05:
                continue  # one session skipped
            out.extend((p.patient_id, kind, value, act.at) for kind, value in _with_artefacts(act, artefacts, r))
    return out


def build_cohort(
    seed: int = 2026,
    patients: int = 200,
    weeks: int = 20,
    start: datetime | None = None,
    mix: tuple[tuple[tuple[Condition, ...], float], ...] = CONDITION_MIX,
) -> Cohort:
    """The cohort: `patients` patients followed for `weeks` weeks from `start` (default 2026-01-05 00:00 UTC), their
    condition sets drawn from `mix` (`HEART_FAILURE_ONLY` for a heart-failure programme's cohort)."""
    start = start or datetime(2026, 1, 5, tzinfo=UTC)
    days = weeks * 7
    r = rng(seed, "cohort")
    members = [
        CohortPatient(f"c{seed}-{i:05d}", seed * 100_003 + i, _conditions(r, mix), round(r.uniform(0.6, 0.98), 3))
        for i in range(patients)
    ]
    episodes: list[Episode] = []
    readings: list[tuple[str, Kind, float, datetime]] = []
    for p in members:
        mine = _episodes(p, start, days)
        episodes.extend(mine)
        readings.extend(_patient_readings(p, start, days, mine))
    readings.sort(key=lambda row: row[3])
    return Cohort(start, days, members, episodes, readings)


__all__ = ["CONDITION_MIX", "HEART_FAILURE_ONLY", "Cohort", "CohortPatient", "Episode", "build_cohort"]
