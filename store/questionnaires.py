"""The one writer of `questionnaire_responses`: responses from the gateway (ingest) and from the patient app (the
API) are inserted here, once per response id, and then scored by `rules_engine.questionnaires` in the caller's
transaction (the score and zone written back by `save_scores`); and what the patient app shows of them (today's
answers, the zone of one) and the clinician's list of a patient's responses (`StoredResponse`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import class_row, scalar_row


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


def save_scores(
    conn: Connection[Any], response_ids: Sequence[UUID], scores: Sequence[int], zones: Sequence[str | None]
) -> None:
    """The score and zone the rules gave each response (`rules_engine.questionnaires`)."""
    conn.execute(
        "UPDATE questionnaire_responses r SET score = v.score, zone = v.zone "
        "FROM unnest(%s::uuid[], %s::int[], %s::text[]) AS v(id, score, zone) WHERE r.id = v.id",
        (list(response_ids), list(scores), list(zones)),
    )


@dataclass(frozen=True, slots=True)
class LatestAnswer:
    """The newest response to a questionnaire: when, its zone, and who answered (a gateway, or in the app)."""

    questionnaire: str
    answered_at: datetime
    zone: str | None
    via_gateway: bool
    answered_by: str | None
    """The citizen's name, for an answer in the app."""
    by_relative: bool


def latest_answers_since(conn: Connection[Any], patient_id: UUID, since: datetime) -> list[LatestAnswer]:
    """The patient's newest response to each questionnaire answered since `since`."""
    with conn.cursor(row_factory=class_row(LatestAnswer)) as cur:
        return cur.execute(
            "SELECT DISTINCT ON (r.questionnaire) r.questionnaire, r.answered_at, r.zone, "
            "r.gateway_id IS NOT NULL AS via_gateway, c.display_name AS answered_by, "
            "r.proxy_id IS NOT NULL AS by_relative FROM questionnaire_responses r "
            "LEFT JOIN citizens c ON c.id = r.answered_by_citizen "
            "WHERE r.patient_id = %s AND r.answered_at >= %s ORDER BY r.questionnaire, r.answered_at DESC",
            (patient_id, since),
        ).fetchall()


def answered_since(conn: Connection[Any], patient_id: UUID, since: datetime) -> set[str]:
    """The questionnaires the patient answered since `since`."""
    with conn.cursor(row_factory=scalar_row) as cur:
        return set(
            cur.execute(
                "SELECT DISTINCT questionnaire FROM questionnaire_responses WHERE patient_id = %s "
                "AND answered_at >= %s",
                (patient_id, since),
            ).fetchall()
        )


def zone_of(conn: Connection[Any], response_id: UUID) -> str | None:
    """The zone the rules scored a stored response in (None when not scored into one, or not stored)."""
    with conn.cursor(row_factory=scalar_row) as cur:
        zone: str | None = cur.execute(
            "SELECT zone FROM questionnaire_responses WHERE id = %s", (response_id,)
        ).fetchone()
    return zone


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A stored response as the clinician sees it, with the score and zone the cloud gave it."""

    id: UUID
    questionnaire: str
    plan_version: int
    answered_at: datetime
    received_at: datetime
    gateway_id: str | None
    answers: dict[str, str]
    score: int
    zone: str | None
    answered_by: str | None
    """The citizen's name, for an answer in the app."""
    by_relative: bool


def responses_of(
    conn: Connection[Any], patient_id: UUID, questionnaire: str | None, limit: int
) -> list[StoredResponse]:
    """Up to `limit` of the patient's responses (to `questionnaire` only, when given), newest first."""
    with conn.cursor(row_factory=class_row(StoredResponse)) as cur:
        return cur.execute(
            "SELECT r.id, r.questionnaire, r.plan_version, r.answered_at, r.received_at, r.gateway_id, r.answers, "
            "r.score, r.zone, c.display_name AS answered_by, r.proxy_id IS NOT NULL AS by_relative "
            "FROM questionnaire_responses r LEFT JOIN citizens c ON c.id = r.answered_by_citizen "
            "WHERE r.patient_id = %s AND (%s::text IS NULL OR r.questionnaire = %s) "
            "ORDER BY r.answered_at DESC, r.id LIMIT %s",
            (patient_id, questionnaire, questionnaire, limit),
        ).fetchall()
