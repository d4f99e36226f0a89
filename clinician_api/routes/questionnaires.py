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
    rows = scope.conn.execute(
        "SELECT r.id, r.questionnaire, r.plan_version, r.answered_at, r.received_at, r.gateway_id, r.answers, "
        "r.score, r.zone, c.display_name, r.proxy_id IS NOT NULL FROM questionnaire_responses r "
        "LEFT JOIN citizens c ON c.id = r.answered_by_citizen "
        "WHERE r.patient_id = %s AND (%s::text IS NULL OR r.questionnaire = %s) "
        "ORDER BY r.answered_at DESC, r.id LIMIT %s",
        (scope.patient_id, questionnaire, questionnaire, limit),
    ).fetchall()
    return QuestionnaireResponsePage(
        items=[
            QuestionnaireResponseOut(
                id=r[0],
                questionnaire=r[1],
                plan_version=r[2],
                answered_at=r[3],
                received_at=r[4],
                gateway_id=r[5],
                answered_by=r[9],
                answered_by_role=None if r[9] is None else ("relative" if r[10] else "patient"),
                answers=r[6],
                score=r[7],
                zone=r[8],
            )
            for r in rows
        ]
    )
