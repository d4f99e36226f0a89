"""The one writer of `questionnaire_responses`: responses from the gateway (ingest) and from the patient app (the
API) are inserted here, once per response id, and then scored by `rules_engine.questionnaires` in the caller's
transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection


@dataclass(frozen=True, slots=True)
class ResponseRow:
    """A response to store: from a gateway (`gateway_id`), or answered in the patient app by a citizen
    (`citizen_id`, and `proxy_id` when a relative answered through a proxy)."""

    id: UUID
    patient_id: UUID
    gateway_id: str | None
    questionnaire: str
    plan_version: int
    answered_at: datetime
    received_at: datetime
    answers: dict[str, str]
    """question id → option id"""
    reported_score: int
    citizen_id: UUID | None = None
    proxy_id: UUID | None = None


def insert_responses(conn: Connection[Any], rows: Sequence[ResponseRow]) -> set[UUID]:
    """Insert the responses not stored yet (a known id is skipped); returns the ids inserted now. The score starts
    as the reported one until the rules score it again."""
    if not rows:
        return set()
    inserted = conn.execute(
        "INSERT INTO questionnaire_responses (id, patient_id, gateway_id, questionnaire, plan_version, "
        "answered_at, received_at, answers, reported_score, answered_by_citizen, proxy_id, score) "
        "SELECT v.*, v.reported_score FROM unnest(%s::uuid[], %s::uuid[], %s::text[], %s::text[], %s::int[], "
        "%s::timestamptz[], %s::timestamptz[], %s::jsonb[], %s::int[], %s::uuid[], %s::uuid[]) AS v(id, patient_id, "
        "gateway_id, questionnaire, plan_version, answered_at, received_at, answers, reported_score, "
        "answered_by_citizen, proxy_id) "
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        (
            [r.id for r in rows],
            [r.patient_id for r in rows],
            [r.gateway_id for r in rows],
            [r.questionnaire for r in rows],
            [r.plan_version for r in rows],
            [r.answered_at for r in rows],
            [r.received_at for r in rows],
            [json.dumps(r.answers) for r in rows],
            [r.reported_score for r in rows],
            [r.citizen_id for r in rows],
            [r.proxy_id for r in rows],
        ),
    ).fetchall()
    return {r[0] for r in inserted}
