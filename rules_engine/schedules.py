"""Need-driven measurement schedules, the rules: step up when an alarm opens, step back down after green days.

- `on_alarm` / `judge_days` are the pure transitions (table-tested): an alarm of a kind and zone the plan has a
  step-up for starts it (today + `days` is the first day it may end), a new alarm of a step in force extends it, a
  worse zone's step supersedes a milder one of the same kind; each judged local day with that kind measured and all
  green counts one green day, a yellow or red day starts the count again, a day without a measurement counts for
  nothing; once `days` have passed and `green_days` are counted, it steps down.
- `step_up_on_alarms` runs in the transaction that opened or raised the alarms (ingest, the timed rules), so the
  schedule in force changes with the alarm; the API's plan courier then publishes it to the gateway.
- `review_schedules` runs on the leader's timer with an injectable clock and judges each completed local day once.

The rows (steps, signals, the readings judged, the schedule in force) are `store.schedules`'.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from psycopg import Connection

from store.schedules import (
    ActivePlan,
    ScheduleChange,
    StepState,
    active_plans,
    apply_changes,
    load_steps,
    lock_patients,
    pending_review,
    save_counts,
    step_readings,
    step_signals,
    steps_after,
)
from vitals import Kind, PlanContent
from vitals.plan import ScheduleStep, Zone
from vitals.schedules import ZONE_RANK, step_of

log = logging.getLogger("varde.rules")


@dataclass(frozen=True, slots=True)
class AlarmSignal:
    """An alarm that opened or changed: what a step-up is triggered by."""

    alarm_id: UUID
    kind: str
    severity: str
    opened: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class DayVerdict:
    """A completed local day of the step's kind: its worst zone, None when it was not measured."""

    day: date
    zone: Zone | None


def on_alarm(
    plan: PlanContent, active: Mapping[tuple[str, str], StepState], alarm: AlarmSignal, today: date
) -> list[ScheduleChange]:
    """The changes one alarm makes to the step-ups in force (`today`: the patient's local date)."""
    rank = ZONE_RANK.get(alarm.severity)
    if rank is None:
        return []
    candidates = [s for s in plan.step_ups if s.kind.value == alarm.kind and ZONE_RANK[s.zone] <= rank]
    if not candidates:
        return []
    step = max(candidates, key=lambda s: ZONE_RANK[s.zone])
    same_kind = {zone: state for (kind, zone), state in active.items() if kind == alarm.kind}
    if any(ZONE_RANK[zone] > ZONE_RANK[step.zone] for zone in same_kind):
        return []  # a stricter step-up of this kind is already in force
    current = same_kind.get(step.zone)
    if current is not None:
        if not alarm.opened:
            return []
        until = max(current.until_day, today + timedelta(days=step.days))
        extended = replace(current, until_day=until, green_days=0, judged_through=max(current.judged_through, today))
        return [ScheduleChange("extended", alarm.kind, step.zone, extended, alarm.alarm_id, "a new alarm opened")]
    changes = [
        ScheduleChange("superseded", alarm.kind, zone, None, alarm.alarm_id, f"the {step.zone} step-up replaces it")
        for zone in same_kind
    ]
    state = StepState(
        kind=alarm.kind,
        zone=step.zone,
        since=alarm.at,
        until_day=today + timedelta(days=step.days),
        green_days=0,
        judged_through=today,
        alarm_id=alarm.alarm_id,
    )
    changes.append(
        ScheduleChange("stepped_up", alarm.kind, step.zone, state, alarm.alarm_id, f"{alarm.severity} alarm")
    )
    return changes


def judge_days(step: ScheduleStep, state: StepState, verdicts: Sequence[DayVerdict], today: date) -> StepState | None:
    """The step after the completed days `verdicts` (ascending, after `state.judged_through`); None: step down."""
    green = state.green_days
    for v in verdicts:
        if v.day <= state.judged_through or v.day >= today:
            continue
        if v.zone == "green":
            green += 1
        elif v.zone is not None:
            green = 0
    if today >= state.until_day and green >= step.green_days:
        return None
    return replace(state, green_days=green, judged_through=max(today - timedelta(days=1), state.judged_through))


