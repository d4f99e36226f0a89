"""Patient physiology: per-patient baselines, daily rhythm, measurement noise and the home measurement schedule.

Pure and deterministic: everything is drawn from `random.Random` streams seeded by hashing (seed, purpose, local
date), so the same seed gives byte-identical acts, and a given date's acts do not depend on how many days were
asked for. Scenarios (`scenarios.py`) bend these patients with per-day shifts and edits; the output is plain
`MeasurementAct`s — what one device measured at one moment — for a gateway or a virtual device to carry on.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from vitals import KINDS, Kind
from vitals.vocabulary import PROTOCOLS as PROTOCOLS
from vitals.vocabulary import Protocol as Protocol

DeviceType = Literal["blood_pressure_monitor", "pulse_oximeter", "weight_scale", "thermometer", "glucose_meter"]

GlucoseSlot = Literal["fasting", "before_meal", "after_meal", "bedtime", "night"]

Shift = Mapping[Kind, float]
"""Additive change of a kind's true value (e.g. +1.5 kg, −4 % SpO2); glucose shifts are multiplicative factors − 1."""
ShiftFn = Callable[[date], Shift]
"""The scenario's change on a local date (step per day: nobody measures at midnight)."""

DEFAULT_TIMEZONE = "Europe/Oslo"


@dataclass(frozen=True, slots=True)
class MeasurementAct:
    """One measurement act of one device: what it measured, when, and what its own clock said.

    `at` is the true moment (UTC, whole seconds). `device_time` is the device's naive wall-clock time for the same
    moment (patient's local time, plus whatever error the device clock has). `upload_after` is the earliest moment
    the gateway can forward it (later than `at` while the gateway is offline). `tag` says why the act exists
    (schedule slot, "recheck", "glitch", …) for people and tests; it never travels on the wire.
    """

    at: datetime
    device_type: DeviceType
    values: tuple[tuple[Kind, float], ...]
    device_time: datetime
    upload_after: datetime
    tag: str
    flags: tuple[str, ...] = ()
    sequence: int | None = None

    def value(self, kind: Kind) -> float:
        for k, v in self.values:
            if k == kind:
                return v
        raise KeyError(kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "device_type": self.device_type,
            "values": {str(k): _num(v) for k, v in self.values},
            "device_time": self.device_time.isoformat(),
            "upload_after": _iso(self.upload_after),
            "tag": self.tag,
            "flags": list(self.flags),
            "sequence": self.sequence,
        }


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _num(value: float) -> float | str:
    """Finite numbers as JSON numbers; NaN and infinities as the strings "NaN", "Infinity", "-Infinity"."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def dumps_acts(acts: Iterable[MeasurementAct]) -> bytes:
    """JSON Lines, keys sorted: the canonical serialisation (hash it to compare runs)."""
    return b"".join(json.dumps(a.to_dict(), sort_keys=True, separators=(",", ":")).encode() + b"\n" for a in acts)


# --- deterministic randomness -------------------------------------------------------------------------------------


def rng(seed: int, *purpose: object) -> random.Random:
    """An independent random stream for (seed, purpose…): stable across runs, platforms and Python versions."""
    digest = hashlib.sha256(repr((seed, *purpose)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def noise(r: random.Random, sd: float, clip: float) -> float:
    """Gaussian measurement noise cut at ±clip, so a stable patient stays inside the plan by construction."""
    return max(-clip, min(clip, r.gauss(0.0, sd)))


def _uniform(r: random.Random, low: float, high: float, decimals: int) -> float:
    return round(r.uniform(low, high), decimals)


# --- baselines ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Baseline:
    """A patient's usual values: what the stable scenario measures around."""

    protocol: Protocol
    timezone: str
    systolic: float
    diastolic: float
    pulse: float
    spo2: float
    weight: float
    temperature: float
    glucose_fasting: float
    resp_rate: float


