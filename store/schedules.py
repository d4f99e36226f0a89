"""Need-driven measurement schedules in the database: the step-ups in force (`schedule_steps`), the schedule in force
(`patient_schedules`, also the outbox of the plan channel) and the history (`schedule_changes`).

Written by the rules (a step up when an alarm opens, a step down after green days) and by the API (a plan activated
or retired); read by the rules (the alarms that may step up, the readings of the days judged, the deadlines missed:
`rules_engine.schedules`, `rules_engine.missed`), the API's plan courier and the nurse's patient page. Every change
also leaves an audit row and, where an alarm caused it, an alarm event, and wakes the courier (`varde_schedules`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from uuid import UUID

from psycopg import Connection
from psycopg.rows import class_row, scalar_row

from store import alarms, audit
from store.events import Channel, wake
from vitals import Kind, PlanContent, SelfManagementPlan
from vitals.plan import ActiveStep
from vitals.schedules import effective_content, step_notice, step_of

ChangeKind = Literal["stepped_up", "extended", "superseded", "stepped_down", "ended"]


@dataclass(frozen=True, slots=True)
class StepState:
    """One step-up in force (a row of `schedule_steps`)."""

    kind: str
    zone: str
    since: datetime
    until_day: date
    green_days: int
    judged_through: date
    alarm_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class ScheduleChange:
    """A change to one step-up: `state` is the step after it (None once it stepped down or ended)."""

    change: ChangeKind
    kind: str
    zone: str
    state: StepState | None
    alarm_id: UUID | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ActivePlan:
    patient_id: UUID
    plan_id: UUID
    version: int
    activated_at: datetime
    body: PlanContent
    timezone: str


def active_plans(conn: Connection[Any], patient_ids: Sequence[UUID]) -> dict[UUID, ActivePlan]:
    rows = conn.execute(
        "SELECT pl.patient_id, pl.id, pl.version, pl.activated_at, pl.body, coalesce(pl.body->>'timezone', p.timezone) "
        "FROM self_management_plans pl JOIN patients p ON p.id = pl.patient_id "
        "WHERE pl.patient_id = ANY(%s) AND pl.status = 'active'",
        (list(patient_ids),),
    ).fetchall()
    return {r[0]: ActivePlan(r[0], r[1], r[2], r[3], PlanContent.model_validate(r[4]), r[5]) for r in rows}


def lock_patients(conn: Connection[Any], patient_ids: Iterable[UUID]) -> None:
    """Serialise schedule changes of these patients (with each other and with plan activation), in a fixed order.
    NO KEY UPDATE: readings and alarms of the patient may still be inserted meanwhile."""
    conn.execute(
        "SELECT 1 FROM patients WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE", (sorted(set(patient_ids), key=str),)
    )


def load_steps(conn: Connection[Any], patient_ids: Sequence[UUID]) -> dict[UUID, dict[tuple[str, str], StepState]]:
    with conn.cursor(row_factory=class_row(_StepRow)) as cur:
        rows = cur.execute(
            "SELECT patient_id, kind, zone, since, until_day, green_days, judged_through, alarm_id "
            "FROM schedule_steps WHERE patient_id = ANY(%s)",
            (list(patient_ids),),
        ).fetchall()
    out: dict[UUID, dict[tuple[str, str], StepState]] = {}
    for r in rows:
        out.setdefault(r.patient_id, {})[(r.kind, r.zone)] = r.state()
    return out


@dataclass(frozen=True, slots=True)
class _StepRow:
    patient_id: UUID
    kind: str
    zone: str
    since: datetime
    until_day: date
    green_days: int
    judged_through: date
    alarm_id: UUID | None

    def state(self) -> StepState:
        return StepState(
            self.kind, self.zone, self.since, self.until_day, self.green_days, self.judged_through, self.alarm_id
        )


def _active_steps(plan: PlanContent, steps: Iterable[StepState]) -> list[ActiveStep]:
    out: list[ActiveStep] = []
    for s in sorted(steps, key=lambda s: s.since):
        config = step_of(plan, Kind(s.kind), s.zone)
        if config is None:
            continue
        out.append(
            ActiveStep.model_validate(
                {
                    "kind": s.kind,
                    "zone": s.zone,
                    "since": s.since,
                    "until": s.until_day,
                    "green_days": s.green_days,
                    "green_days_needed": config.green_days,
                }
            )
        )
    return out


def steps_after(
    before: Mapping[tuple[str, str], StepState], changes: Sequence[ScheduleChange]
) -> dict[tuple[str, str], StepState]:
    """The step-ups in force once `changes` are made."""
    steps = dict(before)
    for c in changes:
        if c.state is None:
            steps.pop((c.kind, c.zone), None)
        else:
            steps[(c.kind, c.zone)] = c.state
    return steps


def apply_changes(
    conn: Connection[Any],
    plan: ActivePlan,
    before: dict[tuple[str, str], StepState],
    changes: Sequence[ScheduleChange],
    today: date,
    *,
    actor_id: UUID | None = None,
    actor: str = "varde-rules",
) -> dict[tuple[str, str], StepState]:
    """Write `changes` for one patient: step rows, the schedule in force (revision + 1), history, audit, alarm
    events; returns the step-ups in force after them. The caller holds `lock_patients`."""
    steps = steps_after(before, changes)
    for key in before.keys() - steps.keys():
        conn.execute(
            "DELETE FROM schedule_steps WHERE patient_id = %s AND kind = %s AND zone = %s", (plan.patient_id, *key)
        )
    for key, s in steps.items():
        if before.get(key) == s:
            continue
        conn.execute(
            "INSERT INTO schedule_steps (patient_id, kind, zone, plan_id, alarm_id, since, until_day, green_days, "
            "judged_through) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (patient_id, kind, zone) DO "
            "UPDATE SET plan_id = EXCLUDED.plan_id, alarm_id = EXCLUDED.alarm_id, since = EXCLUDED.since, "
            "until_day = EXCLUDED.until_day, green_days = EXCLUDED.green_days, "
            "judged_through = EXCLUDED.judged_through",
            (
                plan.patient_id,
                s.kind,
                s.zone,
                plan.plan_id,
                s.alarm_id,
                s.since,
                s.until_day,
                s.green_days,
                s.judged_through,
            ),
        )
    if not changes:
        return steps
    revision = _write_schedule(conn, plan, steps.values())
    for c in changes:
        details: dict[str, Any] = {"reason": c.reason} if c.reason else {}
        if c.state is not None:
            active = _active_steps(plan.body, [c.state])
            if active:
                nb, en = step_notice(plan.body, active[0], today)
                details |= {
                    "until": c.state.until_day.isoformat(),
                    "green_days": c.state.green_days,
                    "nb": nb,
                    "en": en,
                }
        config = step_of(plan.body, Kind(c.kind), c.zone)
        if config is not None:
            details["green_days_needed"] = config.green_days
            details["days"] = config.days
        conn.execute(
            "INSERT INTO schedule_changes (patient_id, change, kind, zone, plan_version, revision, alarm_id, actor_id, "
            "details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                plan.patient_id,
                c.change,
                c.kind,
                c.zone,
                plan.version,
                revision,
                c.alarm_id,
                actor_id,
                json.dumps(details),
            ),
        )
        audit.record(
            conn,
            None,
            f"schedule_{c.change}",
            "schedule",
            "ok",
            patient_id=plan.patient_id,
            reason=f"{c.kind} {c.zone} revision {revision}",
            username=actor,
            user_id=actor_id,
        )
        earlier = before.get((c.kind, c.zone))
        alarm_id = c.alarm_id or (earlier.alarm_id if earlier is not None else None)
        if alarm_id is not None:
            event = {"kind": c.kind, "zone": c.zone, **details}
            alarms.record_event_if_present(conn, alarms.NewEvent(alarm_id, f"schedule_{c.change}", event, actor_id))
    wake(conn, Channel.SCHEDULES, json.dumps({"revision": revision}))
    return steps


def save_counts(conn: Connection[Any], patient_id: UUID, steps: Iterable[StepState]) -> None:
    """Green days counted without a change of schedule: only the counters move (nothing to publish)."""
    for s in steps:
        conn.execute(
            "UPDATE schedule_steps SET green_days = %s, judged_through = %s "
            "WHERE patient_id = %s AND kind = %s AND zone = %s",
            (s.green_days, s.judged_through, patient_id, s.kind, s.zone),
        )


def _write_schedule(conn: Connection[Any], plan: ActivePlan, steps: Iterable[StepState]) -> int:
    body = effective_content(plan.body, [(Kind(s.kind), s.zone) for s in steps])
    row = conn.execute(
        "INSERT INTO patient_schedules AS s (patient_id, plan_id, revision, body) VALUES (%s, %s, 1, %s) "
        "ON CONFLICT (patient_id) DO UPDATE SET plan_id = EXCLUDED.plan_id, revision = s.revision + 1, "
        "body = EXCLUDED.body, changed_at = now() RETURNING revision",
        (plan.patient_id, plan.plan_id, body.model_dump_json()),
    ).fetchone()
    assert row is not None
    return int(row[0])


def wire_plan(conn: Connection[Any], plan: ActivePlan) -> SelfManagementPlan:
    """The plan as the gateway gets it now: the schedule in force, the step-ups in force, the schedule revision."""
    row = conn.execute(
        "SELECT revision, body FROM patient_schedules WHERE patient_id = %s AND plan_id = %s",
        (plan.patient_id, plan.plan_id),
    ).fetchone()
    steps = load_steps(conn, [plan.patient_id]).get(plan.patient_id, {})
    body = PlanContent.model_validate(row[1]) if row is not None else plan.body
    return SelfManagementPlan(
        **body.model_dump(),
        version=plan.version,
        issued_at=plan.activated_at,
        schedule_revision=int(row[0]) if row is not None else 0,
        active_steps=_active_steps(plan.body, steps.values()),
    )


def plan_activated(
    conn: Connection[Any], patient_id: UUID, today: date, actor_id: UUID | None, actor: str
) -> SelfManagementPlan:
    """A new plan version became active: step-ups it still has carry on under it, the others end. Returns the wire
    plan to publish (the caller publishes it in its transaction, so it is marked published here)."""
    plan = active_plans(conn, [patient_id])[patient_id]
    before = load_steps(conn, [patient_id]).get(patient_id, {})
    if before or conn.execute("SELECT 1 FROM patient_schedules WHERE patient_id = %s", (patient_id,)).fetchone():
        ended = [
            ScheduleChange("ended", k, z, None, s.alarm_id, "the new plan version has no such step-up")
            for (k, z), s in before.items()
            if step_of(plan.body, Kind(k), z) is None
        ]
        kept = {key: s for key, s in before.items() if step_of(plan.body, Kind(key[0]), key[1]) is not None}
        for key in kept:
            conn.execute(
                "UPDATE schedule_steps SET plan_id = %s WHERE patient_id = %s AND kind = %s AND zone = %s",
                (plan.plan_id, patient_id, *key),
            )
        if ended:
            apply_changes(conn, plan, before, ended, today, actor_id=actor_id, actor=actor)
        else:
            _write_schedule(conn, plan, kept.values())
    wire = wire_plan(conn, plan)
    conn.execute(
        "UPDATE patient_schedules SET published_revision = revision, published_at = now(), publish_error = NULL "
        "WHERE patient_id = %s",
        (patient_id,),
    )
    return wire


def plan_retired(conn: Connection[Any], patient_id: UUID, version: int, actor_id: UUID | None) -> None:
    """The active plan was retired: its step-ups end (recorded), and the schedule in force goes with it."""
    before = load_steps(conn, [patient_id]).get(patient_id, {})
    for (kind, zone), s in before.items():
        conn.execute(
            "INSERT INTO schedule_changes (patient_id, change, kind, zone, plan_version, revision, alarm_id, actor_id, "
            "details) VALUES (%s, 'ended', %s, %s, %s, 0, %s, %s, %s)",
            (patient_id, kind, zone, version, s.alarm_id, actor_id, json.dumps({"reason": "the plan was retired"})),
        )
    conn.execute("DELETE FROM schedule_steps WHERE patient_id = %s", (patient_id,))
    conn.execute("DELETE FROM patient_schedules WHERE patient_id = %s", (patient_id,))


@dataclass(frozen=True, slots=True)
class ChangeRow:
    at: datetime
    change: str
    kind: str
    zone: str
    plan_version: int
    revision: int
    alarm_id: UUID | None
    details: dict[str, Any]


def history(conn: Connection[Any], patient_id: UUID, limit: int = 50) -> list[ChangeRow]:
    with conn.cursor(row_factory=class_row(ChangeRow)) as cur:
        return cur.execute(
            "SELECT at, change, kind, zone, plan_version, revision, alarm_id, details FROM schedule_changes "
            "WHERE patient_id = %s ORDER BY at DESC, id DESC LIMIT %s",
            (patient_id, limit),
        ).fetchall()


@dataclass(frozen=True, slots=True)
class Publication:
    """Whether the patient's gateway has the schedule in force (`published`), and why not when it failed."""

    published: bool
    publish_error: str | None


