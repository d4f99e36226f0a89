"""Artefacts end to end on the private stack (edge agent → MQTT → ingest → PostgreSQL → API → MQTT → patient page):
a single yellow reading asks the patient's page to measure again instead of raising an alarm; a confirming repeat
opens the alarm, an in-range repeat clears the request, no repeat in time opens it at the timeout, and a red
reading alarms at once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, expect

from rules_engine.repeat_store import expire_due
from tests.patient.gateway import RunningAgent, gateway_config, open_page, reading, wait_for
from tests.stack_plugin import Tenant
from vitals import Kind

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _request(db: psycopg.Connection[Any], patient: Any, rule: str) -> Any:
    return db.execute(
        "SELECT state, due_at - measured_at, alarm_id, repeat_value, sent_at IS NOT NULL FROM repeat_requests "
        "WHERE patient_id = %s AND rule = %s ORDER BY requested_at DESC LIMIT 1",
        (patient, rule),
    ).fetchone()


def _alarm(db: psycopg.Connection[Any], patient: Any, rule: str) -> Any:
    return db.execute(
        "SELECT id, severity, last_value, explanation_nb, explanation_en, count, first_value FROM alarms "
        "WHERE patient_id = %s AND rule = %s AND state <> 'resolved'",
        (patient, rule),
    ).fetchone()


def _events(db: psycopg.Connection[Any], alarm_id: Any) -> list[str]:
    rows = db.execute("SELECT event FROM alarm_events WHERE alarm_id = %s ORDER BY id", (alarm_id,)).fetchall()
    return [r[0] for r in rows]


def test_single_yellow_reading_asks_the_patient_page_to_measure_again_and_only_a_confirmation_or_the_timeout_alarms(
    stack: dict[str, Any],
    make_tenant: Callable[..., Tenant],
    db: psycopg.Connection[Any],
    browser: Browser,
    tmp_path: Path,
) -> None:
    tenant = make_tenant(protocol="general")  # SpO2 yellow below 94, red below 92; pulse yellow above 110
    gateway, patient = tenant.gateways[0], tenant.patients[0]
    config = gateway_config(tmp_path, gateway.host, gateway.port, gateway.gateway_id, gateway.password)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=15)  # readings are never from the future
    with RunningAgent(config) as gw:
        wait_for(lambda: gw.state()["connected"], timeout=20, what="the gateway online")

        # 1. One yellow SpO2: a request, no alarm, and the page asks in plain words.
        gw.agent.accept([reading(Kind.SPO2, 93, measured_at=start)])
        requested = wait_for(lambda: _request(db, patient, "threshold.spo2.low"), timeout=30, what="the request")
        assert requested[:2] == ("requested", timedelta(minutes=30))  # repeat_timeout_minutes' default
        assert _alarm(db, patient, "threshold.spo2.low") is None
        asks = wait_for(lambda: gw.state()["repeat"], timeout=20, what="the request on the patient page")
        assert [(a["kind"], a["nb"]) for a in asks] == [
            ("spo2", "Mål oksygenet i blodet en gang til. Sitt stille i fem minutter først.")
        ]
        assert asks[0]["en"] == "Please measure the oxygen in your blood once more. Sit still for five minutes first."
        wait_for(lambda: _request(db, patient, "threshold.spo2.low")[4], timeout=10, what="the request marked sent")
        with open_page(browser, gw.url) as page:
            expect(page.locator("#repeat h2")).to_have_text("Mål på nytt")
            page.locator('[data-lang="en"]').click()
            expect(page.locator("#repeat h2")).to_have_text("Please measure again")

            # 2. The repeat is yellow again: the alarm opens and says it was confirmed; the page stops asking.
            gw.agent.accept([reading(Kind.SPO2, 93, measured_at=start + timedelta(minutes=4))])
            expect(page.locator("#repeat")).to_be_empty()
        confirmed = wait_for(lambda: _alarm(db, patient, "threshold.spo2.low"), timeout=30, what="the alarm")
        alarm_id, severity, value, nb, en, count, first_value = confirmed
        assert (severity, value, count, first_value) == ("yellow", 93.0, 2, 93.0)
        assert nb.endswith("Bekreftet ved ny måling (første måling 93 %).")
        assert en.endswith("Confirmed by a repeat measurement (first reading 93%).")
        assert _request(db, patient, "threshold.spo2.low")[:4] == ("confirmed", timedelta(minutes=30), alarm_id, 93.0)
        assert _events(db, alarm_id) == ["opened", "repeat_confirmed"]

        # 3. A yellow pulse, then an in-range repeat: cleared, no alarm.
        gw.agent.accept([reading(Kind.PULSE_RATE, 115, measured_at=start + timedelta(minutes=6))])
        wait_for(lambda: _request(db, patient, "threshold.pulse_rate.high"), timeout=30, what="the pulse request")
        gw.agent.accept([reading(Kind.PULSE_RATE, 78, measured_at=start + timedelta(minutes=9))])
        cleared = wait_for(
            lambda: (r := _request(db, patient, "threshold.pulse_rate.high")) and r[0] != "requested" and r,
            timeout=30,
            what="the pulse request decided",
        )
        assert cleared[:4] == ("cleared", timedelta(minutes=30), None, 78.0)
        assert _alarm(db, patient, "threshold.pulse_rate.high") is None

        # 4. A low glucose and no repeat: the rules leader's job opens the alarm at the timeout.
        gw.agent.accept([reading(Kind.GLUCOSE, 3.5, measured_at=start + timedelta(minutes=10))])
        wait_for(lambda: _request(db, patient, "threshold.glucose.low"), timeout=30, what="the glucose request")
        assert _alarm(db, patient, "threshold.glucose.low") is None
        db.execute(  # 40 minutes pass
            "UPDATE repeat_requests SET measured_at = measured_at - interval '40 minutes', "
            "due_at = due_at - interval '40 minutes' WHERE patient_id = %s AND state = 'requested'",
            (patient,),
        )
        expire_due(db)
        expired = wait_for(lambda: _alarm(db, patient, "threshold.glucose.low"), timeout=10, what="the expired alarm")
        assert expired[1:3] == ("yellow", 3.5)
        assert expired[3].endswith("Ingen ny måling innen 30 min.") and expired[4].endswith("No repeat within 30 min.")
        assert _request(db, patient, "threshold.glucose.low")[0] == "expired"
        assert _events(db, expired[0]) == ["opened", "repeat_expired"]

        # 5. Red never waits.
        gw.agent.accept([reading(Kind.BODY_TEMPERATURE, 34.6, measured_at=start + timedelta(minutes=12))])
        red = wait_for(lambda: _alarm(db, patient, "threshold.body_temperature.low"), timeout=30, what="the red alarm")
        assert red[1:3] == ("red", 34.6)
        assert _request(db, patient, "threshold.body_temperature.low") is None