# Ranges are chosen so that baseline + daily rhythm + clipped noise stays inside every limit of the protocol's
# plan (rules_engine.profiles) and scores 0 on NEWS2: the stable scenario must never raise an alarm.
_BASELINE_RANGES: dict[Protocol, dict[str, tuple[float, float]]] = {
    "general": {
        "systolic": (118, 134),
        "diastolic": (70, 82),
        "pulse": (60, 76),
        "spo2": (97, 98),
        "weight": (60, 95),
        "temperature": (36.5, 36.9),
        "glucose_fasting": (4.8, 5.8),
        "resp_rate": (13, 16),
    },
    "heart_failure": {
        "systolic": (118, 132),
        "diastolic": (66, 78),
        "pulse": (62, 74),
        "spo2": (97, 98),
        "weight": (68, 105),
        "temperature": (36.4, 36.8),
        "glucose_fasting": (5.0, 6.2),
        "resp_rate": (14, 16),
    },
    "copd": {
        "systolic": (122, 136),
        "diastolic": (70, 82),
        "pulse": (74, 84),
        "spo2": (92, 93),
        "weight": (55, 85),
        "temperature": (36.5, 36.8),
        "glucose_fasting": (5.0, 6.0),
        "resp_rate": (15, 17),
    },
    "diabetes": {
        "systolic": (120, 134),
        "diastolic": (70, 82),
        "pulse": (64, 78),
        "spo2": (97, 98),
        "weight": (70, 110),
        "temperature": (36.5, 36.9),
        "glucose_fasting": (6.0, 7.5),
        "resp_rate": (13, 16),
    },
    # Treated and controlled: home means below the ESH 2023 threshold of 135/85 mmHg (a stable patient raises no
    # `bp.home_average`), morning readings a little higher.
    "hypertension": {
        "systolic": (120, 130),
        "diastolic": (74, 81),
        "pulse": (64, 78),
        "spo2": (97, 98),
        "weight": (70, 105),
        "temperature": (36.5, 36.9),
        "glucose_fasting": (5.0, 6.0),
        "resp_rate": (13, 16),
    },
}


def draw_baseline(seed: int, protocol: Protocol, timezone: str = DEFAULT_TIMEZONE) -> Baseline:
    """The patient's usual values, drawn from the seed within the protocol's ranges."""
    ranges = _BASELINE_RANGES[protocol]
    r = rng(seed, "baseline", protocol)
    whole = {"systolic", "diastolic", "pulse", "spo2", "resp_rate"}
    values = {name: _uniform(r, low, high, 0 if name in whole else 1) for name, (low, high) in ranges.items()}
    return Baseline(protocol=protocol, timezone=timezone, **values)


# --- the measurement schedule ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    """One scheduled measurement: at local `hour:minute` ± `jitter_min`, on `weekdays` (Monday = 0)."""

    tag: str
    device_type: DeviceType
    hour: int
    minute: int
    jitter_min: float
    weekdays: frozenset[int] = frozenset(range(7))
    repeats: int = 1
    """Readings one minute apart (home blood pressure: two readings each session)."""
    glucose_slot: GlucoseSlot = "fasting"


_DAILY = frozenset(range(7))
_MONDAY = frozenset({0})

SCHEDULES: dict[Protocol, tuple[Session, ...]] = {
    "general": (
        Session("morning_bp", "blood_pressure_monitor", 8, 0, 30),
        Session("morning_spo2", "pulse_oximeter", 8, 10, 30),
        Session("morning_temperature", "thermometer", 8, 15, 30),
    ),
    # ESC 2021 self-care: weigh every morning after voiding, before breakfast; BP and pulse twice a day.
    "heart_failure": (
        Session("morning_weight", "weight_scale", 7, 0, 25),
        Session("morning_bp", "blood_pressure_monitor", 7, 15, 25),
        Session("morning_spo2", "pulse_oximeter", 7, 20, 25),
        Session("evening_bp", "blood_pressure_monitor", 19, 0, 40),
    ),
    "copd": (
        Session("morning_spo2", "pulse_oximeter", 8, 0, 30),
        Session("morning_temperature", "thermometer", 8, 10, 30),
        Session("evening_spo2", "pulse_oximeter", 18, 30, 40),
        Session("weekly_bp", "blood_pressure_monitor", 8, 20, 30, _MONDAY),
        Session("weekly_weight", "weight_scale", 7, 45, 30, _MONDAY),
    ),
    "diabetes": (
        Session("fasting_glucose", "glucose_meter", 7, 0, 30, glucose_slot="fasting"),
        Session("lunch_glucose", "glucose_meter", 11, 30, 40, glucose_slot="before_meal"),
        Session("dinner_glucose", "glucose_meter", 19, 0, 40, glucose_slot="after_meal"),
        Session("bedtime_glucose", "glucose_meter", 22, 30, 30, glucose_slot="bedtime"),
        Session("weekly_weight", "weight_scale", 7, 10, 30, _MONDAY),
        Session("weekly_bp", "blood_pressure_monitor", 7, 20, 30, _MONDAY),
    ),
    # ESH 2023 home BP monitoring: two readings one minute apart, morning and evening.
    "hypertension": (
        Session("morning_bp", "blood_pressure_monitor", 7, 0, 30, repeats=2),
        Session("evening_bp", "blood_pressure_monitor", 21, 0, 40, repeats=2),
        Session("weekly_weight", "weight_scale", 7, 10, 30, _MONDAY),
    ),
}

