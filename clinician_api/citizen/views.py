"""Read models of the patient app, in plain terms: measurements with the plan's zones, the plan and what to do in
each zone, a need-driven step-up of the schedule in the words the gateway shows, what became of each alarm,
reminders and due questionnaires, and the access log (innsynslogg).

Everything is in the patient's own words and units; nothing here is a clinician's working note (an alarm's
resolution text stays in the dashboard).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from psycopg import Connection

from clinician_api.access import BASIS_CONSULTATIVE, BASIS_HANDOVER
from store import alarms, audit, questionnaires, readings, schedules
from vitals import KINDS, Kind
from vitals.plan import PlanContent
from vitals.schedules import plan_notices
from vitals.vocabulary import CARE_STAFF_ROLES

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def active_plan(conn: Connection[Any], patient_id: UUID) -> tuple[int, PlanContent] | None:
    """The active plan with the schedule in force (stepped up while a need-driven step-up lasts)."""
    found = schedules.plan_in_force(conn, patient_id)
    return (found.version, PlanContent.model_validate(found.body)) if found else None


def plan_advice(plan: PlanContent, zone: str, kind: Kind | None, lang: str) -> str | None:
    general = None
    for entry in plan.advice:
        if entry.zone != zone:
            continue
        text = entry.nb if lang == "nb" else entry.en
        if kind is not None and entry.kind == kind:
            return text
        if entry.kind is None:
            general = text
    return general


def measurements(conn: Connection[Any], patient_id: UUID, lang: str, days: int = 30) -> dict[str, Any]:
    """The last `days` of readings per kind (oldest first, for a chart), each with its zone by the active plan,
    the plan's limits, and the latest reading with what to do now."""
    found = active_plan(conn, patient_id)
    plan = found[1] if found else None
    series: dict[str, list[dict[str, Any]]] = {}
    for point in readings.points_since(conn, patient_id, datetime.now(UTC) - timedelta(days=days)):
        zones = plan.zones_of(Kind(point.kind)) if plan else None
        series.setdefault(point.kind, []).append(
            {
                "value": point.value,
                "measured_at": point.measured_at,
                "zone": zones.zone_of(point.value) if zones else None,
            }
        )
    out = []
    for kind_name, points in series.items():
        kind = Kind(kind_name)
        info = KINDS[kind]
        zones = plan.zones_of(kind) if plan else None
        latest = points[-1]
        out.append(
            {
                "kind": kind_name,
                "name": info.name_nb if lang == "nb" else info.name_en,
                "unit": info.unit_display,
                "decimals": info.decimals,
                "zones": None
                if zones is None
                else {
                    "red_low": zones.red_low,
                    "yellow_low": zones.yellow_low,
                    "yellow_high": zones.yellow_high,
                    "red_high": zones.red_high,
                },
                "latest": {
                    **latest,
                    "advice": plan_advice(plan, latest["zone"], kind, lang) if plan and latest["zone"] else None,
                },
                "points": points[-200:],
            }
        )
    order = {k.value: i for i, k in enumerate(Kind)}
    out.sort(key=lambda item: order.get(str(item["kind"]), 99))
    return {"days": days, "kinds": out, "has_plan": plan is not None}


def schedule_notices(conn: Connection[Any], patient_id: UUID, lang: str) -> list[dict[str, Any]]:
    """The step-ups in force (newest first), each with what it asks of the patient in the same words as the
    gateway's page and the nurse's view (`vitals.schedules.step_notice`)."""
    plan = schedules.active_plans(conn, [patient_id]).get(patient_id)
    if plan is None:
        return []
    today = datetime.now(UTC).astimezone(ZoneInfo(plan.timezone)).date()
    return [
        {"kind": n["kind"], "zone": n["zone"], "until": n["until"], "text": n["nb"] if lang == "nb" else n["en"]}
        for n in plan_notices(schedules.wire_plan(conn, plan), today)
    ]


