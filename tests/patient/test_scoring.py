"""Questionnaire scoring (one function for gateway and cloud) and the plan's integrity check."""

from __future__ import annotations

import json

import pytest

from tests.patient.plans import plan, wire
from vitals import PlanMessageError, parse_plan_message, score_answers
from vitals.questionnaire import AnswerError


def test_answers_are_scored_and_zoned_by_the_plans_thresholds() -> None:
    questionnaire = plan().questionnaires[0]
    none = score_answers(questionnaire, {"breath": "no", "swelling": "no"})
    assert (none.total, none.zone) == (0, "green")
    some = score_answers(questionnaire, {"breath": "a-little", "swelling": "no"})
    assert (some.total, some.zone) == (1, "green")
    yellow = score_answers(questionnaire, {"breath": "no", "swelling": "yes"})
    assert (yellow.total, yellow.zone) == (2, "yellow")
    red = score_answers(questionnaire, {"breath": "a-lot", "swelling": "yes"})
    assert (red.total, red.zone) == (5, "red")
    assert [(a.question, a.option, a.score) for a in red.answers] == [("breath", "a-lot", 3), ("swelling", "yes", 2)]


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"breath": "no"}, "swelling is not answered"),
        ({"breath": "no", "swelling": "maybe"}, "'maybe' is not an option of swelling"),
        ({"breath": "no", "swelling": "no", "mood": "ok"}, "unknown question"),
    ],
)
def test_incomplete_or_unknown_answers_are_refused(answers: dict[str, str], message: str) -> None:
    with pytest.raises(AnswerError, match=message):
        score_answers(plan().questionnaires[0], answers)


def test_a_plan_message_round_trips_with_its_checksum() -> None:
    payload = wire(version=4)
    assert json.loads(payload)["sha256"]
    assert parse_plan_message(payload) == plan(4)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda d: d.update(version=5), "checksum mismatch"),
        (lambda d: d["zones"][0].update(red_high=99.0), "checksum mismatch"),
        (lambda d: d.pop("sha256"), "no sha256"),
        (lambda d: d.update(schema="varde.plan/2"), "schema"),
    ],
)
def test_an_altered_plan_message_is_refused(mangle: object, message: str) -> None:
    doc = json.loads(wire())
    mangle(doc)  # type: ignore[operator]
    with pytest.raises(PlanMessageError, match=message):
        parse_plan_message(json.dumps(doc).encode())


def test_a_truncated_plan_message_is_refused() -> None:
    with pytest.raises(PlanMessageError, match="not UTF-8 JSON"):
        parse_plan_message(wire()[:-40])
