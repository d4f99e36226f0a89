"""The scenario library: what happens to a simulated patient over days, as ordered measurement acts.

Every scenario is a pure function `(seed, start, days) -> list[MeasurementAct]` (keyword options tune when the
event happens). Day 0 is `start`'s local date. Alarm scenarios place their event late by default
(`onset_day = days - 4`) so the patient has a personal baseline first. `SCENARIOS` names each one with the rules a
clinician expects it to raise (`expected_rules`) and the rules it may plausibly raise as well (`allowed_rules`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial

from device_simulators.physiology import (
    DEVICE_KINDS,
    DeviceType,
    MeasurementAct,
    PatientModel,
    Protocol,
    Shift,
    rng,
    sort_acts,
    with_values,
)
from vitals import Kind
from vitals.vocabulary import PROTOCOLS

Scenario = Callable[[int, datetime, int], list[MeasurementAct]]
ShiftFnT = Callable[[date], Shift]

CLOCK_RESET_TO = datetime(2000, 1, 1)
"""Where a device clock restarts after a battery change without the gateway setting it."""


def default_onset(days: int) -> int:
    return max(1, days - 4)


def _onset_date(model: PatientModel, start: datetime, days: int, onset_day: int | None) -> date:
    return model.local_dates(start, 1)[0] + timedelta(days=default_onset(days) if onset_day is None else onset_day)


def _stepped(
    onset: date, steps: Mapping[Kind, tuple[float, ...]], after: Mapping[Kind, float] | None = None
) -> ShiftFnT:
    """A shift that takes `steps[kind][i]` on the i-th day from `onset` and keeps the last one (plus `after` per
    further day) afterwards; nothing before `onset`."""

    def shift(day: date) -> Shift:
        i = (day - onset).days
        if i < 0:
            return {}
        out: dict[Kind, float] = {}
        for kind, values in steps.items():
            extra = (after or {}).get(kind, 0.0) * max(0, i - len(values) + 1)
            out[kind] = values[min(i, len(values) - 1)] + extra
        return out

    return shift


def _model(seed: int, protocol: Protocol, shift: ShiftFnT | None = None) -> PatientModel:
    model = PatientModel.of(seed, protocol)
    return model if shift is None else PatientModel(model.seed, model.baseline, shift, model.schedule)


# --- the scenarios ----------------------------------------------------------------------------------------------


def stable(seed: int, start: datetime, days: int, *, protocol: Protocol = "general") -> list[MeasurementAct]:
    """A patient doing well: every reading inside the plan, every scheduled measurement taken."""
    return _model(seed, protocol).acts(start, days)


def heart_failure_decompensation(
    seed: int, start: datetime, days: int, *, onset_day: int | None = None
) -> list[MeasurementAct]:
    """Fluid retention: morning weight +2.8–3.0 kg over three days (most of it on days 2 and 3), pulse rising,
    SpO2 falling. The ESC rule of >2 kg in 3 days is met by day 3's weighing; the rules alarm when the next one
    confirms it (the lower of two weighings in a row), on day 4's morning weighing."""
    return _decompensating(seed, start, days, onset_day).acts(start, days)


def _decompensating(seed: int, start: datetime, days: int, onset_day: int | None) -> PatientModel:
    base = _model(seed, "heart_failure")
    onset = _onset_date(base, start, days, onset_day)
    r = rng(seed, "heart_failure_decompensation")
    gains = (r.uniform(0.3, 0.4), r.uniform(1.5, 1.8), r.uniform(2.8, 3.0))
    steps = {
        Kind.BODY_WEIGHT: gains,
        Kind.PULSE_RATE: (3.0, 7.0, 12.0),
        Kind.SPO2: (-1.0, -2.0, -3.0),
        Kind.RESP_RATE: (1.0, 2.0, 3.0),
        Kind.BP_SYSTOLIC: (-2.0, -4.0, -6.0),
    }
    return _model(seed, "heart_failure", _stepped(onset, steps, after={Kind.BODY_WEIGHT: 0.1}))


def copd_exacerbation(seed: int, start: datetime, days: int, *, onset_day: int | None = None) -> list[MeasurementAct]:
    """An exacerbation over three days: SpO2 from the usual 92–93 % down to 86–87 %, pulse +18, breathing
    rate +7 and a low-grade fever."""
    return _exacerbating(seed, start, days, onset_day).acts(start, days)


def _exacerbating(seed: int, start: datetime, days: int, onset_day: int | None) -> PatientModel:
    base = _model(seed, "copd")
    onset = _onset_date(base, start, days, onset_day)
    target = rng(seed, "copd_exacerbation").choice((86.0, 87.0))
    fall = target - base.baseline.spo2
    steps = {
        Kind.SPO2: (round(fall * 0.3), round(fall * 0.65), fall),
        Kind.PULSE_RATE: (6.0, 12.0, 18.0),
        Kind.RESP_RATE: (2.0, 4.0, 7.0),
        Kind.BODY_TEMPERATURE: (0.4, 0.8, 1.0),
    }
    return _model(seed, "copd", _stepped(onset, steps))


