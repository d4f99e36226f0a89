"""Today's plan, in the patient's time zone: which measurements and questionnaires are done, due, to be reminded
of now, or missed. A pure function of the plan, the clock and what was measured and answered today.

A kind measured several times a day (e.g. blood pressure at 08:00 and 20:00) splits the day at its deadlines:
the 08:00 item is done by a measurement before 08:00, the 20:00 item by one after 08:00 (or later that day).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from vitals import Kind, SelfManagementPlan

ItemState = Literal["done", "upcoming", "reminder", "missed"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
QUESTIONNAIRE_REMINDER_MINUTES = 60


@dataclass(frozen=True, slots=True)
class ScheduleItem:
    what: Literal["measurement", "questionnaire"]
    key: str
    """The kind of a measurement, the questionnaire id of a questionnaire."""
    deadline: datetime
    remind_from: datetime
    state: ItemState
    done_at: datetime | None = None

    @property
    def id(self) -> str:
        """Stable for the day: the page sounds a reminder once per item and day."""
        return f"{self.deadline.date().isoformat()}:{self.what}:{self.key}:{self.deadline.strftime('%H%M')}"


def local_day_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Local midnight today and tomorrow, as aware datetimes (DST days are 23 or 25 hours long)."""
    today = now.astimezone(tz).date()
    return _at(today, time(0, 0), tz), _at(today + timedelta(days=1), time(0, 0), tz)


def _at(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz)


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _state(now: datetime, deadline: datetime, remind_from: datetime, done_at: datetime | None) -> ItemState:
    if done_at is not None:
        return "done"
    if now > deadline:
        return "missed"
    if now >= remind_from:
        return "reminder"
    return "upcoming"


def todays_schedule(
    plan: SelfManagementPlan,
    now: datetime,
    measured: Mapping[Kind, Sequence[datetime]],
    answered: Mapping[str, datetime],
) -> list[ScheduleItem]:
    """The items of today (local date in the plan's time zone), ordered by deadline.

    `measured` holds the measurement times of each kind (any day; only today's count); `answered` the latest answer
    time of each questionnaire.
    """
    tz = ZoneInfo(plan.timezone)
    start, end = local_day_bounds(now, tz)
    today = start.date()
    weekday = WEEKDAYS[today.weekday()]
    items: list[ScheduleItem] = []
    by_kind: dict[Kind, list[tuple[datetime, int]]] = {}
    for entry in plan.schedule:
        if weekday in entry.weekdays:
            deadline = _at(today, _hhmm(entry.deadline), tz)
            by_kind.setdefault(entry.kind, []).append((deadline, entry.reminder_minutes_before))
    for kind, entries in by_kind.items():
        entries.sort()
        times = sorted(t for t in measured.get(kind, ()) if start <= t < end)
        window_start = start
        for index, (deadline, remind) in enumerate(entries):
            window_end = end if index == len(entries) - 1 else deadline
            done = next((t for t in times if window_start <= t < window_end), None)
            remind_from = deadline - timedelta(minutes=remind)
            state = _state(now, deadline, remind_from, done)
            items.append(ScheduleItem("measurement", kind.value, deadline, remind_from, state, done))
            window_start = deadline
    for questionnaire in plan.questionnaires:
        if questionnaire.deadline is None:
            continue
        deadline = _at(today, _hhmm(questionnaire.deadline), tz)
        last = answered.get(questionnaire.id)
        done = last if last is not None and start <= last < end else None
        remind_from = deadline - timedelta(minutes=QUESTIONNAIRE_REMINDER_MINUTES)
        items.append(
            ScheduleItem(
                "questionnaire", questionnaire.id, deadline, remind_from, _state(now, deadline, remind_from, done), done
            )
        )
    items.sort(key=lambda i: (i.deadline, i.what, i.key))
    return items
