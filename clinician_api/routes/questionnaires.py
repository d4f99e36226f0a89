"""Questionnaire responses of a patient, read-only: newest first, with the score and zone the cloud gave them.

Responses come from the patient's gateway (`ingest_service/questionnaires.py`) or from the patient app, answered by
the patient or a relative with a proxy (`citizen/answers.py`); alarms on them are in the queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel

from clinician_api import problems
from clinician_api.deps import PatientDep
from store import questionnaires

router = APIRouter(prefix="/api/v1/patients", tags=["questionnaires"], responses=problems.responses(401, 404))


class QuestionnaireResponseOut(BaseModel):
    id: UUID
    questionnaire: str
    plan_version: int
    answered_at: datetime
    received_at: datetime
    gateway_id: str | None
    """The gateway it came from; None when answered in the patient app."""
    answered_by: str | None
    """Who answered in the patient app (the patient, or the relative); None from the gateway."""
    answered_by_role: Literal["patient", "relative"] | None
    answers: dict[str, str]
    """question id → option id"""
    score: int
    zone: Literal["green", "yellow", "red"] | None
    """None when the plan version answered (or its questionnaire) is unknown."""


class QuestionnaireResponsePage(BaseModel):
    items: list[QuestionnaireResponseOut]


@router.get("/{patient_id}/questionnaire-responses", response_model=QuestionnaireResponsePage)
def questionnaire_responses(
    scope: PatientDep,
    questionnaire: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_-]{0,39}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> QuestionnaireResponsePage:
    found = questionnaires.responses_of(scope.conn, scope.patient_id, questionnaire, limit)
    return QuestionnaireResponsePage(
        items=[
            QuestionnaireResponseOut(
                id=r.id,
                questionnaire=r.questionnaire,
                plan_version=r.plan_version,
                answered_at=r.answered_at,
                received_at=r.received_at,
                gateway_id=r.gateway_id,
                answered_by=r.answered_by,
                answered_by_role=None if r.answered_by is None else ("relative" if r.by_relative else "patient"),
                answers=r.answers,
                score=r.score,
                zone=r.zone,
            )
            for r in found
        ]
    )
