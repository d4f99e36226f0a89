"""Questionnaire rules: a response's score against its plan's thresholds, and questionnaires left unanswered.

- `evaluate_responses` runs in the ingest transaction on the responses just stored: it scores the answers again
  with `vitals.score_answers` against the plan version the patient answered (else the active plan), stores the
  score and zone, and opens or updates the alarm `questionnaire.<id>.score` (yellow or red, as the plan's
  `yellow_from`/`red_from` say). A green answer marks that alarm back in range; any answer marks the `missed` one.
- `store_responses` is how both sources of answers store them: the gateway's (ingest) and the patient app's (the
  API); it inserts each response once, scores the new ones with `evaluate_responses` and notifies the dashboards.
- `check_missed_questionnaires` runs on the scheduler's tick: one set-based statement opens
  `questionnaire.<id>.missed` for every active plan whose questionnaire deadline has passed today (in the plan's time
  zone) without an answer since local midnight; once per local day per alarm. The deadlines are those in force: a
  step-up may give a questionnaire a daily deadline (`rules_engine.schedules`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from pydantic import ValidationError

from rules_engine.alarms import AlarmUpsert, upsert_alarms
from rules_engine.metrics import count_alarm
from store.alarms import mark_rules_back_in_range, raise_missed_questionnaires
from store.events import notify_changes
from store.plans import versions_or_active
from store.questionnaires import ResponseRow, insert_responses, save_scores
from vitals import PlanContent, score_answers
from vitals.plan import Questionnaire
from vitals.questionnaire import AnswerError

log = logging.getLogger("varde.rules")


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: UUID
    patient_id: UUID
    questionnaire: str
    plan_version: int
    answered_at: datetime
    answers: dict[str, str]
    """question id → option id"""
    reported_score: int


@dataclass(frozen=True, slots=True)
class ScoredResponse:
    response: StoredResponse
    questionnaire: Questionnaire | None
    score: int
    zone: str | None


def _plans(conn: Connection[Any], stored: Sequence[StoredResponse]) -> dict[tuple[UUID, int | None], PlanContent]:
    """The plan versions answered, and each patient's active plan under the key (patient, None)."""
    rows = versions_or_active(conn, [(r.patient_id, r.plan_version) for r in stored])
    plans: dict[tuple[UUID, int | None], PlanContent] = {}
    for row in rows:
        try:
            plan = PlanContent.model_validate(row.body)
        except ValidationError:
            log.warning("plan_unreadable patient=%s version=%s", row.patient_id, row.version)
            continue
        plans[(row.patient_id, row.version)] = plan
        if row.status == "active":
            plans[(row.patient_id, None)] = plan
    return plans


def score_responses(conn: Connection[Any], stored: Sequence[StoredResponse]) -> list[ScoredResponse]:
    plans = _plans(conn, stored)
    scored: list[ScoredResponse] = []
    for r in stored:
        plan = plans.get((r.patient_id, r.plan_version)) or plans.get((r.patient_id, None))
        questionnaire = next((q for q in plan.questionnaires if q.id == r.questionnaire), None) if plan else None
        if questionnaire is None:
            log.warning("questionnaire_unknown patient=%s questionnaire=%s", r.patient_id, r.questionnaire)
            scored.append(ScoredResponse(r, None, r.reported_score, None))
            continue
        try:
            score = score_answers(questionnaire, r.answers)
        except AnswerError as exc:
            log.warning("questionnaire_answers_unscorable response=%s error=%s", r.id, exc)
            scored.append(ScoredResponse(r, None, r.reported_score, None))
            continue
        scored.append(ScoredResponse(r, questionnaire, score.total, score.zone))
    return scored


def _candidate(s: ScoredResponse) -> AlarmUpsert:
    q = s.questionnaire
    assert q is not None and s.zone in ("yellow", "red")
    limit = q.red_from if s.zone == "red" else q.yellow_from
    return AlarmUpsert(
        patient_id=s.response.patient_id,
        rule=f"questionnaire.{q.id}.score",
        kind=None,
        severity=s.zone,
        value=float(s.score),
        limit=float(limit),
        count=1,
        reading_id=None,
        measured_at=s.response.answered_at,
        window_start=None,
        window_end=None,
        explanation_nb=(
            f"Spørreskjema «{q.title_nb}»: poengsum {s.score} av {q.max_score} "
            f"(gul fra {q.yellow_from}, rød fra {q.red_from})."
        ),
        explanation_en=(
            f"Questionnaire “{q.title_en}”: score {s.score} of {q.max_score} "
            f"(yellow from {q.yellow_from}, red from {q.red_from})."
        ),
        details={"questionnaire": q.id, "response_id": str(s.response.id), "plan_version": s.response.plan_version},
    )


def evaluate_responses(conn: Connection[Any], stored: Sequence[StoredResponse]) -> list[UUID]:
    """Score the responses just stored in this transaction and raise their alarms; returns changed alarm ids."""
    if not stored:
        return []
    scored = score_responses(conn, stored)
    save_scores(conn, [s.response.id for s in scored], [s.score for s in scored], [s.zone for s in scored])
    candidates = [_candidate(s) for s in scored if s.zone in ("yellow", "red")]
    latest: dict[tuple[UUID, str], ScoredResponse] = {}
    for s in sorted(scored, key=lambda s: s.response.answered_at):
        latest[(s.response.patient_id, s.response.questionnaire)] = s
    changed = upsert_alarms(conn, candidates, "questionnaire")
    back = [(p, f"questionnaire.{q}.score") for (p, q), s in latest.items() if s.zone == "green"]
    back += [(p, f"questionnaire.{q}.missed") for (p, q) in latest]
    return changed + mark_rules_back_in_range(conn, back, "questionnaire")


ResponseRules = Callable[[Connection[Any], Sequence[StoredResponse]], Sequence[UUID]]


def store_responses(
    conn: Connection[Any], rows: Sequence[ResponseRow], rules: ResponseRules | None = evaluate_responses
) -> tuple[list[StoredResponse], Sequence[UUID]]:
    """In the caller's transaction: insert the responses not stored yet, score those with `rules` (raising their
    alarms) and tell the dashboards; returns the responses stored now and the alarms changed."""
    new_ids = insert_responses(conn, rows)
    stored = [
        StoredResponse(r.id, r.patient_id, r.questionnaire, r.plan_version, r.answered_at, r.answers, r.reported_score)
        for r in rows
        if r.id in new_ids
    ]
    alarm_ids: Sequence[UUID] = rules(conn, stored) if stored and rules is not None else ()
    notify_changes(conn, "questionnaire", (), len(stored))
    return stored, alarm_ids


def check_missed_questionnaires(conn: Connection[Any], now: datetime | None = None) -> list[UUID]:
    """Open (or count one more day on) a `missed` alarm per unanswered questionnaire past its deadline today."""
    with conn.transaction():
        raised = raise_missed_questionnaires(conn, now or datetime.now().astimezone())
    for r in raised:
        count_alarm("questionnaire.*.missed", "missed", r.opened)
    return [r.id for r in raised]