def plan_view(conn: Connection[Any], patient_id: UUID, lang: str) -> dict[str, Any] | None:
    found = active_plan(conn, patient_id)
    if found is None:
        return None
    version, plan = found

    def name(kind: Kind) -> str:
        return KINDS[kind].name_nb if lang == "nb" else KINDS[kind].name_en

    return {
        "version": version,
        "zones": [
            {
                "kind": z.kind.value,
                "name": name(z.kind),
                "unit": KINDS[z.kind].unit_display,
                "red_low": z.red_low,
                "yellow_low": z.yellow_low,
                "yellow_high": z.yellow_high,
                "red_high": z.red_high,
            }
            for z in plan.zones
        ],
        "advice": [
            {
                "zone": a.zone,
                "kind": a.kind.value if a.kind else None,
                "kind_name": name(a.kind) if a.kind else None,
                "text": a.nb if lang == "nb" else a.en,
            }
            for a in sorted(plan.advice, key=lambda a: (("green", "yellow", "red").index(a.zone), a.kind is not None))
        ],
        "schedule": [
            {"kind": s.kind.value, "name": name(s.kind), "deadline": s.deadline, "weekdays": list(s.weekdays)}
            for s in plan.schedule
        ],
        "schedule_notices": schedule_notices(conn, patient_id, lang),
        "contacts": [{"name": c.name, "role": c.role, "phone": c.phone} for c in plan.contacts],
        "questionnaires": [
            {"id": q.id, "title": q.title_nb if lang == "nb" else q.title_en, "deadline": q.deadline}
            for q in plan.questionnaires
        ],
    }


def alarm_outcomes(conn: Connection[Any], patient_id: UUID, lang: str, days: int = 30) -> list[dict[str, Any]]:
    """What became of each alarm of the last `days`: received, seen by whom (name and role), followed up."""
    out = []
    for a in alarms.outcomes_of(conn, patient_id, timedelta(days=days)):
        kind = Kind(a.kind) if a.kind in {k.value for k in Kind} else None
        out.append(
            {
                "id": a.id,
                "kind": a.kind,
                "kind_name": (KINDS[kind].name_nb if lang == "nb" else KINDS[kind].name_en) if kind else None,
                "severity": a.severity,
                "state": a.state,
                "opened_at": a.opened_at,
                "value": a.last_value,
                "unit": KINDS[kind].unit_display if kind else None,
                "seen_at": a.acknowledged_at,
                "seen_by": a.acknowledged_by_name,
                "seen_by_role": a.acknowledged_by_role,
                "closed_at": a.resolved_at,
                "closed_by": a.resolved_by_name,
                "closed_by_role": a.resolved_by_role,
                "measured_at": a.last_measured_at,
            }
        )
    return out


def reminders(conn: Connection[Any], patient_id: UUID, lang: str) -> dict[str, Any]:
    """Today's measurements of the schedule in force (done or not yet, by the patient's local day), the
    questionnaires not answered today, and why the schedule is stepped up, if it is.

    A kind scheduled several times a day splits the day at its deadlines as the gateway's page does
    (`edge_agent.patient.schedule`): the 09:00 item is done by a measurement before 09:00, the 20:00 item by one
    after 09:00 (or later that day), so one morning reading does not tick off the evening's."""
    found = active_plan(conn, patient_id)
    if found is None:
        return {"measurements": [], "questionnaires": [], "schedule_notices": []}
    _, plan = found
    tz = ZoneInfo(plan.timezone)
    now = datetime.now(tz)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    weekday = _WEEKDAYS[now.weekday()]
    taken: dict[str, list[datetime]] = {}
    for measured in readings.measured_since(conn, patient_id, start):
        taken.setdefault(measured.kind, []).append(measured.measured_at)
    answered = questionnaires.answered_since(conn, patient_id, start)
    deadlines: dict[Kind, list[str]] = {}
    for s in plan.schedule:
        if weekday in s.weekdays:
            deadlines.setdefault(s.kind, []).append(s.deadline)
    items = []
    for kind, times in deadlines.items():
        times.sort()
        window_start = start
        for index, hhmm in enumerate(times):
            hour, minute = map(int, hhmm.split(":"))
            deadline = start.replace(hour=hour, minute=minute)
            last = index == len(times) - 1
            done = any(window_start <= t and (last or t < deadline) for t in taken.get(kind.value, ()))
            items.append(
                {
                    "kind": kind.value,
                    "name": KINDS[kind].name_nb if lang == "nb" else KINDS[kind].name_en,
                    "deadline": hhmm,
                    "done": done,
                    "late": not done and now > deadline,
                }
            )
            window_start = deadline
    items.sort(key=lambda item: str(item["deadline"]))  # stable: the plan's order within a deadline
    due = [
        {"id": q.id, "title": q.title_nb if lang == "nb" else q.title_en, "deadline": q.deadline}
        for q in plan.questionnaires
        if q.id not in answered
    ]
    return {"measurements": items, "questionnaires": due, "schedule_notices": schedule_notices(conn, patient_id, lang)}


