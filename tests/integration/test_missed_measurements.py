"""Missed measurements from the plan's schedule, judged in the patient's time zone by one set-based query."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from rules_engine.missed import record_missed
from store.events import CHANNEL, ChangeNotice
from vitals.plan import Contact, PlanContent, ScheduledMeasurement, ZoneAdvice

pytestmark = pytest.mark.integration

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _activate_plan(
    db: psycopg.Connection[Any], patient_id: uuid.UUID, deadline: str, tz: str, weekdays: list[str]
) -> None:
    body = PlanContent(
        protocol="heart_failure",
        timezone=tz,
        schedule=[ScheduledMeasurement(kind="body_weight", deadline=deadline, weekdays=weekdays)],
        advice=[ZoneAdvice(zone=z, nb=f"Råd {z}", en=f"Advice {z}") for z in ("green", "yellow", "red")],
        contacts=[Contact(name="Oppfølgingstjenesten", role="nurse", phone="+47 22 00 00 00")],
    )
    db.execute(
        "INSERT INTO self_management_plans (patient_id, version, status, body, activated_at) "
        "VALUES (%s, 1, 'active', %s, now())",
        (patient_id, body.model_dump_json()),
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
    db.execute(
        "INSERT INTO self_management_plans (patient_id, version, status, body, activated_at) "
        "VALUES (%s, 1, 'active', %s, now())",
        (patient, body.model_dump_json()),
    )
    day = datetime.now(ZoneInfo(tz)).date() + timedelta(days=3)  # a day the stack's own timer never judges
    at = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
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