DEVICE_KINDS: dict[DeviceType, tuple[Kind, ...]] = {
    "blood_pressure_monitor": (Kind.BP_SYSTOLIC, Kind.BP_DIASTOLIC, Kind.BP_MEAN, Kind.PULSE_RATE),
    # Oximeters that also report a respiration rate from the pleth signal (RRp) carry resp_rate.
    "pulse_oximeter": (Kind.SPO2, Kind.PULSE_RATE, Kind.RESP_RATE),
    "weight_scale": (Kind.BODY_WEIGHT,),
    "thermometer": (Kind.BODY_TEMPERATURE,),
    "glucose_meter": (Kind.GLUCOSE,),
}


def devices_for(protocol: Protocol) -> tuple[DeviceType, ...]:
    """The devices a patient on this protocol has at home, in a fixed order."""
    seen = dict.fromkeys(s.device_type for s in SCHEDULES[protocol])
    return tuple(seen)


# --- the body ---------------------------------------------------------------------------------------------------


_GLUCOSE_SLOT_RISE: dict[GlucoseSlot, float] = {
    "fasting": 0.0,
    "before_meal": 0.4,
    "after_meal": 2.0,
    "bedtime": 1.0,
    "night": -0.3,
}


def _hours(at_local: datetime) -> float:
    return at_local.hour + at_local.minute / 60


def true_values(
    baseline: Baseline,
    device_type: DeviceType,
    at_local: datetime,
    shift: Shift,
    r: random.Random,
    glucose_slot: GlucoseSlot = "fasting",
) -> tuple[tuple[Kind, float], ...]:
    """What the device shows: baseline + daily rhythm + scenario shift + measurement noise, at device resolution."""
    h = _hours(at_local)
    morning = math.exp(-(((h - 8.0) / 2.5) ** 2))
    """The morning blood-pressure surge, strongest around 08:00."""
    circadian = math.cos(2 * math.pi * (h - 17.0) / 24)
    """Body temperature and pulse peak in the late afternoon."""

    def d(kind: Kind) -> float:
        return float(shift.get(kind, 0.0))

    if device_type == "blood_pressure_monitor":
        sys_ = baseline.systolic + 4 * morning + d(Kind.BP_SYSTOLIC) + noise(r, 4.0, 7.0)
        dia = baseline.diastolic + 2 * morning + d(Kind.BP_DIASTOLIC) + noise(r, 3.0, 5.0)
        pulse = baseline.pulse + 2 * circadian + d(Kind.PULSE_RATE) + noise(r, 3.0, 5.0)
        sys_r, dia_r = round(sys_), round(dia)
        return (
            (Kind.BP_SYSTOLIC, float(sys_r)),
            (Kind.BP_DIASTOLIC, float(dia_r)),
            (Kind.BP_MEAN, float(round(dia_r + (sys_r - dia_r) / 3))),
            (Kind.PULSE_RATE, float(round(pulse))),
        )
    if device_type == "pulse_oximeter":
        spo2 = min(100.0, baseline.spo2 + d(Kind.SPO2) + noise(r, 0.6, 1.0))
        pulse = baseline.pulse + 2 * circadian + d(Kind.PULSE_RATE) + noise(r, 3.0, 5.0)
        resp = baseline.resp_rate + d(Kind.RESP_RATE) + noise(r, 1.0, 2.0)
        return (
            (Kind.SPO2, float(round(spo2))),
            (Kind.PULSE_RATE, float(round(pulse))),
            (Kind.RESP_RATE, float(round(resp))),
        )
    if device_type == "weight_scale":
        weight = baseline.weight + d(Kind.BODY_WEIGHT) + noise(r, 0.08, 0.12)
        return ((Kind.BODY_WEIGHT, round(weight, 1)),)
    if device_type == "thermometer":
        temp = baseline.temperature + 0.25 * circadian + d(Kind.BODY_TEMPERATURE) + noise(r, 0.1, 0.2)
        return ((Kind.BODY_TEMPERATURE, round(temp, 1)),)
    factor = 1.0 + d(Kind.GLUCOSE)
    glucose = (baseline.glucose_fasting + _GLUCOSE_SLOT_RISE[glucose_slot]) * factor * (1 + noise(r, 0.06, 0.12))
    return ((Kind.GLUCOSE, round(glucose, 1)),)