# --- the access log (innsynslogg) --------------------------------------------------------------------------------

_WHAT = [
    (re.compile(r"/measurements|/latest|/Observation|/min/.*/measurements"), "measurements"),
    (re.compile(r"/plans|/CarePlan|/thresholds|/min/.*/plan"), "plan"),
    (re.compile(r"/alarms|/DetectedIssue"), "alarms"),
    (re.compile(r"/questionnaire"), "questionnaires"),
    (re.compile(r"/threads|/messages"), "messages"),
    (re.compile(r"/proxies"), "proxies"),
    (re.compile(r"/reservations"), "reservations"),
    (re.compile(r"/access-log"), "access_log"),
    (re.compile(r"/\$everything|/fhir/Patient/"), "record_export"),
    (re.compile(r"/emergency-access"), "emergency"),
    (re.compile(r"^/api/v1/patients/[0-9a-f-]{36}$"), "record"),
    (re.compile(r"^/api/v1/patients$|^/api/v1/alarms$|^/api/v1/messages"), "list"),
]
_STAFF = CARE_STAFF_ROLES


def what_of(resource: str) -> str:
    for pattern, what in _WHAT:
        if pattern.search(resource):
            return what
    return "record"


Why = Literal["care_team", "consultative", "handover", "emergency", "proxy", "no_access"]
_TEAM_BASES = ("care_team", "consultative", "handover")


def why_of(role: str, outcome: str, emergency: bool, reason: str | None) -> Why:
    """On what basis an audited access was made, as the patient is told it. The row's team is the accessing
    person's, which is the patient's care team only on that basis: an attempt without access had no basis at all,
    and a consultative or hand-over read is by another team (the access gate writes that basis as the reason)."""
    if role == "relative":
        return "proxy"
    if emergency:
        return "emergency"
    if outcome == "denied":
        return "no_access"
    if reason == BASIS_CONSULTATIVE:
        return "consultative"
    if reason == BASIS_HANDOVER:
        return "handover"
    return "care_team"


def access_log(conn: Connection[Any], patient_id: UUID, limit: int = 200, before: int | None = None) -> dict[str, Any]:
    """Who (staff and relatives, not the patient themself) looked at or changed the patient's data: when, which
    team, why (care team or emergency access with its reason), and what — newest first."""
    rows = audit.accesses_by_others(conn, patient_id, _STAFF, before=before, limit=limit + 1)
    items = []
    for r in rows[:limit]:
        outcome = "ok" if r.outcome == "ok" else ("denied" if r.outcome == "denied" else "refused")
        why = why_of(r.role, outcome, r.emergency, r.reason)
        items.append(
            {
                "id": r.id,
                "at": r.at,
                "role": r.role,
                "action": r.action,
                "what": what_of(r.resource),
                "outcome": outcome,
                "why": why,
                "reason": r.reason if why == "emergency" else None,
                "who": r.who or "",
                "team": r.team if why in _TEAM_BASES else None,
            }
        )
    return {"items": _merged(items), "next": rows[limit - 1].id if len(rows) > limit else None}


_SAME_VISIT = timedelta(minutes=15)
_VISIT_KEYS = ("who", "role", "action", "what", "outcome", "why", "reason", "team")


def _merged(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per visit: consecutive entries alike in everything but time, each within 15 minutes of the next,
    become one with `count` and the time of the first (`first_at`); a page of clicks reads as one look."""
    out: list[dict[str, Any]] = []
    for item in items:  # newest first
        last = out[-1] if out else None
        if (
            last is not None
            and all(last[k] == item[k] for k in _VISIT_KEYS)
            and last["first_at"] - item["at"] <= _SAME_VISIT
        ):
            last["count"] += 1
            last["first_at"] = item["at"]
            continue
        out.append({**item, "count": 1, "first_at": item["at"]})
    return out