def publication(conn: Connection[Any], patient_id: UUID) -> Publication | None:
    """None when the patient has no schedule in force."""
    with conn.cursor(row_factory=class_row(Publication)) as cur:
        return cur.execute(
            "SELECT published_revision >= revision AS published, publish_error FROM patient_schedules "
            "WHERE patient_id = %s",
            (patient_id,),
        ).fetchone()


@dataclass(frozen=True, slots=True)
class DueSchedule:
    """A schedule in force not yet on the patient's gateways (its `published_revision` lags `revision`)."""

    patient_id: UUID
    revision: int


def lock_next_due(conn: Connection[Any]) -> DueSchedule | None:
    """The due schedule changed longest ago, locked until the caller's transaction ends; one another courier holds
    is skipped."""
    with conn.cursor(row_factory=class_row(DueSchedule)) as cur:
        return cur.execute(
            "SELECT patient_id, revision FROM patient_schedules WHERE published_revision < revision "
            "ORDER BY changed_at FOR UPDATE SKIP LOCKED LIMIT 1"
        ).fetchone()


def record_publication(conn: Connection[Any], due: DueSchedule, error: str | None) -> None:
    """The courier's outcome for `due`: published (no `error`), or still due with the broker's error kept."""
    conn.execute(
        "UPDATE patient_schedules SET published_revision = CASE WHEN %s::text IS NULL THEN %s "
        "ELSE published_revision END, published_at = CASE WHEN %s::text IS NULL THEN now() ELSE published_at "
        "END, publish_error = %s WHERE patient_id = %s",
        (error, due.revision, error, error, due.patient_id),
    )