def local_today(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


# ---- in the alarm's transaction ---------------------------------------------------------------------------------


def step_up_on_alarms(conn: Connection[Any], alarm_ids: Sequence[UUID]) -> int:
    """Step up the schedules the changed alarms call for; returns how many step-ups changed. One query when no
    patient of these alarms has a plan with step-ups (the common case)."""
    if not alarm_ids:
        return 0
    rows = step_signals(conn, alarm_ids)
    if not rows:
        return 0
    signals: dict[UUID, list[AlarmSignal]] = {}
    for r in rows:
        signals.setdefault(r.patient_id, []).append(AlarmSignal(r.alarm_id, r.kind, r.severity, bool(r.opened), r.at))
    lock_patients(conn, signals)
    plans = active_plans(conn, list(signals))
    steps = load_steps(conn, list(signals))
    changed = 0
    for patient_id, alarms in sorted(signals.items(), key=lambda kv: str(kv[0])):
        plan = plans.get(patient_id)
        if plan is None:
            continue
        active = steps.get(patient_id, {})
        changes: list[ScheduleChange] = []
        for alarm in sorted(alarms, key=lambda a: -ZONE_RANK[a.severity]):
            today = local_today(alarm.at, plan.timezone)
            now_changes = on_alarm(plan.body, steps_after(active, changes), alarm, today)
            changes.extend(now_changes)
        if changes:
            apply_changes(conn, plan, active, changes, local_today(alarms[0].at, plan.timezone))
            changed += len(changes)
            log.info("schedule_changed changes=%s", ",".join(f"{c.change}:{c.kind}:{c.zone}" for c in changes))
    return changed


# ---- on the leader's timer --------------------------------------------------------------------------------------


def review_schedules(conn: Connection[Any], now: datetime | None = None) -> int:
    """Judge the completed local days of every step-up in force and step down where it is due; returns how many
    stepped down. Idempotent: a day is judged once (`judged_through`)."""
    now = now or datetime.now(UTC)
    with conn.transaction():
        # A local day ends at most 14 hours ahead of UTC: the candidates; each patient's own zone decides below.
        latest_yesterday = (now.astimezone(UTC) + timedelta(hours=14)).date() - timedelta(days=1)
        patient_ids = pending_review(conn, latest_yesterday)
        if not patient_ids:
            return 0
        lock_patients(conn, patient_ids)
        plans = active_plans(conn, patient_ids)
        steps = load_steps(conn, patient_ids)
        earliest = min((s.judged_through for ss in steps.values() for s in ss.values()), default=now.date())
        since = datetime.combine(earliest, datetime.min.time(), UTC) - timedelta(days=1)
        by_step: dict[tuple[UUID, str], list[tuple[datetime, float]]] = {}
        for r in step_readings(conn, patient_ids, since, now):
            by_step.setdefault((r.patient_id, r.kind), []).append((r.measured_at, float(r.value)))
        stepped_down = 0
        for patient_id in patient_ids:
            plan = plans.get(patient_id)
            if plan is None:
                continue
            stepped_down += _review_patient(conn, plan, steps.get(patient_id, {}), by_step, now)
    return stepped_down


def _review_patient(
    conn: Connection[Any],
    plan: ActivePlan,
    active: dict[tuple[str, str], StepState],
    readings: Mapping[tuple[UUID, str], Sequence[tuple[datetime, float]]],
    now: datetime,
) -> int:
    tz = ZoneInfo(plan.timezone)
    today = now.astimezone(tz).date()
    changes: list[ScheduleChange] = []
    counted: list[StepState] = []
    for (kind, zone), state in active.items():
        step = step_of(plan.body, Kind(kind), zone)
        if step is None:
            changes.append(ScheduleChange("ended", kind, zone, None, reason="the plan has no such step-up"))
            continue
        verdicts = day_verdicts(plan.body, Kind(kind), readings.get((plan.patient_id, kind), ()), tz)
        after = judge_days(step, state, verdicts, today)
        if after is None:
            changes.append(ScheduleChange("stepped_down", kind, zone, None, reason=f"{step.green_days} green days"))
        elif after != state:
            counted.append(after)
    save_counts(conn, plan.patient_id, counted)
    if changes:
        apply_changes(conn, plan, active, changes, today)
        log.info("schedule_changed changes=%s", ",".join(f"{c.change}:{c.kind}:{c.zone}" for c in changes))
    return sum(1 for c in changes if c.change == "stepped_down")


def day_verdicts(
    plan: PlanContent, kind: Kind, readings: Sequence[tuple[datetime, float]], tz: ZoneInfo
) -> list[DayVerdict]:
    """The worst zone of each local day with readings of `kind`, by the plan's zones, ascending."""
    zones = plan.zones_of(kind)
    worst: dict[date, Zone] = {}
    order = {"green": 0, "yellow": 1, "red": 2}
    for measured_at, value in readings:
        day = measured_at.astimezone(tz).date()
        zone: Zone = zones.zone_of(value) if zones is not None else "green"
        if day not in worst or order[zone] > order[worst[day]]:
            worst[day] = zone
    return [DayVerdict(day, zone) for day, zone in sorted(worst.items())]


__all__ = [
    "AlarmSignal",
    "DayVerdict",
    "day_verdicts",
    "judge_days",
    "local_today",
    "on_alarm",
    "review_schedules",
    "step_up_on_alarms",
]
