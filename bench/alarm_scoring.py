"""Alarm quality against ground truth: sensitivity per episode, PPV per alarm, alarms per patient-week, and the
"> 2 kg in 3 days" rule of thumb scored on the same readings. Pure functions, so a test can feed them a wrong
result and see the targets fail (`bench/checks.failed_targets`)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

TARGETS: dict[str, tuple[str, float]] = {
    "sensitivity": (">=", 0.8),
    "ppv_vs_rule_of_thumb": (">=", 3.0),
    "rate_vs_rule_of_thumb": ("<=", 0.5),
}
"""The acceptance targets: sensitivity ≥ 0.8, PPV ≥ 3× and alarm rate ≤ 0.5× the rule of thumb's."""

SEPARATE_PREFIXES = ("missed.", "questionnaire")
"""Missed-measurement and questionnaire alarms are counted apart: they say nothing about deterioration."""
DETECTING = ("yellow", "red")
RULE_OF_THUMB_KG = 2.0
RULE_OF_THUMB_DAYS = 3


@dataclass(frozen=True, slots=True)
class Alarm:
    patient_id: str
    rule: str
    severity: str
    at: int
    """Raised at, epoch seconds."""


@dataclass(frozen=True, slots=True)
class Window:
    """A ground-truth episode: from onset to admission (epoch seconds)."""

    patient_id: str
    onset: int
    admission: int
    condition: str = ""


def _separate(rule: str) -> bool:
    return rule.startswith(SEPARATE_PREFIXES)


def score(alarms: Iterable[Alarm], episodes: Sequence[Window], patient_weeks: float) -> dict[str, Any]:
    """Sensitivity: episodes with a yellow or red alarm raised between onset and admission. PPV: clinical alarms
    (every severity, missed and questionnaire alarms left out) raised inside an episode window, over all clinical
    alarms. Rate: clinical alarms per patient-week. Lead time: from a detected episode's first yellow or red alarm
    to its admission (median, hours)."""
    by_patient: dict[str, list[Window]] = {}
    for e in episodes:
        by_patient.setdefault(e.patient_id, []).append(e)
    clinical: list[Alarm] = []
    separate = 0
    for a in alarms:
        if _separate(a.rule):
            separate += 1
        else:
            clinical.append(a)
    detected: set[Window] = set()
    first_alarm: dict[Window, int] = {}
    inside = 0
    per_rule: Counter[str] = Counter()
    per_rule_inside: Counter[str] = Counter()
    for a in clinical:
        per_rule[a.rule] += 1
        hit = [e for e in by_patient.get(a.patient_id, ()) if e.onset <= a.at <= e.admission]
        if hit:
            inside += 1
            per_rule_inside[a.rule] += 1
            if a.severity in DETECTING:
                detected.update(hit)
                for e in hit:
                    first_alarm[e] = min(first_alarm.get(e, a.at), a.at)
    n = len(clinical)
    conditions = sorted({e.condition for e in episodes})
    lead_h = sorted((e.admission - at) / 3600 for e, at in first_alarm.items())
    return {
        "episodes": len(episodes),
        "detected": len(detected),
        "sensitivity": round(len(detected) / len(episodes), 4) if episodes else float("nan"),
        "alarms": n,
        "alarms_in_episodes": inside,
        "ppv": round(inside / n, 4) if n else float("nan"),
        "alarms_per_patient_week": round(n / patient_weeks, 4) if patient_weeks else float("nan"),
        "separate_alarms": separate,
        "separate_per_patient_week": round(separate / patient_weeks, 4) if patient_weeks else float("nan"),
        "lead_time_h_median": round(statistics.median(lead_h), 1) if lead_h else float("nan"),
        "sensitivity_by_condition": {
            c: round(sum(1 for e in detected if e.condition == c) / sum(1 for e in episodes if e.condition == c), 4)
            for c in conditions
        },
        "by_rule": {
            rule: {"alarms": count, "in_episodes": per_rule_inside[rule]} for rule, count in per_rule.most_common()
        },
    }


def compare(engine: dict[str, Any], rule_of_thumb: dict[str, Any]) -> dict[str, float]:
    """The ratios the targets are set on; NaN where the rule of thumb's figure is zero or missing."""

    def ratio(a: Any, b: Any) -> float:
        return round(a / b, 3) if isinstance(a, int | float) and isinstance(b, int | float) and b else float("nan")

    return {
        "sensitivity": engine["sensitivity"],
        "ppv_vs_rule_of_thumb": ratio(engine["ppv"], rule_of_thumb["ppv"]),
        "rate_vs_rule_of_thumb": ratio(engine["alarms_per_patient_week"], rule_of_thumb["alarms_per_patient_week"]),
    }


def rule_of_thumb_candidates(weights: Iterable[tuple[str, int, float]]) -> list[tuple[str, int]]:
    """(patient, time) of every weight reading more than 2 kg above the lowest weight of the 3 days before it
    (the ESC self-care advice applied by hand), from (patient, epoch seconds, kg) readings."""
    window = RULE_OF_THUMB_DAYS * 86_400
    by_patient: dict[str, list[tuple[int, float]]] = {}
    for pid, at, kg in weights:
        by_patient.setdefault(pid, []).append((at, kg))
    out: list[tuple[str, int]] = []
    for pid, series in by_patient.items():
        series.sort()
        low: list[tuple[int, float]] = []  # monotone deque of (time, kg), increasing kg
        for at, kg in series:
            while low and low[-1][1] >= kg:
                low.pop()
            low.append((at, kg))
            while low[0][0] < at - window:
                low.pop(0)
            if round(kg - low[0][1], 2) > RULE_OF_THUMB_KG:
                out.append((pid, at))
    return out


__all__ = [
    "TARGETS",
    "Alarm",
    "Window",
    "compare",
    "rule_of_thumb_candidates",
    "score",
]