@dataclass(frozen=True, slots=True)
class PlanInForce:
    """The active plan's version, and its body with the schedule in force (stepped up while a step-up lasts)."""

    version: int
    body: dict[str, Any]


def plan_in_force(conn: Connection[Any], patient_id: UUID) -> PlanInForce | None:
    with conn.cursor(row_factory=class_row(PlanInForce)) as cur:
        return cur.execute(
            "SELECT pl.version, coalesce(ps.body, pl.body) AS body FROM self_management_plans pl "
            "LEFT JOIN patient_schedules ps ON ps.patient_id = pl.patient_id AND ps.plan_id = pl.id "
            "WHERE pl.patient_id = %s AND pl.status = 'active'",
            (patient_id,),
        ).fetchone()


# ---- the rules' reads: what steps up, what is judged, what was missed ------------------------------------------

_SIGNALS_SQL = (
    "SELECT a.id AS alarm_id, a.patient_id, a.kind, a.severity, a.opened_at = now() AS opened, now() AS at "
    "FROM alarms a "
    "JOIN self_management_plans pl ON pl.patient_id = a.patient_id AND pl.status = 'active' "
    "WHERE a.id = ANY(%s) AND a.kind IS NOT NULL AND a.severity IN ('yellow', 'red') "
    "AND jsonb_array_length(coalesce(pl.body->'step_ups', '[]'::jsonb)) > 0"
)


