"""The population overview of a care team: each patient's current zone and 7-day trend, adherence to the plan's
measurement schedule, and alarm burden, with the team's totals. Also the adherence of one patient over any period
(the period summary report uses it).

- Zone: the worst open red or yellow alarm (red, yellow), else green.
- Trend: the worst red/yellow alarm active in the last 7 days against the 7 days before: worse when higher,
  improving when lower, stable otherwise.
- Adherence: planned measurements taken. Each schedule entry of the active plan is one planned measurement on each
  of its weekdays whose deadline fell in the period; it is taken when a reading of its kind exists that local day.
- Alarm burden: alarms opened in the period per patient-week.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from psycopg import Connection

from store import population as population_store

Zone = Literal["red", "yellow", "green"]
Trend = Literal["improving", "stable", "worse"]
ZONES: tuple[Zone, ...] = ("red", "yellow", "green")
TRENDS: tuple[Trend, ...] = ("worse", "stable", "improving")
TREND_DAYS = 7


def zone_of(score: int) -> Zone:
    return "red" if score >= 2 else "yellow" if score == 1 else "green"


def trend_of(last_week: int, week_before: int) -> Trend:
    """Worse when the last 7 days' worst alarm is worse than the 7 days before, improving when better."""
    return "worse" if last_week > week_before else "improving" if last_week < week_before else "stable"


def percent(taken: int, planned: int) -> float | None:
    return round(100.0 * taken / planned, 1) if planned else None


def per_week(alarms: int, patients: int, days: int) -> float:
    return round(alarms / (patients * days / 7), 2) if patients and days else 0.0


@dataclass(frozen=True, slots=True)
class PatientLine:
    patient_id: UUID
    name: str
    team_id: UUID
    team_name: str
    zone: Zone
    trend: Trend
    planned: int
    taken: int
    alarms: int
    days: int

    @property
    def adherence(self) -> float | None:
        return percent(self.taken, self.planned)

    @property
    def alarms_per_week(self) -> float:
        return per_week(self.alarms, 1, self.days)


@dataclass(frozen=True, slots=True)
class TeamSummary:
    team_id: UUID
    team_name: str
    patients: int
    zones: dict[str, int]
    trends: dict[str, int]
    zone_trends: dict[str, dict[str, int]]
    planned: int
    taken: int
    alarms: int
    days: int

    @property
    def adherence(self) -> float | None:
        return percent(self.taken, self.planned)

    @property
    def alarms_per_patient_week(self) -> float:
        return per_week(self.alarms, self.patients, self.days)


def adherence(
    conn: Connection[Any], patient_ids: Sequence[UUID], start: datetime, end: datetime
) -> dict[UUID, tuple[int, int]]:
    """patient → (planned, taken) over [start, end), from the active plan's schedule."""
    return {r.patient_id: (r.planned, r.taken) for r in population_store.adherence(conn, patient_ids, start, end)}


def patient_lines(conn: Connection[Any], team_ids: Sequence[UUID], now: datetime, days: int) -> list[PatientLine]:
    start = now - timedelta(days=days)
    rows = population_store.overview(conn, team_ids, now, start, TREND_DAYS)
    adherent = adherence(conn, [r.patient_id for r in rows], start, now)
    lines = []
    for r in rows:
        planned, taken = adherent.get(r.patient_id, (0, 0))
        lines.append(
            PatientLine(
                patient_id=r.patient_id,
                name=r.name,
                team_id=r.team_id,
                team_name=r.team_name,
                zone=zone_of(r.open_score),
                trend=trend_of(r.last_score, r.before_score),
                planned=planned,
                taken=taken,
                alarms=r.alarms,
                days=days,
            )
        )
    return lines


def summarise(lines: Iterable[PatientLine], days: int) -> list[TeamSummary]:
    """The team totals of the patient lines, in the order the teams first appear."""
    teams: dict[UUID, list[PatientLine]] = {}
    for line in lines:
        teams.setdefault(line.team_id, []).append(line)
    out = []
    for team_id, members in teams.items():
        zone_trends: dict[str, dict[str, int]] = {z: {t: 0 for t in TRENDS} for z in ZONES}
        for m in members:
            zone_trends[m.zone][m.trend] += 1
        out.append(
            TeamSummary(
                team_id=team_id,
                team_name=members[0].team_name,
                patients=len(members),
                zones={z: sum(zone_trends[z].values()) for z in ZONES},
                trends={t: sum(zone_trends[z][t] for z in ZONES) for t in TRENDS},
                zone_trends=zone_trends,
                planned=sum(m.planned for m in members),
                taken=sum(m.taken for m in members),
                alarms=sum(m.alarms for m in members),
                days=days,
            )
        )
    return out


CSV_COLUMNS = (
    "team",
    "patient",
    "zone",
    "trend_7d",
    "adherence_percent",
    "planned_measurements",
    "taken_measurements",
    "alarms",
    "alarms_per_week",
    "period_days",
)


def _cell(value: Any) -> str:
    """A spreadsheet cannot run a name that looks like a formula (CSV injection): such text gets a leading '."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(lines: Iterable[PatientLine]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for m in lines:
        writer.writerow(
            [
                _cell(m.team_name),
                _cell(m.name),
                m.zone,
                m.trend,
                "" if m.adherence is None else m.adherence,
                m.planned,
                m.taken,
                m.alarms,
                m.alarms_per_week,
                m.days,
            ]
        )
    return out.getvalue()
