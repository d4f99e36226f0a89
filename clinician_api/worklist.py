"""The nurse's worklist: every piece of work of a care team in one list, from item-type providers.

A provider reads one kind of work (open alarms, unanswered messages, missed measurements, inactive patients, plans
due for review) for a set of teams and returns `WorkItem`s with the time their SLA clock started. The list is sorted
by urgency: the provider's tier first (a red alarm before everything), then the moment the SLA runs out. Adding a
kind of work (hand-overs waiting for acceptance) is one function and one `PROVIDERS` entry.

Alarms and missed measurements come from the alarm queue's own read model (`queue.page`), so the alarm queue page is
the worklist's alarm view. Who works on an alarm is `alarms.assignee_id`; on other items, `work_assignments`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection

from clinician_api import messages, queue
from clinician_api.access import Principal
from store import episodes as episode_store
from store import worklist as worklist_store
from store.alarm_queue import QueueFilter
from store.worklist import Assignment
from vitals import Kind

# The SLA of each item type (and alarm severity): how long an item may wait before it is overdue.
SLAS: dict[str, timedelta] = {
    "alarm.red": timedelta(minutes=15),
    "alarm.yellow": timedelta(hours=4),
    "alarm.needs_review": timedelta(hours=8),
    "message": timedelta(hours=24),
    "missed_measurement": timedelta(hours=8),
    "inactive_patient": timedelta(hours=24),
    "plan_review": timedelta(days=14),
    "handover": timedelta(hours=24),
}
# Urgency tiers: tier 0 comes before tier 1 whatever the clocks say, and so on.
TIERS: dict[str, int] = {
    "alarm.red": 0,
    "alarm.yellow": 1,
    "alarm.needs_review": 1,
    "message": 1,
    "missed_measurement": 1,
    "inactive_patient": 2,
    "plan_review": 2,
    "handover": 1,
}
ALARM_TYPES = ("alarm", "missed_measurement")


@dataclass(frozen=True, slots=True)
class WorklistQuery:
    """Whose work, and the configurable limits: `inactive_days` without readings makes a patient inactive,
    `plan_review_days` after activation a plan is due for review."""

    principal: Principal
    team_ids: tuple[UUID, ...]
    now: datetime
    lang: str = "nb"
    inactive_days: int = 3
    plan_review_days: int = 90


@dataclass(frozen=True, slots=True)
class WorkItem:
    type: str
    key: str
    sla: str
    patient_id: UUID
    patient_name: str
    team_id: UUID
    title: str
    since: datetime
    due_at: datetime
    severity: str | None = None
    assignee_id: UUID | None = None
    assignee_name: str | None = None
    link: str = ""

    @property
    def tier(self) -> int:
        return TIERS[self.sla]

    def overdue(self, now: datetime) -> bool:
        return now >= self.due_at


def item(
    type_: str, sla: str, key: Any, patient_id: UUID, name: str, team: UUID, title: str, since: datetime, **extra: Any
) -> WorkItem:
    """A work item whose SLA clock started at `since`."""
    return WorkItem(type_, str(key), sla, patient_id, name, team, title, since, since + SLAS[sla], **extra)


def urgency(items: Sequence[WorkItem]) -> list[WorkItem]:
    """Most urgent first: tier, then the moment the SLA runs out, then type and key (a stable order)."""
    return sorted(items, key=lambda i: (i.tier, i.due_at, i.type, i.key))


def _patient_link(patient_id: UUID, anchor: str = "") -> str:
    return f"/dashboard/patients/{patient_id}{anchor}"


def _alarm_items(conn: Connection[Any], q: WorklistQuery, severities: Sequence[str], type_: str) -> list[WorkItem]:
    flt = QueueFilter(severities=severities, team_ids=q.team_ids)
    alarms, _ = queue.page(conn, q.principal, flt, cursor=None, limit=500, lang=q.lang)
    return [
        item(
            type_,
            f"alarm.{a.severity}" if type_ == "alarm" else type_,
            a.id,
            a.patient_id,
            a.patient_name,
            a.team_id,
            a.headline or a.explanation,
            a.opened_at,
            severity=a.severity,
            assignee_id=a.assignee_id,
            assignee_name=a.assignee_name,
            link=_patient_link(a.patient_id),
        )
        for a in alarms
    ]


def alarms(conn: Connection[Any], q: WorklistQuery) -> list[WorkItem]:
    """Open and acknowledged alarms (red, yellow, needs review): the alarm queue's items."""
    return _alarm_items(conn, q, ("red", "yellow", "needs_review"), "alarm")


def missed_measurements(conn: Connection[Any], q: WorklistQuery) -> list[WorkItem]:
    """Alarms of severity `missed`: a scheduled measurement not taken by its deadline."""
    return _alarm_items(conn, q, ("missed",), "missed_measurement")


def _assignments(conn: Connection[Any], type_: str, keys: Sequence[str]) -> dict[str, Assignment]:
    return {a.item_key: a for a in worklist_store.assignments(conn, type_, keys)}