@dataclass(frozen=True, slots=True)
class StepSignal:
    """An alarm of a kind and zone, of a patient whose active plan has step-ups: what may step a schedule up."""

    alarm_id: UUID
    patient_id: UUID
    kind: str
    severity: str
    opened: bool
    """Opened in this transaction (else raised again or changed)."""
    at: datetime
    """The transaction's time."""


def step_signals(conn: Connection[Any], alarm_ids: Sequence[UUID]) -> list[StepSignal]:
    """The alarms among `alarm_ids` that a step-up may answer; none when no patient of theirs has a plan with
    step-ups (the common case, one query)."""
    with conn.cursor(row_factory=class_row(StepSignal)) as cur:
        return cur.execute(_SIGNALS_SQL, (list(alarm_ids),)).fetchall()


def pending_review(conn: Connection[Any], before: date) -> list[UUID]:
    """The patients with a step-up in force whose days are judged only up to before `before`."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute(
            "SELECT DISTINCT patient_id FROM schedule_steps WHERE judged_through < %s", (before,)
        ).fetchall()


_STEP_READINGS_SQL = (
    "SELECT s.patient_id, s.kind, r.measured_at, r.value FROM schedule_steps s "
    "JOIN readings r ON r.patient_id = s.patient_id AND r.kind = s.kind "
    "AND r.measured_at >= %s AND r.measured_at < %s WHERE s.patient_id = ANY(%s)"
)


@dataclass(frozen=True, slots=True)
class StepReading:
    patient_id: UUID
    kind: str
    measured_at: datetime
    value: float


def step_readings(
    conn: Connection[Any], patient_ids: Sequence[UUID], since: datetime, until: datetime
) -> list[StepReading]:
    """The readings in [since, until) of each kind these patients have a step-up of (one row per step and reading)."""
    with conn.cursor(row_factory=class_row(StepReading)) as cur:
        return cur.execute(_STEP_READINGS_SQL, (since, until, list(patient_ids))).fetchall()


_MISSED_SQL = """
WITH scheduled AS (
    SELECT pl.patient_id, s->>'kind' AS kind, (s->>'deadline')::time AS deadline, s->'weekdays' AS weekdays,
           zone.tz, greatest(coalesce(pl.activated_at, pl.created_at), ps.changed_at, ep.started_at) AS judged_from
    FROM self_management_plans pl
    JOIN patients p ON p.id = pl.patient_id AND p.active
    LEFT JOIN patient_schedules ps ON ps.patient_id = pl.patient_id AND ps.plan_id = pl.id
    LEFT JOIN care_episodes ep ON ep.patient_id = pl.patient_id AND ep.status = 'active'
    CROSS JOIN LATERAL jsonb_array_elements(coalesce(ps.body, pl.body)->'schedule') AS s
    CROSS JOIN LATERAL (SELECT coalesce(pl.body->>'timezone', p.timezone) AS tz) AS zone
    WHERE pl.status = 'active'
), days AS (
    SELECT sc.*, day::date AS local_day
    FROM scheduled sc
    CROSS JOIN LATERAL generate_series(
        ((%(now)s::timestamptz - %(lookback)s::interval) AT TIME ZONE sc.tz)::date::timestamp,
        (%(now)s::timestamptz AT TIME ZONE sc.tz)::date::timestamp,
        interval '1 day') AS day
), due AS (
    SELECT patient_id, kind, deadline, local_day, judged_from,
           (local_day + deadline) AT TIME ZONE tz AS deadline_at,
           coalesce(lag((local_day + deadline) AT TIME ZONE tz)
                        OVER (PARTITION BY patient_id, kind, local_day ORDER BY deadline),
                    local_day::timestamp AT TIME ZONE tz) AS window_start
    FROM days
    WHERE weekdays ? (ARRAY['mon','tue','wed','thu','fri','sat','sun'])[extract(isodow FROM local_day)::int]
)
SELECT d.patient_id, d.kind, d.deadline, d.local_day, d.deadline_at, d.window_start
FROM due d
WHERE d.deadline_at <= %(now)s AND d.deadline_at > %(now)s::timestamptz - %(lookback)s::interval
  AND d.deadline_at >= d.judged_from
  AND NOT EXISTS (
      SELECT 1 FROM readings r
      WHERE r.patient_id = d.patient_id AND r.kind = d.kind
        AND r.measured_at >= d.window_start AND r.measured_at <= d.deadline_at)
  AND NOT EXISTS (
      SELECT 1 FROM alarms a
      WHERE a.patient_id = d.patient_id AND a.rule = 'missed.' || d.kind
        AND CASE WHEN a.details ? 'last_missed_at' THEN (a.details->>'last_missed_at')::timestamptz >= d.deadline_at
                 ELSE a.details->>'last_missed_day' = d.local_day::text END)
