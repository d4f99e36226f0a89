"""The demo's plans: the missed-measurement patient's weighing is due just after its plan is activated."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from varde.demo_extras import due_soon, plan_for

CASES = {
    "rounded up to the next whole minute": (datetime(2026, 12, 7, 7, 29, 30, tzinfo=UTC), "08:31"),
    "a whole minute 45 s on stays": (datetime(2026, 12, 7, 7, 29, 15, tzinfo=UTC), "08:30"),
    "a microsecond past it is the next minute": (datetime(2026, 12, 7, 7, 29, 15, 1, tzinfo=UTC), "08:31"),
    "summer time, local clock": (datetime(2027, 6, 1, 7, 0, 0, tzinfo=UTC), "09:01"),
    "past local midnight": (datetime(2026, 12, 7, 22, 59, 30, tzinfo=UTC), "00:01"),
}


@pytest.mark.parametrize(("now", "expected"), CASES.values(), ids=CASES.keys())
def test_the_missed_weighing_is_due_at_the_first_whole_minute_45_s_on(now: datetime, expected: str) -> None:
    assert due_soon(now, "Europe/Oslo") == expected


def test_the_timed_plan_moves_only_the_weighing_and_makes_it_daily() -> None:
    usual = plan_for("heart_failure")
    timed = plan_for("heart_failure", weight_deadline="08:31")
    weighing = {e["kind"]: e for e in timed["schedule"]}["body_weight"]
    assert weighing["deadline"] == "08:31"
    assert weighing["weekdays"] == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert [e for e in timed["schedule"] if e["kind"] != "body_weight"] == [
        e for e in usual["schedule"] if e["kind"] != "body_weight"
    ]
    assert {e["kind"]: e for e in usual["schedule"]}["body_weight"]["deadline"] == "09:00"
