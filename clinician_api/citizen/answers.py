"""Questionnaires answered in the patient app: the plan's questionnaires in the reader's language, and an answer
stored like one from the gateway's screen — one `questionnaire_responses` row, scored again and alarmed by
`rules_engine.questionnaires.store_responses` in the same transaction — naming who answered (the patient, or the
relative and the proxy they answered through).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from psycopg import Connection

from clinician_api.citizen.views import active_plan, plan_advice
from rules_engine.questionnaires import store_responses
from store import questionnaires as questionnaire_store
from store.questionnaires import ResponseRow
from vitals import score_answers
from vitals.plan import Questionnaire
from vitals.questionnaire import AnswerError

__all__ = ["AnswerError", "Answered", "PlanChangedError", "UnknownQuestionnaireError", "answer", "questionnaires"]


class UnknownQuestionnaireError(LookupError):
    """The active plan has no such questionnaire (or there is no active plan)."""


class PlanChangedError(RuntimeError):
    """The plan changed after the page was loaded: the questions answered may not be the plan's any more."""


@dataclass(frozen=True, slots=True)
class Answered:
    id: UUID
    answered_at: datetime
    zone: str | None
    advice: str | None


def _question_view(q: Questionnaire, lang: str) -> list[dict[str, Any]]:
    return [
        {
            "id": question.id,
            "text": question.nb if lang == "nb" else question.en,
            "options": [{"id": o.id, "text": o.nb if lang == "nb" else o.en} for o in question.options],
        }
        for question in q.questions
    ]


def questionnaires(conn: Connection[Any], patient_id: UUID, lang: str) -> dict[str, Any]:
    """The active plan's questionnaires with their questions and options, and the last answer to each today
    (by the patient's local day): when, its zone, and who gave it."""
    found = active_plan(conn, patient_id)
    if found is None:
        return {"plan_version": None, "items": []}
    version, plan = found
    start = datetime.now(ZoneInfo(plan.timezone)).replace(hour=0, minute=0, second=0, microsecond=0)
    today = {
        r.questionnaire: {
            "answered_at": r.answered_at,
            "zone": r.zone,
            "via": "gateway" if r.via_gateway else "app",
            "answered_by": r.answered_by,
            "by_relative": r.by_relative,
        }
        for r in questionnaire_store.latest_answers_since(conn, patient_id, start)
    }
    return {
        "plan_version": version,
        "items": [
            {
                "id": q.id,
                "title": q.title_nb if lang == "nb" else q.title_en,
                "deadline": q.deadline,
                "questions": _question_view(q, lang),
                "answered_today": today.get(q.id),
            }
            for q in plan.questionnaires
        ],
    }


def answer(
    conn: Connection[Any],
    patient_id: UUID,
    questionnaire_id: str,
    plan_version: int,
    chosen: Mapping[str, str],
    lang: str,
    *,
    citizen_id: UUID,
    proxy_id: UUID | None,
) -> Answered:
    """Score and store one answer to the active plan's questionnaire, raising its alarm as the gateway's would.
    Raises `UnknownQuestionnaireError`, `PlanChangedError` or `AnswerError` (a question left out, an unknown one)."""
    found = active_plan(conn, patient_id)
    questionnaire = next((q for q in found[1].questionnaires if q.id == questionnaire_id), None) if found else None
    if found is None or questionnaire is None:
        raise UnknownQuestionnaireError(f"the plan has no questionnaire {questionnaire_id!r}")
    version, plan = found
    if version != plan_version:
        raise PlanChangedError(f"the plan is now version {version}, not {plan_version}")
    score = score_answers(questionnaire, chosen)
    now = datetime.now(UTC)
    row = ResponseRow(
        id=uuid.uuid4(),
        patient_id=patient_id,
        gateway_id=None,
        questionnaire=questionnaire.id,
        plan_version=version,
        answered_at=now.replace(microsecond=0),
        received_at=now,
        answers={a.question: a.option for a in score.answers},
        reported_score=score.total,
        citizen_id=citizen_id,
        proxy_id=proxy_id,
    )
    store_responses(conn, [row])
    zone = questionnaire_store.zone_of(conn, row.id)
    return Answered(row.id, row.answered_at, zone, plan_advice(plan, zone, None, lang) if zone else None)
