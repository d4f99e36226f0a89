"""Today's schedule in the patient's time zone: done, upcoming, reminder and missed items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from edge_agent.patient.schedule import todays_schedule
from tests.patient.plans import plan
from vitals import Kind

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 11, 23, tzinfo=OSLO)  # a Monday: weight daily, blood pressure at 09:00 and 20:00


def at(hour: int, minute: int = 0, day: datetime = MONDAY) -> datetime:
    return day.replace(hour=hour, minute=minute)


def states(
    now: datetime, measured: dict[Kind, list[datetime]] | None = None, answered: dict[str, datetime] | None = None
):
    items = todays_schedule(plan(), now, measured or {}, answered or {})
    return [(i.what, i.key, i.deadline.strftime("%H:%M"), i.state) for i in items]


def test_before_the_reminder_window_everything_is_upcoming() -> None:
    assert states(at(6, 0)) == [
        ("measurement", "body_weight", "09:00", "upcoming"),
        ("measurement", "bp_systolic", "09:00", "upcoming"),
        ("questionnaire", "hf-symptoms", "12:00", "upcoming"),
        ("measurement", "bp_systolic", "20:00", "upcoming"),
    ]


def test_reminders_start_the_plans_minutes_before_the_deadline_and_missed_after_it() -> None:
    assert states(at(8, 0))[:2] == [
        ("measurement", "body_weight", "09:00", "reminder"),  # default 60 minutes
        ("measurement", "bp_systolic", "09:00", "upcoming"),  # 30 minutes
    ]
    assert states(at(8, 31))[1][3] == "reminder"
    assert [s[3] for s in states(at(9, 1))] == ["missed", "missed", "upcoming", "upcoming"]
    assert [s[3] for s in states(at(11, 5))] == ["missed", "missed", "reminder", "upcoming"]


def test_a_measurement_counts_for_the_item_whose_window_it_falls_in() -> None:
    morning = {Kind.BP_SYSTOLIC: [at(7, 45)], Kind.BODY_WEIGHT: [at(7, 40)]}
    assert [s[3] for s in states(at(10, 0), morning)] == ["done", "done", "upcoming", "upcoming"]
    late = {Kind.BP_SYSTOLIC: [at(9, 30)]}
    result = states(at(21, 0), late)
    assert result[1] == ("measurement", "bp_systolic", "09:00", "missed")
    assert result[3] == ("measurement", "bp_systolic", "20:00", "done")


def test_yesterdays_measurement_and_answer_do_not_count_today() -> None:
    yesterday = MONDAY - timedelta(days=1)
    result = states(at(13, 0), {Kind.BODY_WEIGHT: [at(8, 0, yesterday)]}, {"hf-symptoms": at(11, 0, yesterday)})
    assert result[0][3] == "missed" and result[2] == ("questionnaire", "hf-symptoms", "12:00", "missed")
    answered = states(at(13, 0), answered={"hf-symptoms": at(10, 0)})
    assert answered[2][3] == "done"


def test_blood_pressure_is_not_scheduled_on_tuesdays() -> None:
    tuesday = MONDAY + timedelta(days=1)
    assert [s[1] for s in states(at(6, 0, tuesday))] == ["body_weight", "hf-symptoms"]


def test_the_day_is_the_patients_local_day_across_midnight_utc() -> None:
    # 23:30 UTC on Monday is 00:30 on Tuesday in Oslo: Tuesday's schedule, nothing done yet.
    now = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    assert [s[1] for s in states(now)] == ["body_weight", "hf-symptoms"]


def test_deadlines_are_local_wall_clock_times_on_a_dst_day() -> None:
    # 29 March 2026 (Sunday): Oslo moves from +01:00 to +02:00; 09:00 local is 07:00 UTC.
    sunday = datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    items = todays_schedule(plan(), sunday, {}, {})
    assert items[0].deadline.astimezone(UTC).hour == 7
