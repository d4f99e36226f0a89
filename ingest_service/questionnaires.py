"""Questionnaire responses from `varde/v1/gw/{gateway_id}/questionnaires`: judged like readings (topic, registered
and enabled gateway, strict envelope), stored once per response id, scored by the rules in the same transaction.

A refused message or response goes to `rejected_messages` with its reason, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

from ingest_service.judge import whole_message
from ingest_service.writer import write_batch
from rules_engine.questionnaires import StoredResponse, store_responses
from store import gateways
from store.dead_letters import DeadLetter
from store.gateways import GatewayInfo
from store.questionnaires import ResponseRow
from vitals import FUTURE_SKEW, EnvelopeError, Reason, parse_questionnaire_envelope

QuestionnaireRulesHook = Callable[[Connection[Any], Sequence[StoredResponse]], Sequence[UUID]]


@dataclass(slots=True)
class QuestionnaireJudgement:
    gateway_id: str | None
    rows: list[ResponseRow] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def judge_questionnaires(
    topic: str, gateway_id: str, payload: bytes, received_at: datetime, lookup: Any
) -> QuestionnaireJudgement:
    """Validate one questionnaire message from `gateway_id` (its topic already parsed by the worker's routing);
    `lookup(gateway_id)` returns GatewayInfo or None."""
    info: GatewayInfo | None = lookup(gateway_id)
    refusal: tuple[Reason, str] | None = None
    if info is None:
        refusal = Reason.UNKNOWN_GATEWAY, f"gateway {gateway_id!r} is not registered"
    elif info.patient_id is None:
        refusal = Reason.UNKNOWN_GATEWAY, f"gateway {gateway_id!r} has no patient"
    elif not info.enabled:
        refusal = Reason.DISABLED_GATEWAY, f"gateway {gateway_id!r} is disabled"
    if refusal is not None or info is None or info.patient_id is None:
        reason, detail = refusal or (Reason.UNKNOWN_GATEWAY, "")
        return QuestionnaireJudgement(gateway_id, dead=[whole_message(topic, gateway_id, reason, detail, payload)])
    patient_id = info.patient_id
    try:
        envelope = parse_questionnaire_envelope(payload, gateway_id)
    except EnvelopeError as exc:
        return QuestionnaireJudgement(
            gateway_id, dead=[whole_message(topic, gateway_id, exc.reason, exc.detail, payload)]
        )
    judgement = QuestionnaireJudgement(gateway_id)
    for response in envelope.responses:
        if response.answered_at > received_at + FUTURE_SKEW:
            detail = f"response {response.id}: answered_at {response.answered_at.isoformat()} is in the future"
            judgement.dead.append(
                whole_message(topic, gateway_id, Reason.FUTURE_TIME, detail, response.model_dump_json().encode())
            )
            continue
        judgement.rows.append(
            ResponseRow(
                response.id,
                patient_id,
                gateway_id,
                response.questionnaire,
                response.plan_version,
                response.answered_at,
                received_at,
                {a.question: a.option for a in response.answers},
                response.score,
            )
        )
    return judgement


def write_responses(
    conn: Connection[Any],
    rows: Sequence[ResponseRow],
    dead: Sequence[DeadLetter],
    rules: QuestionnaireRulesHook | None = None,
) -> tuple[int, int]:
    """One transaction: store new responses (a known id is skipped), dead letters, rules; returns (stored, alarms)."""
    with conn.transaction():
        heard_from = [r.gateway_id for r in rows if r.gateway_id is not None]
        if heard_from:
            gateways.mark_seen(conn, heard_from)
        if dead:
            write_batch(conn, [], dead)
        stored, alarm_ids = store_responses(conn, rows, rules)
    return len(stored), len(alarm_ids)