def _with_assignments(conn: Connection[Any], items: list[WorkItem]) -> list[WorkItem]:
    if not items:
        return items
    found = _assignments(conn, items[0].type, [i.key for i in items])
    return [
        replace(i, assignee_id=found[i.key].assignee_id, assignee_name=found[i.key].assignee_name)
        if i.key in found
        else i
        for i in items
    ]


def unanswered_messages(conn: Connection[Any], q: WorklistQuery) -> list[WorkItem]:
    """Message threads whose patient-side messages the team has not answered; the clock starts at the oldest."""
    teams = set(q.team_ids)
    found = [
        item(
            "message",
            "message",
            t["thread_id"],
            t["patient_id"],
            t["patient_name"],
            t["team_id"],
            t["subject"],
            t["waiting_since"],
            link=_patient_link(t["patient_id"], f"?thread={t['thread_id']}#contact"),
        )
        for t in messages.awaiting(conn, q.principal, limit=500)
        if t["team_id"] in teams
    ]
    return _with_assignments(conn, found)


def inactive_patients(conn: Connection[Any], q: WorklistQuery) -> list[WorkItem]:
    """Active patients with no reading for `inactive_days` (since enrolment, for one who never measured). The clock
    starts when the patient became inactive: `inactive_days` after the last reading."""
    rows = worklist_store.inactive_patients(conn, q.team_ids, q.now, q.inactive_days, [k.value for k in Kind])
    nb = q.lang == "nb"
    found = []
    for r in rows:
        if r.last_at is None:
            title = "Ingen målinger ennå" if nb else "No readings yet"
        else:
            days = (q.now - r.last_at).days
            title = f"Ingen målinger på {days} dager" if nb else f"No readings for {days} days"
        became = r.since + timedelta(days=q.inactive_days)
        found.append(
            item(
                "inactive_patient",
                "inactive_patient",
                r.patient_id,
                r.patient_id,
                r.name,
                r.team_id,
                title,
                became,
                link=_patient_link(r.patient_id),
            )
        )
    return _with_assignments(conn, found)


def plans_due_for_review(conn: Connection[Any], q: WorklistQuery) -> list[WorkItem]:
    """Active plans activated more than `plan_review_days` ago; activating a new version clears the item."""
    found = []
    for r in worklist_store.plans_due_for_review(conn, q.team_ids, q.now, q.plan_review_days):
        when = f"{r.activated_at:%Y-%m-%d}"
        title = f"Plan v{r.version} aktiv siden {when}" if q.lang == "nb" else f"Plan v{r.version} active since {when}"
        due = r.activated_at + timedelta(days=q.plan_review_days)
        found.append(
            item(
                "plan_review",
                "plan_review",
                r.plan_id,
                r.patient_id,
                r.name,
                r.team_id,
                title,
                due,
                link=_patient_link(r.patient_id, "/edit"),
            )
        )
    return _with_assignments(conn, found)


def handovers_awaiting_acceptance(conn: Connection[Any], q: WorklistQuery) -> list[WorkItem]:
    """Hand-overs proposed to one of the query's teams and not yet accepted or declined: the receiving team's
    work (the sender stays responsible until then). The clock starts at the proposal."""
    nb = q.lang == "nb"
    return [
        item(
            "handover",
            "handover",
            h.id,
            h.patient_id,
            h.patient_name,
            h.to_team_id,
            f"Overføring fra {h.from_team_name} venter på svar"
            if nb
            else f"Hand-over from {h.from_team_name} awaits your answer",
            h.proposed_at,
            link=_patient_link(h.patient_id, "#episode"),
        )
        for h in episode_store.pending_handovers(conn, q.team_ids)
    ]


Provider = Callable[[Connection[Any], WorklistQuery], list[WorkItem]]
PROVIDERS: dict[str, Provider] = {
    "alarm": alarms,
    "message": unanswered_messages,
    "missed_measurement": missed_measurements,
    "inactive_patient": inactive_patients,
    "plan_review": plans_due_for_review,
    "handover": handovers_awaiting_acceptance,
}


def collect(conn: Connection[Any], q: WorklistQuery, types: Sequence[str] | None = None) -> list[WorkItem]:
    """The worklist of the query's teams, most urgent first; only the item types named, when any are."""
    wanted = [t for t in PROVIDERS if not types or t in types]
    return urgency([i for t in wanted for i in PROVIDERS[t](conn, q)])


# --- who works on what (items other than alarms) ------------------------------------------------------------------

ASSIGNABLE = worklist_store.ASSIGNABLE


def patient_of(conn: Connection[Any], type_: str, key: str) -> UUID | None:
    """The patient a work item is about; None for an unknown type or key."""
    return worklist_store.patient_of(conn, type_, key)


def assign(
    conn: Connection[Any], type_: str, key: str, patient_id: UUID, assignee: UUID | None, by: UUID
) -> Assignment | None:
    """Set (or clear, with None) who works on an item; returns who works on it now."""
    if assignee is None:
        worklist_store.release(conn, type_, key)
        return None
    worklist_store.assign(conn, type_, key, patient_id, assignee, by)
    return _assignments(conn, type_, [key])[key]