ORDER BY d.patient_id, d.kind, d.deadline_at
"""
"""Each deadline of the schedule in force (the step-up's, else the active plan's) in the `lookback` before `now`, on
the patient's local days, judged from when that schedule began, with nothing measured in its window and not yet
recorded on an alarm of its `missed.<kind>` rule. The rule it serves is `rules_engine.missed`."""


@dataclass(frozen=True, slots=True)
class MissedDeadline:
    patient_id: UUID
    kind: str
    deadline: time
    """Local time of day."""
    local_day: date
    deadline_at: datetime
    window_start: datetime
    """The deadline before it that day, else local midnight: a reading in [window_start, deadline_at] covers it."""


def missed_deadlines(conn: Connection[Any], now: datetime, lookback: timedelta) -> list[MissedDeadline]:
    """The deadlines missed and not judged yet, by patient, kind and deadline."""
    with conn.cursor(row_factory=class_row(MissedDeadline)) as cur:
        return cur.execute(_MISSED_SQL, {"now": now, "lookback": lookback}).fetchall()


__all__ = [
    "ActivePlan",
    "ChangeRow",
    "DueSchedule",
    "MissedDeadline",
    "PlanInForce",
    "Publication",
    "ScheduleChange",
    "StepReading",
    "StepSignal",
    "StepState",
    "active_plans",
    "apply_changes",
    "history",
    "load_steps",
    "lock_next_due",
    "lock_patients",
    "missed_deadlines",
    "pending_review",
    "plan_activated",
    "plan_in_force",
    "plan_retired",
    "publication",
    "record_publication",
    "save_counts",
    "step_readings",
    "step_signals",
    "steps_after",
    "wire_plan",
]