# --- the generator --------------------------------------------------------------------------------------------


def _no_shift(_day: date) -> Shift:
    return {}


@dataclass(frozen=True, slots=True)
class PatientModel:
    """A patient on a protocol at home: baseline, schedule and (from a scenario) a per-day shift."""

    seed: int
    baseline: Baseline
    shift: ShiftFn = _no_shift
    schedule: tuple[Session, ...] = field(default=())

    @classmethod
    def of(cls, seed: int, protocol: Protocol, timezone: str = DEFAULT_TIMEZONE) -> PatientModel:
        return cls(seed, draw_baseline(seed, protocol, timezone), _no_shift, SCHEDULES[protocol])

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.baseline.timezone)

    def local_dates(self, start: datetime, days: int) -> list[date]:
        first = start.astimezone(self.zone).date()
        return [first + timedelta(days=i) for i in range(days)]

    def act(
        self,
        at: datetime,
        device_type: DeviceType,
        tag: str,
        r: random.Random,
        *,
        glucose_slot: GlucoseSlot = "fasting",
        sequence: int | None = None,
    ) -> MeasurementAct:
        """One measurement at `at` (aware), with the scenario's shift of that local date."""
        at = at.astimezone(UTC).replace(microsecond=0)
        local = at.astimezone(self.zone)
        values = true_values(self.baseline, device_type, local, self.shift(local.date()), r, glucose_slot)
        transfer = timedelta(seconds=r.randint(3, 40))
        """The device is read when it next advertises, a few seconds after the measurement."""
        return MeasurementAct(
            at=at,
            device_type=device_type,
            values=values,
            device_time=local.replace(tzinfo=None),
            upload_after=at + transfer,
            tag=tag,
            sequence=sequence,
        )

    def day(self, day: date) -> list[MeasurementAct]:
        """The scheduled acts of one local date, drawn from a stream of that date alone."""
        acts: list[MeasurementAct] = []
        r = rng(self.seed, "day", self.baseline.protocol, day.isoformat())
        late = 45.0 if day.weekday() >= 5 else 0.0
        """People get up later at weekends."""
        for index, session in enumerate(self.schedule):
            jitter = noise(r, session.jitter_min / 2, session.jitter_min)
            if day.weekday() not in session.weekdays:
                continue
            planned = datetime.combine(day, time(session.hour, session.minute), self.zone)
            at = planned + timedelta(minutes=jitter + (late if session.hour < 11 else 0.0), seconds=r.randint(0, 59))
            for repeat in range(session.repeats):
                sequence = _sequence(day, index, repeat) if session.device_type == "glucose_meter" else None
                acts.append(
                    self.act(
                        at + timedelta(minutes=repeat),
                        session.device_type,
                        session.tag,
                        r,
                        glucose_slot=session.glucose_slot,
                        sequence=sequence,
                    )
                )
        return acts

    def acts(self, start: datetime, days: int) -> list[MeasurementAct]:
        """Every scheduled act of `days` local dates from `start`'s date, in time order."""
        out = [act for day in self.local_dates(start, days) for act in self.day(day)]
        return sort_acts(out)


def _sequence(day: date, session_index: int, repeat: int) -> int:
    """A glucose meter's record number: grows by date and slot, independent of where a generated span starts."""
    return (day.toordinal() - date(2020, 1, 1).toordinal()) * 32 + session_index * 4 + repeat


def sort_acts(acts: Iterable[MeasurementAct]) -> list[MeasurementAct]:
    return sorted(acts, key=lambda a: (a.at, a.device_type, a.tag, a.sequence or 0))


def with_values(act: MeasurementAct, **changes: Any) -> MeasurementAct:
    """A copy of an act with some fields replaced (scenarios' edits)."""
    return replace(act, **changes)


def local_noon(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(12, 0), zone)


def plausible(act: MeasurementAct) -> bool:
    """Every value inside its kind's physically plausible range (what the edge and ingest accept)."""
    return all(KINDS[k].is_plausible(v) for k, v in act.values)
