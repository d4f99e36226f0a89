"""A noisy home heart-failure cohort and a day-by-day replay of the pure rules over it, for the alarm-quality
checks of the personal and combined rules (until `bench/alarm_quality.py` replays the whole stack).

Ordinary home noise, not the project simulator's clipped noise: a scale read in clothes, a pulse taken after the
stairs, missed days, slow drift of weight and pressure, heavy-tailed oximeter readings. Episodes: a decompensation
over 5–14 days before admission (weight up 0.6–4 kg, pulse up, SpO2 and systolic down), then recovery to a new
baseline. Per-patient artefact rates and adherence (0.6–0.98) as in the replay bench's cohort description.
Run as a script for the figures: `python tests/unit/rules/home_cohort.py [patients] [weeks]`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from rules_engine import ReadingArrays, build_patient_rules, evaluate_batch, kind_index
from rules_engine.personal import compute_baselines
from vitals import Kind

DAY = 86_400
T0 = 1_790_000_000 - 1_790_000_000 % DAY
EXCLUDED_RULES = ("missed", "questionnaire")

W, P, S, SYS, DIA = (
    kind_index(k) for k in (Kind.BODY_WEIGHT, Kind.PULSE_RATE, Kind.SPO2, Kind.BP_SYSTOLIC, Kind.BP_DIASTOLIC)
)


@dataclass(frozen=True, slots=True)
class Episode:
    patient: int
    onset: int
    """Epoch seconds."""
    admission: int


@dataclass(frozen=True, slots=True)
class Cohort:
    readings: ReadingArrays
    episodes: list[Episode]
    n_patients: int
    days: int


def heart_failure_cohort(
    n_patients: int,
    days: int,
    *,
    seed: int = 7,
    episode_share: float = 0.28,
    spo2_dips: bool = True,
    artefacts: bool = True,
) -> Cohort:
    """`spo2_dips`: single oximeter readings 3–8 points low (cold fingers, motion) at a per-patient rate;
    `artefacts=False` leaves out clothes, stairs and dips (biological variability and drift remain)."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[int, int, int, float]] = []
    episodes: list[Episode] = []
    for p in range(n_patients):
        weight0 = rng.uniform(60, 110)
        pulse0 = rng.uniform(58, 86)
        spo2_0 = rng.uniform(92.5, 97.5)
        sys0 = rng.uniform(95, 145)
        dia0 = sys0 * rng.uniform(0.55, 0.65)
        weight_drift = rng.uniform(-2.0, 2.0) / days
        sys_drift = rng.uniform(-8.0, 8.0) / days
        adherence = rng.uniform(0.6, 0.98)
        share = 1.0 if artefacts else 0.0
        clothes, stairs = rng.uniform(0, 0.15) * share, rng.uniform(0, 0.1) * share
        cold_finger = rng.uniform(0, 0.04) * share * spo2_dips
        shift = np.zeros((days, 4))  # weight, pulse, spo2, systolic
        if rng.random() < episode_share:
            length = int(rng.integers(5, 15))
            onset = int(rng.integers(21, days - length - 1))
            ramp = np.linspace(0, 1, length + 1)[1:] ** 1.5
            size = np.array([rng.uniform(0.6, 4.0), rng.uniform(5, 15), -rng.uniform(1, 4), -rng.uniform(0, 10)])
            shift[onset : onset + length] = ramp[:, None] * size
            recovery = size * np.array([-0.3, 0.0, 0.0, 0.0])  # diuresed below the old weight
            shift[onset + length + 5 :] = recovery
            shift[onset + length : onset + length + 5] = np.nan  # in hospital: no readings
            episodes.append(Episode(p, T0 + onset * DAY, T0 + (onset + length) * DAY))
        for d in range(days):
            if rng.random() > adherence or np.isnan(shift[d, 0]):
                continue
            t = T0 + d * DAY + 7 * 3600 + int(rng.integers(-1800, 1800))
            weight = weight0 + weight_drift * d + shift[d, 0] + rng.normal(0, 0.6)
            if rng.random() < clothes:
                weight += rng.uniform(0.8, 1.5)  # in clothes
            pulse = pulse0 + shift[d, 1] + rng.normal(0, 4.5)
            if rng.random() < stairs:
                pulse += rng.uniform(15, 35)  # after the stairs
            spo2 = spo2_0 + shift[d, 2] + rng.standard_t(4) * 0.8
            if rng.random() < cold_finger:
                spo2 -= rng.uniform(3, 8)  # cold fingers, motion
            spo2 = min(100.0, round(spo2))
            systolic = round(sys0 + sys_drift * d + shift[d, 3] + rng.normal(0, 8))
            diastolic = round(dia0 + rng.normal(0, 6))
            rows += [
                (p, W, t, round(weight, 1)),
                (p, SYS, t + 300, float(systolic)),
                (p, DIA, t + 300, float(diastolic)),
                (p, P, t + 300, float(round(pulse))),
                (p, S, t + 600, float(spo2)),
            ]
    cols = list(zip(*rows, strict=True))
    readings = ReadingArrays.of(cols[0], cols[1], np.array(cols[2], dtype=np.int64), cols[3])
    return Cohort(readings, episodes, n_patients, days)


