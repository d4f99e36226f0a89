"""A step-up in force across plan changes (a new version keeps it, a version without it ends it, retiring ends all),
the missed-questionnaire rule following the stepped-up deadline, and the courier leaving a change due when the
broker cannot take it."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from clinician_api.gateway_link import GatewayPublisher
from clinician_api.schedule_courier import deliver_due
from rules_engine.alarms import AlarmUpsert, upsert_alarms
from rules_engine.questionnaires import check_missed_questionnaires
from store.settings import Settings
from tests.patient.plans import plan_body
from tests.stack_plugin import Tenant, login

pytestmark = pytest.mark.integration
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
STEP = {
    "kind": "body_weight",
    "zone": "yellow",
    "schedule": [{"kind": "body_weight", "deadline": d, "weekdays": EVERY_DAY} for d in ("09:00", "20:00")],
    "questionnaires": [{"id": "hf-symptoms", "deadline": "18:00"}],
}


def _activate(api_url: str, headers: dict[str, str], patient: Any, **overrides: Any) -> int:
    body = plan_body(**overrides)
    body["questionnaires"][0]["deadline"] = None
    plans = f"{api_url}/api/v1/patients/{patient}/plans"
    draft = httpx.post(plans, headers=headers, json=body, timeout=30)
    assert draft.status_code == 201, draft.text
    version = int(draft.json()["version"])
    assert httpx.post(f"{plans}/{version}/activate", headers=headers, timeout=30).status_code == 200
    return version


def _yellow_weight(db: psycopg.Connection[Any], patient: Any) -> None:
    alarm = AlarmUpsert(
        patient_id=patient, rule="threshold.body_weight.high", kind="body_weight", severity="yellow", value=83.0,
        limit=82.0, count=1, reading_id=None, measured_at=datetime.now(UTC), window_start=None, window_end=None,
        explanation_nb="Vekt 83 kg", explanation_en="Weight 83 kg",
    )  # fmt: skip
    with psycopg.connect(db.info.dsn, password=db.info.password) as conn, conn.transaction():
        upsert_alarms(conn, [alarm], "rules")


def _view(api_url: str, headers: dict[str, str], patient: Any) -> dict[str, Any]:
    return httpx.get(f"{api_url}/api/v1/patients/{patient}/schedule", headers=headers, timeout=30).json()  # type: ignore[no-any-return]


def test_step_up_follows_plan_versions_and_the_questionnaire_deadline_in_force(
    make_tenant: Any, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant()
    patient = tenant.patients[0]
    nurse = login(api_url, tenant.nurse, tenant.nurse_password)
    _activate(api_url, nurse, patient, step_ups=[STEP])
    _yellow_weight(db, patient)
    first = _view(api_url, nurse, patient)
    assert first["stepped_up"] and [e["deadline"] for e in first["schedule"] if e["kind"] == "body_weight"] == [
        "09:00",
        "20:00",
    ]

    # The questionnaire asked daily while stepped up is missed at its stepped-up deadline (tomorrow 18:00 has passed).
    tomorrow = datetime.now(ZoneInfo("Europe/Oslo")).date() + timedelta(days=1)
    evening = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 18, 30, tzinfo=ZoneInfo("Europe/Oslo"))
    with psycopg.connect(db.info.dsn, password=db.info.password) as conn:
        check_missed_questionnaires(conn, evening)
    rules = db.execute("SELECT rule FROM alarms WHERE patient_id = %s", (patient,)).fetchall()
    assert ("questionnaire.hf-symptoms.missed",) in rules

    # A new version with the same step-up keeps it; one without it ends it; the gateway's revision only grows.
    _activate(api_url, nurse, patient, step_ups=[STEP], diagnosis="I50.1")
    kept = _view(api_url, nurse, patient)
    assert kept["stepped_up"] and kept["steps"][0]["since"] == first["steps"][0]["since"]
    assert kept["revision"] > first["revision"] and kept["published"]
    _activate(api_url, nurse, patient)
    ended = _view(api_url, nurse, patient)
    assert not ended["stepped_up"] and ended["revision"] > kept["revision"]
    assert [e["deadline"] for e in ended["schedule"] if e["kind"] == "body_weight"] == ["09:00"]
    assert [c["change"] for c in ended["history"]] == ["ended", "stepped_up"]
    audited = db.execute(
        "SELECT username FROM audit_log WHERE patient_id = %s AND action = 'schedule_ended'", (patient,)
    ).fetchall()
    assert audited == [(tenant.nurse,)]

    # Retiring the active plan ends every step-up and the schedule in force.
    version = _activate(api_url, nurse, patient, step_ups=[STEP])
    _yellow_weight(db, patient)
    assert _view(api_url, nurse, patient)["stepped_up"]
    retired = httpx.post(f"{api_url}/api/v1/patients/{patient}/plans/{version}/retire", headers=nurse, timeout=30)
    assert retired.status_code == 200, retired.text
    gone = _view(api_url, nurse, patient)
    assert gone["plan_version"] is None and gone["history"][0]["change"] == "ended"


def test_a_schedule_the_broker_cannot_take_stays_due_with_the_error(
    make_tenant: Any, api_url: str, db: psycopg.Connection[Any], settings: Settings
) -> None:
    tenant: Tenant = make_tenant()
    patient = tenant.patients[0]
    nurse = login(api_url, tenant.nurse, tenant.nurse_password)
    _activate(api_url, nurse, patient, step_ups=[STEP])
    _yellow_weight(db, patient)
    with socket.socket() as probe:  # a port nothing listens on: the broker is unreachable
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = GatewayPublisher(settings.model_copy(update={"mqtt_port": port}), timeout=2)
    with psycopg.connect(db.info.dsn, password=db.info.password) as conn, conn.transaction() as outer:
        # A change the stack's own courier cannot see (uncommitted), delivered through the unreachable broker.
        conn.execute("UPDATE patient_schedules SET revision = revision + 1 WHERE patient_id = %s", (patient,))
        assert deliver_due(conn, unreachable) == 0
        row = conn.execute(
            "SELECT published_revision < revision, publish_error FROM patient_schedules WHERE patient_id = %s",
            (patient,),
        ).fetchone()
        assert row is not None and row[0] and "cannot reach the broker" in row[1]
        raise psycopg.Rollback(outer)  # leave the stack as it was