def _extra_glucose(model: PatientModel, at: datetime, value: float, tag: str, slot: int) -> MeasurementAct:
    day = at.astimezone(model.zone).date()
    sequence = (day.toordinal() - date(2020, 1, 1).toordinal()) * 32 + 28 + slot
    act = model.act(at, "glucose_meter", tag, rng(model.seed, "extra", at.isoformat()), sequence=sequence)
    return with_values(act, values=((Kind.GLUCOSE, value),))


def hypoglycaemia(seed: int, start: datetime, days: int, *, onset_day: int | None = None) -> list[MeasurementAct]:
    """Low blood sugar on three days from the onset: a low before lunch or at bedtime (2.4–3.6 mmol/L) with a
    recheck fifteen minutes after eating sugar, and a symptomatic night-time low in between."""
    model = _model(seed, "diabetes")
    onset = _onset_date(model, start, days, onset_day)
    r = rng(seed, "hypoglycaemia")
    episodes = {
        (onset, "lunch_glucose"),
        (onset + timedelta(days=1), "bedtime_glucose"),
        (onset + timedelta(days=2), "lunch_glucose"),
    }
    acts: list[MeasurementAct] = []
    for act in model.acts(start, days):
        day = act.at.astimezone(model.zone).date()
        if (day, act.tag) in episodes:
            low = round(r.uniform(2.4, 3.6), 1)
            acts.append(with_values(act, values=((Kind.GLUCOSE, low),)))
            acts.append(
                _extra_glucose(model, act.at + timedelta(minutes=15), round(r.uniform(4.6, 5.8), 1), "recheck", 0)
            )
        else:
            acts.append(act)
    night = datetime.combine(onset + timedelta(days=1), time(3, 10), model.zone)
    if onset + timedelta(days=1) in set(model.local_dates(start, days)):
        acts.append(_extra_glucose(model, night, round(r.uniform(2.6, 3.2), 1), "night_symptoms", 1))
        acts.append(_extra_glucose(model, night + timedelta(minutes=15), 4.9, "recheck", 2))
    return sort_acts(acts)


def hyperglycaemia(seed: int, start: datetime, days: int, *, onset_day: int | None = None) -> list[MeasurementAct]:
    """Two sick days with high blood sugar (×2.3–2.8 of usual: up to 18–25 mmol/L after meals), then recovery."""
    return _sick_days(seed, start, days, onset_day).acts(start, days)


def _sick_days(seed: int, start: datetime, days: int, onset_day: int | None) -> PatientModel:
    base = _model(seed, "diabetes")
    onset = _onset_date(base, start, days, onset_day)
    r = rng(seed, "hyperglycaemia")
    factors = (r.uniform(1.3, 1.8), r.uniform(1.3, 1.8), 0.2)

    def shift(day: date) -> Shift:
        i = (day - onset).days
        return {Kind.GLUCOSE: factors[i]} if 0 <= i < len(factors) else {}

    return _model(seed, "diabetes", shift)


def hypertensive_crisis(seed: int, start: datetime, days: int, *, onset_day: int | None = None) -> list[MeasurementAct]:
    """A day of crisis readings (about 190–210 / 115–125 mmHg, ESH grade 3), then still high the day after."""
    return _in_crisis(seed, start, days, onset_day).acts(start, days)


def _in_crisis(seed: int, start: datetime, days: int, onset_day: int | None) -> PatientModel:
    base = _model(seed, "hypertension")
    onset = _onset_date(base, start, days, onset_day)

    def shift(day: date) -> Shift:
        i = (day - onset).days
        if i == 0:
            return {Kind.BP_SYSTOLIC: 60.0, Kind.BP_DIASTOLIC: 38.0, Kind.PULSE_RATE: 10.0}
        if i == 1:
            return {Kind.BP_SYSTOLIC: 22.0, Kind.BP_DIASTOLIC: 10.0, Kind.PULSE_RATE: 4.0}
        return {}

    return _model(seed, "hypertension", shift)


_GLITCHES: dict[DeviceType, tuple[tuple[Kind, float], ...]] = {
    # 0x7F is a common "no data" byte; 511 a 9-bit pulse field overflowing; no breathing-rate signal read as 0.
    "pulse_oximeter": ((Kind.SPO2, 127.0), (Kind.PULSE_RATE, 511.0), (Kind.RESP_RATE, 0.0)),
    # 0xFFFF × 0.01 kg: a scale's "measurement unsuccessful" value decoded as a weight.
    "weight_scale": ((Kind.BODY_WEIGHT, 655.35),),
    # A cuff that lost the pulse sends the SFLOAT NaN special in the pulse field.
    "blood_pressure_monitor": (
        (Kind.BP_SYSTOLIC, 138.0),
        (Kind.BP_DIASTOLIC, 84.0),
        (Kind.BP_MEAN, 102.0),
        (Kind.PULSE_RATE, float("nan")),
    ),
}