Alarm = tuple[int, str, int]
"""(patient, rule, raised_at)."""


def replay(
    cohort: Cohort, protocol: str = "heart_failure", *, personal: bool = True, resolve_after: int = DAY
) -> list[Alarm]:
    """Day by day: baselines recomputed at each day boundary, the day's readings evaluated as one batch with 14 days
    of history; one open alarm per (patient, rule), resolved `resolve_after` after it was raised."""
    r = cohort.readings
    order = np.argsort(r.measured_at, kind="stable")
    p, k, t, v = r.patient_row[order], r.kind_idx[order], r.measured_at[order], r.value[order]
    since = np.full(cohort.n_patients, np.iinfo(np.int64).max)
    np.minimum.at(since, p, t)
    open_until: dict[tuple[int, str], int] = {}
    alarms: list[Alarm] = []
    for d in range(cohort.days):
        start, end = T0 + d * DAY, T0 + (d + 1) * DAY
        lo, hi = np.searchsorted(t, [start, end])
        if lo == hi:
            continue
        h0 = np.searchsorted(t, start - 14 * DAY)
        history = ReadingArrays.of(p[h0:lo], k[h0:lo], t[h0:lo], v[h0:lo])
        batch = ReadingArrays.of(p[lo:hi], k[lo:hi], t[lo:hi], v[lo:hi])
        baselines = None
        if personal:
            past = ReadingArrays.of(p[:lo], k[:lo], t[:lo], v[:lo])
            baselines = compute_baselines(past, start, np.where(since < start, since, start))
        rules = build_patient_rules([protocol] * cohort.n_patients, personal=baselines)
        for c in evaluate_batch(batch, rules, history).candidates:
            if c.rule.startswith(EXCLUDED_RULES):
                continue
            raised = int(c.window_end.timestamp())
            key = (c.patient_row, c.rule)
            if open_until.get(key, -1) > raised:
                continue
            open_until[key] = raised + resolve_after
            alarms.append((c.patient_row, c.rule, raised))
    return alarms


def rule_of_thumb(cohort: Cohort, *, resolve_after: int = DAY) -> list[Alarm]:
    """ "More than 2 kg in 3 days": each weight against the lowest weight of the 3 days before it."""
    r = cohort.readings
    is_w = r.kind_idx == W
    p, t, v = r.patient_row[is_w], r.measured_at[is_w], r.value[is_w]
    alarms: list[Alarm] = []
    for patient in range(cohort.n_patients):
        mine = p == patient
        tt, vv = t[mine], v[mine]
        order = np.argsort(tt)
        tt, vv = tt[order], vv[order]
        until = -1
        for i in range(len(tt)):
            window = vv[(tt >= tt[i] - 3 * DAY) & (tt <= tt[i])]
            if vv[i] - window.min() > 2.0 and tt[i] >= until:
                alarms.append((patient, "rule_of_thumb", int(tt[i])))
                until = int(tt[i]) + resolve_after
    return alarms


def score(cohort: Cohort, alarms: Iterable[Alarm]) -> dict[str, float]:
    alarms = list(alarms)
    inside = [a for a in alarms if any(e.patient == a[0] and e.onset <= a[2] <= e.admission for e in cohort.episodes)]
    detected = sum(any(a[0] == e.patient and e.onset <= a[2] <= e.admission for a in alarms) for e in cohort.episodes)
    weeks = cohort.n_patients * cohort.days / 7
    return {
        "sensitivity": round(detected / max(len(cohort.episodes), 1), 3),
        "ppv": round(len(inside) / max(len(alarms), 1), 3),
        "alarms_per_patient_week": round(len(alarms) / weeks, 3),
        "alarms": len(alarms),
    }


def by_rule(alarms: Iterable[Alarm]) -> dict[str, int]:
    out: dict[str, int] = {}
    for _p, rule, _t in alarms:
        out[rule] = out.get(rule, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def main(argv: list[str], run: Callable[[Cohort], list[Alarm]] = replay) -> None:
    n, weeks = (int(argv[0]) if argv else 120), (int(argv[1]) if len(argv) > 1 else 21)
    cohort = heart_failure_cohort(n, weeks * 7)
    ours, thumb = run(cohort), rule_of_thumb(cohort)
    print(
        json.dumps(
            {
                "episodes": len(cohort.episodes),
                "rules": score(cohort, ours),
                "by_rule": by_rule(ours),
                "rule_of_thumb": score(cohort, thumb),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
