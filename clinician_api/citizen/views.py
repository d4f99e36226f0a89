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
from store import schedules
from vitals import KINDS, Kind
from vitals.plan import PlanContent
from vitals.schedules import plan_notices
from vitals.vocabulary import CARE_STAFF_ROLES

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def active_plan(conn: Connection[Any], patient_id: UUID) -> tuple[int, PlanContent] | None:
    """The active plan with the schedule in force (stepped up while a need-driven step-up lasts)."""
    row = conn.execute(
        "SELECT pl.version, coalesce(ps.body, pl.body) FROM self_management_plans pl "
        "LEFT JOIN patient_schedules ps ON ps.patient_id = pl.patient_id AND ps.plan_id = pl.id "
        "WHERE pl.patient_id = %s AND pl.status = 'active'",
        (patient_id,),
    ).fetchone()
    return (int(row[0]), PlanContent.model_validate(row[1])) if row else None


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
    rows = conn.execute(
        "SELECT kind, value, measured_at FROM readings WHERE patient_id = %s AND measured_at >= %s "
        "AND measured_at <= now() + interval '5 minutes' ORDER BY kind, measured_at, id",
        (patient_id, datetime.now(UTC) - timedelta(days=days)),
    ).fetchall()
    series: dict[str, list[dict[str, Any]]] = {}
    for kind_name, value, at in rows:
        kind = Kind(kind_name)
        zones = plan.zones_of(kind) if plan else None
        series.setdefault(kind_name, []).append(
            {"value": value, "measured_at": at, "zone": zones.zone_of(value) if zones else None}
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
    rows = conn.execute(
        "SELECT a.id, a.kind, a.severity, a.state, a.opened_at, a.last_value, a.acknowledged_at, "
        "ua.display_name, ua.role, a.resolved_at, ur.display_name, ur.role, a.last_measured_at "
        "FROM alarms a LEFT JOIN users ua ON ua.id = a.acknowledged_by LEFT JOIN users ur ON ur.id = a.resolved_by "
        "WHERE a.patient_id = %s AND a.opened_at >= now() - %s ORDER BY a.opened_at DESC LIMIT 50",
        (patient_id, timedelta(days=days)),
    ).fetchall()
    out = []
    for r in rows:
        kind = Kind(r[1]) if r[1] in {k.value for k in Kind} else None
        out.append(
            {
                "id": r[0],
                "kind": r[1],
                "kind_name": (KINDS[kind].name_nb if lang == "nb" else KINDS[kind].name_en) if kind else None,
                "severity": r[2],
                "state": r[3],
                "opened_at": r[4],
                "value": r[5],
                "unit": KINDS[kind].unit_display if kind else None,
                "seen_at": r[6],
                "seen_by": r[7],
                "seen_by_role": r[8],
                "closed_at": r[9],
                "closed_by": r[10],
                "closed_by_role": r[11],
                "measured_at": r[12],
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
    for kind_name, at in conn.execute(
        "SELECT kind, measured_at FROM readings WHERE patient_id = %s AND measured_at >= %s ORDER BY measured_at",
        (patient_id, start),
    ).fetchall():
        taken.setdefault(kind_name, []).append(at)
    answered = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT questionnaire FROM questionnaire_responses WHERE patient_id = %s AND answered_at >= %s",
            (patient_id, start),
        ).fetchall()
    }
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
    rows = conn.execute(
        "SELECT a.id, a.at, a.role, a.action, a.resource, a.outcome, a.emergency, a.reason, "
        "coalesce(u.display_name, u.username, c.display_name), t.name, a.proxy_id "
        "FROM audit_log a LEFT JOIN users u ON u.id = a.user_id AND a.role = ANY(%s) "
        "LEFT JOIN citizens c ON c.id = a.user_id AND a.role = 'relative' "
        "LEFT JOIN care_teams t ON t.id = a.team_id "
        "WHERE a.patient_id = %s AND a.role IS DISTINCT FROM 'patient' AND a.role IS NOT NULL "
        "AND (%s::bigint IS NULL OR a.id < %s) ORDER BY a.id DESC LIMIT %s",
        (list(_STAFF), patient_id, before, before, limit + 1),
    ).fetchall()
    items = []
    for r in rows[:limit]:
        outcome = "ok" if r[5] == "ok" else ("denied" if r[5] == "denied" else "refused")
        why = why_of(r[2], outcome, bool(r[6]), r[7])
        items.append(
            {
                "id": r[0],
                "at": r[1],
                "role": r[2],
                "action": r[3],
                "what": what_of(r[4]),
                "outcome": outcome,
                "why": why,
                "reason": r[7] if why == "emergency" else None,
                "who": r[8] or "",
                "team": r[9] if why in _TEAM_BASES else None,
            }
        )
    return {"items": _merged(items), "next": rows[limit - 1][0] if len(rows) > limit else None}


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