def sensor_glitches(seed: int, start: datetime, days: int, *, count: int = 6) -> list[MeasurementAct]:
    """A heart-failure patient doing well whose devices now and then send values no body can have (SpO2 127 %,
    weight 655 kg, pulse NaN). The edge refuses them; a faulty gateway that forwards them ends in the dead-letter
    table. Each glitch follows a normal measurement by a minute, as when the patient measures again."""
    model = _model(seed, "heart_failure")
    normal = model.acts(start, days)
    r = rng(seed, "sensor_glitches")
    picked = sorted(r.sample(range(len(normal)), min(count, len(normal))))
    devices = list(_GLITCHES)
    glitches = []
    for n, index in enumerate(picked):
        device = devices[n % len(devices)]
        assert {k for k, _ in _GLITCHES[device]} <= set(DEVICE_KINDS[device])
        glitch = model.act(normal[index].at + timedelta(minutes=1), device, "glitch", rng(seed, "glitch", n))
        glitches.append(with_values(glitch, values=_GLITCHES[device]))
    return sort_acts([*normal, *glitches])


def missed_measurements(
    seed: int,
    start: datetime,
    days: int,
    *,
    gap_days: int = 2,
    skip_share: float = 0.15,
    onset_day: int | None = None,
) -> list[MeasurementAct]:
    """A heart-failure patient who skips sessions now and then and measures nothing for `gap_days` in a row
    (a stay with family, the device left at home): from `onset_day` when given, else from the middle of the days.
    Whether a session is skipped depends on the session alone, so the gap's place leaves the other days as they are."""
    model = _model(seed, "heart_failure")
    dates = model.local_dates(start, days)
    if onset_day is not None:
        gap_start: date | None = dates[0] + timedelta(days=onset_day)
    else:
        gap_start = dates[len(dates) // 2] if len(dates) > gap_days + 2 else None
    gap = {gap_start + timedelta(days=i) for i in range(gap_days)} if gap_start else set()
    kept = []
    for act in model.acts(start, days):
        day = act.at.astimezone(model.zone).date()
        skipped = day != dates[0] and rng(seed, "missed_measurements", act.at.isoformat()).random() < skip_share
        if day in gap or skipped:
            continue
        kept.append(act)
    return kept


def gateway_offline(
    seed: int, start: datetime, days: int, *, onset_day: int | None = None, hours: float = 16.0
) -> list[MeasurementAct]:
    """A heart-failure patient whose home internet drops at 17:00 for `hours`: measurements go on, the gateway
    keeps them and uploads the backlog when it is back (`upload_after`)."""
    model = _model(seed, "heart_failure")
    day = _onset_date(model, start, days, onset_day)
    down = datetime.combine(day, time(17, 0), model.zone)
    up = down + timedelta(hours=hours)
    out = []
    for act in model.acts(start, days):
        if down <= act.at < up:
            act = with_values(act, upload_after=up + (act.upload_after - act.at))
        out.append(act)
    return out


def device_clock_wrong(seed: int, start: datetime, days: int, *, onset_day: int | None = None) -> list[MeasurementAct]:
    """A patient whose blood-pressure monitor lost its clock with a battery change at noon on the onset day: from
    then on it stamps readings as if it were January 2000. The edge corrects the time from the device's current
    time; a gateway that trusted the device clock would send readings 26 years old."""
    model = _model(seed, "general")
    day = _onset_date(model, start, days, onset_day)
    reset = datetime.combine(day, time(12, 0), model.zone)
    out = []
    for act in model.acts(start, days):
        if act.device_type == "blood_pressure_monitor" and act.at >= reset:
            elapsed = act.at - reset
            act = with_values(act, device_time=CLOCK_RESET_TO + elapsed)
        out.append(act)
    return out


# --- the registry -----------------------------------------------------------------------------------------------

_HF_SIDE_EFFECTS = frozenset(
    {
        "threshold.spo2.low",
        "threshold.resp_rate.high",
        "trend.pulse_baseline",
        "threshold.pulse_rate.high",
        "news2",
        "trend.weight_gain_7d",
    }
)


_MISSED_KINDS = frozenset({"missed.body_weight", "missed.bp_systolic", "missed.spo2"})

ModelBuilder = Callable[[int, datetime, int, "int | None"], PatientModel]


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    name: str
    protocol: Protocol
    summary: str
    generate: Scenario
    expected_rules: frozenset[str] = frozenset()
    """Rules a clinician expects this scenario to raise; the stable scenario expects none."""
    allowed_rules: frozenset[str] = frozenset()
    """Further rules the scenario may raise without being wrong (e.g. a falling SpO2 during decompensation)."""
    has_onset: bool = False
    """The scenario's event day can be chosen (`onset_day`)."""
    condition: ModelBuilder | None = None
    """The patient's condition as a model (with the scenario's per-day shift), for extra measurements."""
    expected_any: frozenset[str] = frozenset()
    """Rules of which a clinician expects at least one: an exacerbation may first show in the breathing rate or in
    the oxygen saturation, and either is a right alarm."""

    def missing(self, raised: set[str] | frozenset[str]) -> set[str]:
        """What a clinician expected and the raised rules lack (empty: the scenario was recognised)."""
        lacking = set(self.expected_rules - raised)
        if self.expected_any and not self.expected_any & raised:
            lacking.add("one of " + ", ".join(sorted(self.expected_any)))
        return lacking

    def acts(self, seed: int, start: datetime, days: int, onset_day: int | None = None) -> list[MeasurementAct]:
        """The scenario's acts, with its event on `onset_day` (default: `default_onset(days)`)."""
        if self.has_onset and onset_day is not None:
            return self.generate(seed, start, days, onset_day=onset_day)  # type: ignore[call-arg]
        return self.generate(seed, start, days)

    def model(self, seed: int, start: datetime, days: int, onset_day: int | None = None) -> PatientModel:
        """The patient as measured on any moment of the scenario (edits such as glitches are not in it)."""
        if self.condition is not None:
            return self.condition(seed, start, days, onset_day)
        return _model(seed, self.protocol)


def _spec(
    name: str,
    protocol: Protocol,
    generate: Scenario,
    expected: set[str],
    allowed: set[str] | frozenset[str] = frozenset(),
    *,
    condition: ModelBuilder | None = None,
    expected_any: set[str] | frozenset[str] = frozenset(),
) -> ScenarioSpec:
    summary = (generate.func.__doc__ if isinstance(generate, partial) else generate.__doc__) or ""
    has_onset = (
        "onset_day" in getattr(generate, "__kwdefaults__", None or {}) if not isinstance(generate, partial) else False
    )
    return ScenarioSpec(
        name,
        protocol,
        " ".join(summary.split()),
        generate,
        frozenset(expected),
        frozenset(expected) | frozenset(allowed) | frozenset(expected_any),
        has_onset,
        condition,
        frozenset(expected_any),
    )


SCENARIOS: dict[str, ScenarioSpec] = {
    spec.name: spec
    for spec in (
        *(_spec(f"stable_{p}", p, partial(stable, protocol=p), set()) for p in PROTOCOLS),
        _spec(
            "heart_failure_decompensation",
            "heart_failure",
            heart_failure_decompensation,
            {"trend.weight_gain"},
            _HF_SIDE_EFFECTS,
            condition=_decompensating,
        ),
        _spec(
            "copd_exacerbation",
            "copd",
            copd_exacerbation,
            set(),
            {"threshold.pulse_rate.high", "trend.pulse_baseline", "threshold.body_temperature.high"},
            condition=_exacerbating,
            # The saturation alarm needs two days below the limit; a fast exacerbation shows first in the breathing
            # rate, the fall from the patient's usual saturation or NEWS2 — each a right alarm.
            expected_any={"threshold.spo2.low", "threshold.resp_rate.high", "trend.spo2_baseline", "news2"},
        ),
        _spec("hypoglycaemia", "diabetes", hypoglycaemia, {"threshold.glucose.low"}),
        _spec("hyperglycaemia", "diabetes", hyperglycaemia, {"threshold.glucose.high"}, condition=_sick_days),
        _spec(
            "hypertensive_crisis",
            "hypertension",
            hypertensive_crisis,
            {"threshold.bp_systolic.high", "threshold.bp_diastolic.high"},
            # A crisis day lifts the 7-day home mean over the ESH 135/85 as well.
            {"bp.home_average"},
            condition=_in_crisis,
        ),
        _spec("sensor_glitches", "heart_failure", sensor_glitches, set()),
        # With an active plan, the rules scheduler's `missed.<kind>` (not a reading's rule, so not replayed here).
        _spec("missed_measurements", "heart_failure", missed_measurements, set(), _MISSED_KINDS),
        _spec("gateway_offline", "heart_failure", gateway_offline, set(), _MISSED_KINDS),
        _spec("device_clock_wrong", "general", device_clock_wrong, set()),
    )
}


def scenario(name: str) -> ScenarioSpec:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; one of {', '.join(SCENARIOS)}") from None
