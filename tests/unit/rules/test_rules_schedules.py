"""Need-driven measurement schedules: the step-up and step-down transitions as tables, the schedule in force, and
the words the patient reads."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from rules_engine.schedules import AlarmSignal, DayVerdict, day_verdicts, judge_days, on_alarm
from store.schedules import StepState
from tests.patient.plans import plan_body
from vitals import Kind, PlanContent, SelfManagementPlan
from vitals.plan import ActiveStep, Zone
from vitals.schedules import effective_content, step_notice

DAY = date(2026, 12, 7)
AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
ALARM = uuid.UUID(int=1)
STEPS: list[dict[str, Any]] = [
    {
        "kind": "body_weight",
        "zone": "yellow",
        "schedule": [
            {"kind": "body_weight", "deadline": "09:00", "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
            {"kind": "body_weight", "deadline": "20:00", "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
        ],
        "questionnaires": [{"id": "hf-symptoms", "deadline": "18:00"}],
        "days": 5,
        "green_days": 3,
    },
    {
        "kind": "body_weight",
        "zone": "red",
        "schedule": [
            {"kind": "body_weight", "deadline": "08:00", "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
            {"kind": "body_weight", "deadline": "14:00", "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
            {"kind": "body_weight", "deadline": "20:00", "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
        ],
        "days": 7,
        "green_days": 5,
    },
]


def _d(days: int) -> date:
    return DAY + timedelta(days=days)


def _plan(steps: list[dict[str, Any]] | None = None, **overrides: Any) -> PlanContent:
    body = plan_body(step_ups=STEPS if steps is None else steps, **overrides)
    body["questionnaires"][0]["deadline"] = None
    return PlanContent.model_validate(body)


def _state(zone: str = "yellow", *, until: date = _d(5), green: int = 0, judged: date = DAY) -> StepState:
    return StepState("body_weight", zone, AT, until, green, judged, ALARM)


def _alarm(severity: str, *, opened: bool = True, kind: str = "body_weight") -> AlarmSignal:
    return AlarmSignal(uuid.UUID(int=2), kind, severity, opened, AT)


# ---- step up ----------------------------------------------------------------------------------------------------

YELLOW, RED = ("body_weight", "yellow"), ("body_weight", "red")


@pytest.mark.parametrize(
    ("severity", "opened", "active", "expected"),
    [
        # nothing in force: the alarm's zone (or the mildest step-up below it) starts
        ("yellow", True, {}, [("stepped_up", "yellow", _d(5))]),
        ("red", True, {}, [("stepped_up", "red", _d(7))]),
        ("red", False, {}, [("stepped_up", "red", _d(7))]),  # an alarm raised to red
        # an updated alarm of the step in force changes nothing; a new one extends it and restarts the count
        ("yellow", False, {YELLOW: _state()}, []),
        ("yellow", True, {YELLOW: _state(until=_d(2), green=2)}, [("extended", "yellow", _d(5))]),
        ("yellow", True, {YELLOW: _state(until=_d(9))}, [("extended", "yellow", _d(9))]),
        # red supersedes yellow; a yellow alarm while red is in force changes nothing
        ("red", True, {YELLOW: _state()}, [("superseded", "yellow", None), ("stepped_up", "red", _d(7))]),
        ("yellow", True, {RED: _state("red")}, []),
        # severities that are not zones never step up
        ("missed", True, {}, []),
        ("needs_review", True, {}, []),
    ],
)  # fmt: skip
def test_step_up_table(severity: str, opened: bool, active: dict[Any, StepState], expected: list[Any]) -> None:
    changes = on_alarm(_plan(), active, _alarm(severity, opened=opened), DAY)
    assert [(c.change, c.zone, c.state.until_day if c.state else None) for c in changes] == expected
    for c in changes:
        if c.change == "stepped_up":
            assert c.state is not None
            assert (c.state.since, c.state.green_days, c.state.judged_through) == (AT, 0, DAY)


def test_a_red_alarm_steps_up_the_yellow_step_when_the_plan_has_no_red_one() -> None:
    changes = on_alarm(_plan(STEPS[:1]), {}, _alarm("red"), DAY)
    assert [(c.change, c.zone) for c in changes] == [("stepped_up", "yellow")]


def test_an_alarm_of_another_kind_or_a_plan_without_step_ups_changes_nothing() -> None:
    assert on_alarm(_plan(), {}, _alarm("yellow", kind="spo2"), DAY) == []
    assert on_alarm(_plan([]), {}, _alarm("yellow"), DAY) == []


# ---- step down --------------------------------------------------------------------------------------------------

G, Y, R, N = "green", "yellow", "red", None


@pytest.mark.parametrize(
    ("zones", "today_offset", "until_offset", "expected"),
    [
        # zones of days DAY+1, DAY+2, ... ; today is DAY+today_offset; until (first day it may end) DAY+until_offset
        ([G, G, G], 4, 5, ("up", 3)),  # green enough but the five days are not over
        ([G, G, G, G], 5, 5, "down"),  # five days over, three (four) green days: step down
        ([G, G, Y, G, G], 6, 5, ("up", 2)),  # a yellow day starts the count again
        ([G, G, R, G, G, G], 7, 5, "down"),
        ([G, N, G, N, G], 6, 5, "down"),  # days without a measurement neither count nor break the row
        ([N, N, N, N, N], 6, 5, ("up", 0)),  # not measuring is not green
        ([G, G], 3, 2, ("up", 2)),  # the duration is over but the green days are not
        ([], 1, 5, ("up", 0)),
    ],
)  # fmt: skip
def test_step_down_table(zones: list[Zone | None], today_offset: int, until_offset: int, expected: Any) -> None:
    step = _plan().step_ups[0]
    verdicts = [DayVerdict(DAY + timedelta(days=i + 1), z) for i, z in enumerate(zones)]
    after = judge_days(step, _state(until=_d(until_offset)), verdicts, _d(today_offset))
    if expected == "down":
        assert after is None
    else:
        assert after is not None
        assert ("up", after.green_days) == expected
        assert after.judged_through == DAY + timedelta(days=today_offset - 1)


def test_days_already_judged_and_today_are_not_counted_again() -> None:
    step = _plan().step_ups[0]
    state = _state(green=1, judged=_d(2))
    verdicts = [DayVerdict(_d(d), "green") for d in range(1, 5)]  # DAY+1 … DAY+4
    after = judge_days(step, state, verdicts, _d(4))
    assert after is not None and after.green_days == 2  # only DAY+3: DAY+1/2 were judged, DAY+4 is today


def test_day_verdicts_take_the_worst_zone_of_each_local_day() -> None:
    plan = _plan()  # weight: yellow above 82, red above 84
    tz = ZoneInfo("Europe/Oslo")
    readings = [
        (datetime(2026, 12, 7, 22, 30, tzinfo=UTC), 83.0),  # 23:30 local on the 7th: yellow
        (datetime(2026, 12, 7, 8, 0, tzinfo=UTC), 80.0),
        (datetime(2026, 12, 7, 23, 30, tzinfo=UTC), 80.0),  # 00:30 local on the 8th
    ]
    assert day_verdicts(plan, Kind.BODY_WEIGHT, readings, tz) == [
        DayVerdict(date(2026, 12, 7), "yellow"),
        DayVerdict(date(2026, 12, 8), "green"),
    ]


# ---- the schedule in force and what the patient reads -------------------------------------------------------------


def test_schedule_in_force_replaces_the_kinds_a_step_up_schedules_and_keeps_the_rest() -> None:
    plan = _plan()
    assert effective_content(plan, []) is plan
    yellow = effective_content(plan, [(Kind.BODY_WEIGHT, "yellow")])
    assert [(e.kind.value, e.deadline) for e in yellow.schedule] == [
        ("bp_systolic", "09:00"),
        ("bp_systolic", "20:00"),
        ("body_weight", "09:00"),
        ("body_weight", "20:00"),
    ]
    assert yellow.questionnaires[0].deadline == "18:00"  # asked daily while stepped up
    both = effective_content(plan, [(Kind.BODY_WEIGHT, "yellow"), (Kind.BODY_WEIGHT, "red")])
    assert [e.deadline for e in both.schedule if e.kind == Kind.BODY_WEIGHT] == ["08:00", "14:00", "20:00"]
    assert both.questionnaires[0].deadline == "18:00"


@pytest.mark.parametrize(
    ("today_offset", "green", "nb", "en"),
    [
        (0, 0, "Mål vekt to ganger daglig de neste 5 dagene.", "Measure weight twice a day for the next 5 days."),
        (4, 2, "Mål vekt to ganger daglig ut dagen i dag.", "Measure weight twice a day for the rest of today."),
        (5, 1, "Mål vekt to ganger daglig til vekten har vært i orden 2 dager til.",
         "Measure weight twice a day until your weight has been fine for 2 more days."),
        (6, 2, "Mål vekt to ganger daglig til vekten har vært i orden én dag til.",
         "Measure weight twice a day until your weight has been fine for one more day."),
    ],
)  # fmt: skip
def test_the_patient_reads_plain_words(today_offset: int, green: int, nb: str, en: str) -> None:
    plan = _plan()
    active = ActiveStep.model_validate(
        {"kind": "body_weight", "zone": "yellow", "since": AT, "until": _d(5), "green_days": green,
         "green_days_needed": 3}
    )  # fmt: skip
    said_nb, said_en = step_notice(plan, active, _d(today_offset))
    question_nb = " Svar også på «Hvordan har du det i dag?» hver dag før kl. 18:00."
    question_en = " Also answer “How are you today?” every day before 18:00."
    assert (said_nb, said_en) == (nb + question_nb, en + question_en)


def test_a_stepped_up_plan_round_trips_through_the_wire() -> None:
    content = effective_content(_plan(), [(Kind.BODY_WEIGHT, "yellow")])
    active = {"kind": "body_weight", "zone": "yellow", "since": AT.isoformat(), "until": "2026-12-12", "green_days": 0}
    wire = SelfManagementPlan.model_validate(
        {**content.model_dump(mode="json"), "version": 3, "issued_at": AT.isoformat(), "schedule_revision": 4,
         "active_steps": [{**active, "green_days_needed": 3}]}
    )  # fmt: skip
    again = SelfManagementPlan.model_validate_json(wire.to_json())
    assert again == wire and again.schedule_revision == 4 and again.active_steps[0].until == date(2026, 12, 12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"zone": "green"}, "zone"),
        ({"kind": "spo2"}, "needs the plan's spo2 zones"),
        ({"questionnaires": [{"id": "nope", "deadline": "18:00"}]}, "'nope' is not in the plan's questionnaires"),
        ({"schedule": []}, "schedule"),
        ({"days": 0}, "days"),
        ({"green_days": 0}, "green_days"),
    ],
)
def test_invalid_step_ups_are_refused_with_a_reason(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _plan([{**STEPS[0], **change}])
    with pytest.raises(ValidationError, match="one step-up per kind and zone"):
        _plan([STEPS[0], STEPS[0]])
