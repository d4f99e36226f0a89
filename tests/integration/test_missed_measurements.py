"""Missed measurements from the plan's schedule, judged in the patient's time zone by one set-based query."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from rules_engine.missed import find_missed, record_missed
from store.events import CHANNEL, ChangeNotice
from vitals.plan import Contact, PlanContent, ScheduledMeasurement, ZoneAdvice

pytestmark = pytest.mark.integration

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _activate_plan(
    db: psycopg.Connection[Any],
    patient_id: uuid.UUID,
    deadline: str,
    tz: str,
    weekdays: list[str],
    activated_at: datetime | None = None,
) -> None:
    """A weight plan, active since `activated_at` (default an hour ago: deadlines since then are judged)."""
    body = PlanContent(
        protocol="heart_failure",
        timezone=tz,
        schedule=[ScheduledMeasurement(kind="body_weight", deadline=deadline, weekdays=weekdays)],
        advice=[ZoneAdvice(zone=z, nb=f"Råd {z}", en=f"Advice {z}") for z in ("green", "yellow", "red")],
        contacts=[Contact(name="Oppfølgingstjenesten", role="nurse", phone="+47 22 00 00 00")],
    )
    db.execute(
        "INSERT INTO self_management_plans (patient_id, version, status, body, activated_at) "
        "VALUES (%s, 1, 'active', %s, coalesce(%s, now() - interval '1 hour'))",
        (patient_id, body.model_dump_json(), activated_at),
    )


def _deadline_just_passed(tz: str) -> tuple[str, str]:
    local = datetime.now(ZoneInfo(tz)) - timedelta(minutes=1)
    if local.date() != datetime.now(ZoneInfo(tz)).date():  # just after local midnight: use 00:00
        local = local + timedelta(minutes=1)
    return local.strftime("%H:%M"), WEEKDAYS[local.weekday()]


def _missed(db: psycopg.Connection[Any], patient_id: uuid.UUID) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT rule, severity, count, explanation_en, details->>'last_missed_day' FROM alarms "
        "WHERE patient_id = %s AND rule LIKE 'missed.%%'",
        (patient_id,),
    ).fetchall()


def test_measurement_not_taken_by_deadline_opens_one_missed_alarm_once_per_day(
    make_tenant: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(patients=2)
    missing, measured = tenant.patients
    tz = "Pacific/Auckland"  # a zone far from the server's, so local days are really used
    deadline, weekday = _deadline_just_passed(tz)
    for patient_id in (missing, measured):
        _activate_plan(db, patient_id, deadline, tz, [weekday])
    db.execute(
        "INSERT INTO readings (id, patient_id, gateway_id, kind, value, measured_at) "
        "VALUES (%s, %s, %s, 'body_weight', 81.2, now() - interval '3 minutes')",
        (uuid.uuid4(), measured, tenant.gateways[1].gateway_id),
    )
    listener = psycopg.connect(db.info.dsn, password=db.info.password, autocommit=True)
    listener.execute(f"LISTEN {CHANNEL}")
    with psycopg.connect(db.info.dsn, password=db.info.password) as conn:
        opened = record_missed(conn)
        record_missed(conn)
    # The dashboard's live queue hears of the missed alarm by its id (it used to be told only a count).
    announced = {a for n in listener.notifies(timeout=2.0, stop_after=2) for a in ChangeNotice.parse(n.payload).alarms}
    listener.close()
    assert set(opened) <= announced and opened
    alarms = _missed(db, missing)
    assert len(alarms) == 1
    rule, severity, count, explanation, day = alarms[0]
    assert (rule, severity, count) == ("missed.body_weight", "missed", 1)
    assert f"by {deadline}" in explanation
    assert day == datetime.now(ZoneInfo(tz)).date().isoformat()
    assert _missed(db, measured) == []


def test_no_missed_alarm_on_a_day_the_schedule_skips(make_tenant: Any, db: psycopg.Connection[Any]) -> None:
    tenant = make_tenant()
    tz = "Europe/Oslo"
    deadline, weekday = _deadline_just_passed(tz)
    other_days = [d for d in WEEKDAYS if d != weekday]
    _activate_plan(db, tenant.patients[0], deadline, tz, other_days)
    with psycopg.connect(db.info.dsn, password=db.info.password) as conn:
        record_missed(conn)
    assert _missed(db, tenant.patients[0]) == []


def test_a_kind_measured_twice_a_day_is_judged_per_deadline_and_each_deadline_once(
    make_tenant: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant()
    patient, tz = tenant.patients[0], "Europe/Oslo"
    body = PlanContent(
        protocol="heart_failure",
        timezone=tz,
        schedule=[
            ScheduledMeasurement(kind="body_weight", deadline=hhmm, weekdays=list(WEEKDAYS))
            for hhmm in ("08:00", "20:00")
        ],
        advice=[ZoneAdvice(zone=z, nb=f"Råd {z}", en=f"Advice {z}") for z in ("green", "yellow", "red")],
        contacts=[Contact(name="Oppfølgingstjenesten", role="nurse", phone="+47 22 00 00 00")],
    )
    day = datetime.now(ZoneInfo(tz)).date() + timedelta(days=3)  # a day the stack's own timer never judges
    at = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    db.execute(
        "INSERT INTO self_management_plans (patient_id, version, status, body, activated_at) "
        "VALUES (%s, 1, 'active', %s, %s)",
        (patient, body.model_dump_json(), at),  # active from that day's midnight: earlier days are not judged
    )
    db.execute(
        "INSERT INTO readings (id, patient_id, gateway_id, kind, value, measured_at) "
        "VALUES (%s, %s, %s, 'body_weight', 81.2, %s)",
        (uuid.uuid4(), patient, tenant.gateways[0].gateway_id, at + timedelta(hours=7)),
    )
    with psycopg.connect(db.info.dsn, password=db.info.password) as conn:
        record_missed(conn, at + timedelta(hours=12))  # 07:00 covers the 08:00 deadline
        assert _missed(db, patient) == []
        record_missed(conn, at + timedelta(hours=21))  # nothing between 08:00 and 20:00
        record_missed(conn, at + timedelta(hours=21, minutes=5))
    [(rule, _severity, count, explanation, _day)] = _missed(db, patient)
    assert (rule, count) == ("missed.body_weight", 1)
    assert "by 20:00" in explanation


# ---- the look-back: which deadlines of the last days a run judges ----------------------------------------------

OSLO = "Europe/Oslo"
DAY = date(2027, 3, 10)  # a Wednesday, in the future: the stack's own timer (real time) never judges these cases
SPRING = date(2027, 3, 28)  # Europe/Oslo 02:00 CET -> 03:00 CEST
AUTUMN = date(2027, 10, 31)  # Europe/Oslo 03:00 CEST -> 02:00 CET


def _at(day: date, hhmm: str, tz: str = OSLO) -> datetime:
    hours, minutes = (int(x) for x in hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=ZoneInfo(tz))


@dataclass(frozen=True)
class LookBack:
    """A weight plan due at 09:00 on `weekdays`, active from `active_from`, the readings' measured times, the run's
    `now`; `expected`: (deadline, how many missed) of the one candidate, or None."""

    now: datetime
    active_from: datetime
    readings: tuple[datetime, ...] = ()
    weekdays: tuple[str, ...] = WEEKDAYS
    episode_from: datetime | None = None
    expected: tuple[datetime, int] | None = None


YESTERDAY = DAY - timedelta(days=1)
LOOKBACK_CASES = {
    "deadline yesterday, nothing measured: missed": LookBack(
        now=_at(DAY, "08:00"), active_from=_at(DAY - timedelta(days=2), "12:00"), expected=(_at(YESTERDAY, "09:00"), 1)
    ),
    "two days missed: one candidate counting both, none from beyond the look-back": LookBack(
        now=_at(DAY, "08:00"), active_from=_at(DAY - timedelta(days=9), "12:00"), expected=(_at(YESTERDAY, "09:00"), 2)
    ),
    "measured by the deadline (whenever it reached the platform): not missed": LookBack(
        now=_at(DAY, "08:00"),
        active_from=_at(DAY - timedelta(days=2), "12:00"),
        readings=(_at(YESTERDAY, "08:30"),),
    ),
    "measured half an hour after the deadline: missed, as the run at the deadline found": LookBack(
        now=_at(DAY, "08:00"),
        active_from=_at(DAY - timedelta(days=2), "12:00"),
        readings=(_at(YESTERDAY, "09:30"),),
        expected=(_at(YESTERDAY, "09:00"), 1),
    ),
    "deadline before the plan was activated: not judged": LookBack(
        now=_at(DAY, "08:00"), active_from=_at(YESTERDAY, "10:00")
    ),
    "deadline before the episode of follow-up started: not judged": LookBack(
        now=_at(DAY, "08:00"), active_from=_at(DAY - timedelta(days=9), "12:00"), episode_from=_at(YESTERDAY, "10:00")
    ),
    "a weekday the schedule skips: not missed": LookBack(
        now=_at(DAY, "08:00"),
        active_from=_at(DAY - timedelta(days=2), "12:00"),
        weekdays=tuple(d for d in WEEKDAYS if d != WEEKDAYS[YESTERDAY.weekday()]),
    ),
    "spring DST day, measured 08:30 CEST: not missed": LookBack(
        now=_at(SPRING + timedelta(days=1), "08:00"),
        active_from=_at(SPRING - timedelta(days=1), "12:00"),
        readings=(_at(SPRING, "08:30"),),
    ),
    "spring DST day, measured 00:30 CET (23:30 UTC the day before): not missed": LookBack(
        now=_at(SPRING + timedelta(days=1), "08:00"),
        active_from=_at(SPRING - timedelta(days=1), "12:00"),
        readings=(_at(SPRING, "00:30"),),
    ),
    "spring DST day, measured 09:30 CEST: missed at 09:00 CEST (07:00 UTC)": LookBack(
        now=_at(SPRING + timedelta(days=1), "08:00"),
        active_from=_at(SPRING - timedelta(days=1), "12:00"),
        readings=(_at(SPRING, "09:30"),),
        expected=(_at(SPRING, "09:00"), 1),
    ),
    "autumn DST day, measured 09:30 CET: missed at 09:00 CET (08:00 UTC)": LookBack(
        now=_at(AUTUMN + timedelta(days=1), "08:00"),
        active_from=_at(AUTUMN - timedelta(days=1), "12:00"),
        readings=(_at(AUTUMN, "09:30"),),
        expected=(_at(AUTUMN, "09:00"), 1),
    ),
}


def test_the_dst_cases_mean_what_they_say() -> None:
    assert _at(SPRING, "09:00").utcoffset() == timedelta(hours=2)
    assert _at(SPRING, "00:30").utcoffset() == timedelta(hours=1)
    assert _at(AUTUMN, "09:00").utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize("case", LOOKBACK_CASES.values(), ids=LOOKBACK_CASES.keys())
def test_a_run_judges_the_deadlines_of_its_look_back(
    case: LookBack, make_tenant: Any, settings: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant()
    patient = tenant.patients[0]
    _activate_plan(db, patient, "09:00", OSLO, list(case.weekdays), activated_at=case.active_from)
    if case.episode_from is not None:
        from varde.admin import enrol_patient

        episode = enrol_patient(settings, patient, "look-back test", ["heart_failure"])
        db.execute("UPDATE care_episodes SET started_at = %s WHERE id = %s", (case.episode_from, episode))
    for measured_at in case.readings:
        db.execute(
            "INSERT INTO readings (id, patient_id, gateway_id, kind, value, measured_at) "
            "VALUES (%s, %s, %s, 'body_weight', 81.2, %s)",
            (uuid.uuid4(), patient, tenant.gateways[0].gateway_id, measured_at),
        )
    with psycopg.connect(db.info.dsn, password=db.info.password) as conn:
        found = [c for c in find_missed(conn, case.now) if c.patient_id == patient]
    got = [(c.window_end, c.count) for c in found]
    assert got == ([] if case.expected is None else [case.expected])
    for c in found:
        assert c.window_end is not None
        local = c.window_end.astimezone(ZoneInfo(OSLO))
        assert (c.rule, c.details["deadline"], c.details["last_missed_day"]) == (
            "missed.body_weight",
            "09:00",
            local.date().isoformat(),
        )
        assert c.explanation_nb == f"Ingen måling av vekt {local:%d.%m.} før kl. 09:00 (planen)"


def test_a_missed_deadline_the_nurse_resolved_is_not_raised_again_by_later_runs(
    make_tenant: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant()
    patient = tenant.patients[0]
    _activate_plan(db, patient, "09:00", OSLO, list(WEEKDAYS), activated_at=_at(DAY - timedelta(days=2), "12:00"))
    with psycopg.connect(db.info.dsn, password=db.info.password) as conn:
        record_missed(conn, _at(DAY, "08:00"))
        db.execute("UPDATE alarms SET state = 'resolved', resolved_at = now() WHERE patient_id = %s", (patient,))
        record_missed(conn, _at(DAY, "08:30"))
        record_missed(conn, _at(DAY, "08:59"))  # yesterday's deadline is still inside the look-back
        assert [(c.window_end, c.count) for c in find_missed(conn, _at(DAY, "08:59")) if c.patient_id == patient] == []
        record_missed(conn, _at(DAY, "09:01"))  # today's deadline is a new one
    rows = db.execute(
        "SELECT state, count, details->>'last_missed_day' FROM alarms WHERE patient_id = %s ORDER BY opened_at, state",
        (patient,),
    ).fetchall()
    assert sorted(rows) == [("open", 1, DAY.isoformat()), ("resolved", 1, YESTERDAY.isoformat())]
