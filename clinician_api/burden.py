"""Alarm burden: alarms per patient-week, per care team and per rule, so a team lead sees which rule makes the noise.

Patient-weeks are the weeks each of the team's patients was followed within the period: from the start of the
period or the patient's enrolment, whichever is later, to the end of the period; a patient no longer followed
(inactive) counts only up to the newest of its readings in the period, and not at all without one. With every
patient followed the whole period this is patients × weeks. Alarms are counted in the period they were opened in,
whatever became of them; repeat requests cleared by an in-range repeat (alarms that never were) are counted beside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

from store import population
from vitals import KINDS, Kind

WEEK_S = 7 * 86_400


@dataclass(slots=True)
class RuleBurden:
    rule: str
    alarms: int = 0
    red: int = 0
    repeats_cleared: int = 0


@dataclass(slots=True)
class TeamBurden:
    team_id: UUID
    team: str
    patients: int
    patient_weeks: float
    rules: dict[str, RuleBurden] = field(default_factory=dict)

    @property
    def alarms(self) -> int:
        return sum(r.alarms for r in self.rules.values())

    def per_patient_week(self, alarms: int) -> float | None:
        return round(alarms / self.patient_weeks, 3) if self.patient_weeks > 0 else None


def team_burden(conn: Connection[Any], team_ids: Sequence[UUID], since: datetime, until: datetime) -> list[TeamBurden]:
    """Exposure and alarm counts of the given teams over [since, until)."""
    teams = {
        t.team_id: TeamBurden(t.team_id, t.team, t.patients, float(t.seconds) / WEEK_S)
        for t in population.team_exposure(conn, team_ids, since, until)
    }
    for counted in population.rule_alarms(conn, team_ids, since, until):
        burden = teams[counted.team_id].rules.setdefault(counted.rule, RuleBurden(counted.rule))
        burden.alarms, burden.red = counted.alarms, counted.red
    for cleared in population.cleared_repeats(conn, team_ids, since, until):
        teams[cleared.team_id].rules.setdefault(
            cleared.rule, RuleBurden(cleared.rule)
        ).repeats_cleared = cleared.cleared
    return list(teams.values())


_SIDE = {"low": ("under grensen", "below the limit"), "high": ("over grensen", "above the limit")}


def rule_label(rule: str) -> tuple[str, str]:
    """A rule id in words (bokmål, English) for the dashboard's table."""
    parts = rule.split(".")
    kind = KINDS.get(Kind(parts[1])) if len(parts) > 1 and parts[1] in Kind._value2member_map_ else None
    if parts[0] == "threshold" and kind is not None and len(parts) == 3 and parts[2] in _SIDE:
        nb, en = _SIDE[parts[2]]
        return f"{kind.name_nb} {nb}", f"{kind.name_en} {en}"
    if parts[0] == "missed" and kind is not None:
        return f"Manglende måling: {kind.name_nb.lower()}", f"Missed measurement: {kind.name_en.lower()}"
    named = {
        "trend.weight_gain": ("Vektøkning", "Weight gain"),
        "trend.weight_gain_7d": ("Vektøkning over en uke", "Weight gain over a week"),
        "trend.spo2_baseline": ("Oksygenmetning under vanlig nivå", "Oxygen saturation below usual"),
        "trend.pulse_baseline": ("Puls endret fra vanlig nivå", "Pulse changed from usual"),
        "news2": ("NEWS2", "NEWS2"),
        "bp.home_average": ("Blodtrykk, ukesnitt hjemme", "Home blood pressure, weekly mean"),
        "combined.heart_failure": ("Samlet forverring, hjertesvikt", "Combined deterioration, heart failure"),
        "combined.copd": ("Samlet forverring, KOLS", "Combined deterioration, COPD"),
    }
    if rule in named:
        return named[rule]
    if parts[0] == "questionnaire":
        return f"Spørreskjema: {parts[1]}", f"Questionnaire: {parts[1]}"
    return rule, rule


__all__ = ["RuleBurden", "TeamBurden", "rule_label", "team_burden"]
