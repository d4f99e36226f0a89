"""Symptom questionnaire responses as they travel from the gateway, and the one scoring function.

The patient answers a questionnaire of the plan on the gateway's screen; the gateway scores it with `score_answers`,
keeps the response in its durable queue and publishes it on `varde/v1/gw/{gateway_id}/questionnaires` inside a
`varde.questionnaire/1` envelope. The cloud scores the answers again with the same function against the plan
version the patient answered, so the rules never depend on the gateway's arithmetic. Like readings, a response
carries no patient identity and has a stable id, so a re-send is stored once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from vitals.envelope import EnvelopeError, Reason, load_wire_json
from vitals.plan import Questionnaire, Zone
from vitals.topics import GATEWAY_ID_PATTERN

QUESTIONNAIRE_SCHEMA = "varde.questionnaire/1"
MAX_RESPONSES_PER_ENVELOPE = 100

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
_Strict = ConfigDict(extra="forbid", frozen=True)


class Answer(BaseModel):
    model_config = _Strict

    question: Slug
    option: Slug
    score: int = Field(ge=0, le=100)


class QuestionnaireResponse(BaseModel):
    """One completed questionnaire: every question answered, the total score and its zone by the plan."""

    model_config = _Strict

    id: UUID
    questionnaire: Slug
    plan_version: int = Field(ge=1)
    answered_at: AwareDatetime
    answers: tuple[Answer, ...] = Field(min_length=1, max_length=30)
    score: int = Field(ge=0)
    zone: Zone


class QuestionnaireEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["varde.questionnaire/1"] = Field(default="varde.questionnaire/1", alias="schema")
    gateway_id: Annotated[str, StringConstraints(pattern=GATEWAY_ID_PATTERN.pattern)]
    sent_at: AwareDatetime
    responses: tuple[QuestionnaireResponse, ...] = Field(min_length=1, max_length=MAX_RESPONSES_PER_ENVELOPE)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


@dataclass(frozen=True, slots=True)
class Score:
    answers: tuple[Answer, ...]
    total: int
    zone: Zone


class AnswerError(ValueError):
    """The answers do not fit the questionnaire (a question left out, an unknown question or option)."""


def score_answers(questionnaire: Questionnaire, chosen: Mapping[str, str]) -> Score:
    """Score `{question_id: option_id}` against the questionnaire; every question must be answered once."""
    unknown = sorted(set(chosen) - {q.id for q in questionnaire.questions})
    if unknown:
        raise AnswerError(f"questionnaire {questionnaire.id}: unknown question(s) {', '.join(unknown)}")
    answers: list[Answer] = []
    for question in questionnaire.questions:
        option_id = chosen.get(question.id)
        if option_id is None:
            raise AnswerError(f"questionnaire {questionnaire.id}: question {question.id} is not answered")
        option = next((o for o in question.options if o.id == option_id), None)
        if option is None:
            raise AnswerError(f"questionnaire {questionnaire.id}: {option_id!r} is not an option of {question.id}")
        answers.append(Answer(question=question.id, option=option.id, score=option.score))
    total = sum(a.score for a in answers)
    return Score(tuple(answers), total, questionnaire.zone_of(total))


def build_questionnaire_envelope(gateway_id: str, bodies: list[bytes], sent_at: str) -> bytes:
    """The envelope around responses that are already wire JSON (the edge's durable queue holds them so)."""
    head = json.dumps(
        {"schema": QUESTIONNAIRE_SCHEMA, "gateway_id": gateway_id, "sent_at": sent_at}, separators=(",", ":")
    )
    return head[:-1].encode() + b',"responses":[' + b",".join(bodies) + b"]}"


def parse_questionnaire_envelope(payload: bytes, topic_gateway_id: str) -> QuestionnaireEnvelope:
    """Parse raw bytes from `varde/v1/gw/{topic_gateway_id}/questionnaires`; faults raise `EnvelopeError`."""
    doc = load_wire_json(payload)
    if not isinstance(doc, dict) or doc.get("schema") != QUESTIONNAIRE_SCHEMA:
        schema = doc.get("schema") if isinstance(doc, dict) else None
        raise EnvelopeError(Reason.WRONG_SCHEMA, f"schema {schema!r} is not {QUESTIONNAIRE_SCHEMA!r}")
    try:
        envelope = QuestionnaireEnvelope.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise EnvelopeError(Reason.BAD_ENVELOPE, f"{where}: {str(err['msg']).removeprefix('Value error, ')}") from None
    if envelope.gateway_id != topic_gateway_id:
        raise EnvelopeError(
            Reason.GATEWAY_MISMATCH,
            f"payload gateway_id {envelope.gateway_id!r} differs from topic gateway {topic_gateway_id!r}",
        )
    return envelope


__all__ = [
    "MAX_RESPONSES_PER_ENVELOPE",
    "QUESTIONNAIRE_SCHEMA",
    "Answer",
    "AnswerError",
    "QuestionnaireEnvelope",
    "QuestionnaireResponse",
    "Score",
    "build_questionnaire_envelope",
    "parse_questionnaire_envelope",
    "score_answers",
]
