"""Questionnaires in the cloud: the broker lets a gateway publish only its own responses, ingest dead-letters
what it cannot trust, and the scheduler's missed-questionnaire rule opens one `missed` alarm per patient and day."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from rules_engine.questionnaires import check_missed_questionnaires
from tests.patient.test_stack_end_to_end import _activate
from tests.stack_plugin import Tenant, publish, wait_for
from vitals import QuestionnaireEnvelope, QuestionnaireResponse, questionnaires_topic
from vitals.questionnaire import Answer

pytestmark = pytest.mark.integration
OSLO = ZoneInfo("Europe/Oslo")
RULE = "questionnaire.hf-symptoms.missed"


def _envelope(gateway_id: str, answered_at: datetime | None = None) -> QuestionnaireEnvelope:
    response = QuestionnaireResponse(
        id=uuid.uuid4(),
        questionnaire="hf-symptoms",
        plan_version=1,
        answered_at=answered_at or datetime.now(UTC).replace(microsecond=0),
        answers=(Answer(question="breath", option="no", score=0), Answer(question="swelling", option="no", score=0)),
        score=0,
        zone="green",
    )
    return QuestionnaireEnvelope(gateway_id=gateway_id, sent_at=datetime.now(UTC), responses=(response,))


def test_a_gateway_may_publish_only_its_own_responses_and_a_mismatch_is_dead_lettered(
    make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(patients=2)
    a, b = tenant.gateways
    assert publish(a, questionnaires_topic(b.gateway_id), _envelope(b.gateway_id).to_json()) >= 128
    assert publish(a, questionnaires_topic(a.gateway_id), _envelope(b.gateway_id).to_json()) < 128

    def refused() -> Any:
        return db.execute(
            "SELECT reason FROM rejected_messages WHERE topic = %s", (questionnaires_topic(a.gateway_id),)
        ).fetchall()

    assert wait_for(refused, what="the dead letter") == [("gateway_mismatch",)]
    stored = db.execute(
        "SELECT count(*) FROM questionnaire_responses WHERE patient_id = ANY(%s)", (tenant.patients,)
    ).fetchone()
    assert stored == (0,)


def test_a_response_without_a_known_plan_is_stored_unzoned_and_raises_no_alarm(
    make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant()
    gateway = tenant.gateways[0]
    envelope = _envelope(gateway.gateway_id)
    assert publish(gateway, questionnaires_topic(gateway.gateway_id), envelope.to_json()) < 128
    assert publish(gateway, questionnaires_topic(gateway.gateway_id), envelope.to_json()) < 128  # a re-send

    def rows() -> Any:
        return db.execute(
            "SELECT id, score, zone FROM questionnaire_responses WHERE patient_id = %s", (tenant.patients[0],)
        ).fetchall()

    assert wait_for(rows, what="the response") == [(envelope.responses[0].id, 0, None)]
    alarms = db.execute("SELECT count(*) FROM alarms WHERE patient_id = %s", (tenant.patients[0],)).fetchone()
    assert alarms == (0,)


def test_an_unanswered_questionnaire_opens_one_missed_alarm_per_day(
    make_tenant: Callable[..., Tenant], api_url: str, db: psycopg.Connection[Any]
) -> None:
    answering, forgetting = make_tenant(), make_tenant()
    for tenant in (answering, forgetting):
        _activate(api_url, tenant)
    tomorrow = (datetime.now(OSLO) + timedelta(days=1)).replace(second=0, microsecond=0)
    db.execute(
        "INSERT INTO questionnaire_responses (id, patient_id, gateway_id, questionnaire, plan_version, answered_at, "
        "answers, reported_score, score, zone) VALUES (%s, %s, %s, 'hf-symptoms', 1, %s, '{}', 0, 0, 'green')",
        (uuid.uuid4(), answering.patients[0], answering.gateways[0].gateway_id, tomorrow.replace(hour=10)),
    )
    ours = [answering.patients[0], forgetting.patients[0]]

    def missed() -> dict[Any, tuple[str, int, str]]:
        rows = db.execute(
            "SELECT patient_id, severity, count, details->>'date' FROM alarms WHERE rule = %s AND patient_id = ANY(%s)",
            (RULE, ours),
        ).fetchall()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    check_missed_questionnaires(db, now=tomorrow.replace(hour=11, minute=59))
    assert missed() == {}
    opened = check_missed_questionnaires(db, now=tomorrow.replace(hour=12, minute=1))
    assert missed() == {forgetting.patients[0]: ("missed", 1, tomorrow.date().isoformat())}
    assert len(opened) >= 1
    (alarm_id,) = db.execute(
        "SELECT id FROM alarms WHERE rule = %s AND patient_id = %s", (RULE, forgetting.patients[0])
    ).fetchone() or (None,)
    events = db.execute("SELECT event, data->>'severity' FROM alarm_events WHERE alarm_id = %s", (alarm_id,))
    assert events.fetchall() == [("opened", "missed")]
    check_missed_questionnaires(db, now=tomorrow.replace(hour=18))
    assert missed()[forgetting.patients[0]][1] == 1  # the same day again changes nothing

    day_after = tomorrow + timedelta(days=1)
    check_missed_questionnaires(db, now=day_after.replace(hour=13))
    assert missed() == {
        forgetting.patients[0]: ("missed", 2, day_after.date().isoformat()),
        answering.patients[0]: ("missed", 1, day_after.date().isoformat()),
    }
    explanation = db.execute(
        "SELECT explanation_nb FROM alarms WHERE rule = %s AND patient_id = %s", (RULE, forgetting.patients[0])
    ).fetchone()
    assert explanation == ("Spørreskjema «Hvordan har du det i dag?» er ikke besvart innen kl. 12:00.",)
