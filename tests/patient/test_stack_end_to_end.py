"""End to end on the private stack (PostgreSQL, Mosquitto, ingest, rules, API): a plan activated through the API
reaches a running edge agent; with the broker stopped the patient page shows the red-zone advice of a reading within
a second and takes a questionnaire answer; when the broker is back, both are stored and evaluated in the cloud."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, expect

from store.settings import varde_home
from tests.patient.gateway import RunningAgent, gateway_config, open_page, reading, wait_for
from tests.patient.plans import plan_body
from tests.stack_plugin import Tenant, login
from varde import stack as stack_mod
from vitals import Kind

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _activate(api_url: str, tenant: Tenant) -> int:
    headers = login(api_url, tenant.nurse, tenant.nurse_password)
    url = f"{api_url}/api/v1/patients/{tenant.patients[0]}/plans"
    draft = httpx.post(url, headers=headers, json=plan_body(), timeout=30)
    assert draft.status_code == 201, draft.text
    version = int(draft.json()["version"])
    activated = httpx.post(f"{url}/{version}/activate", headers=headers, timeout=30)
    assert activated.status_code == 200, activated.text
    assert activated.json()["published_to"] == [tenant.gateways[0].gateway_id]
    return version


def test_plan_from_the_api_gives_offline_advice_and_the_cloud_evaluates_reading_and_answer_after_the_outage(
    stack: dict[str, Any],
    make_tenant: Callable[..., Tenant],
    api_url: str,
    db: psycopg.Connection[Any],
    browser: Browser,
    tmp_path: Path,
) -> None:
    tenant = make_tenant(protocol="heart_failure")
    gateway, patient = tenant.gateways[0], tenant.patients[0]
    version = _activate(api_url, tenant)
    config = gateway_config(tmp_path, gateway.host, gateway.port, gateway.gateway_id, gateway.password)
    home = varde_home()
    with RunningAgent(config) as gw:
        wait_for(lambda: (gw.state()["plan"] or {}).get("version") == version, timeout=20, what="the plan at home")
        with open_page(browser, gw.url) as page:
            stack_mod.stop_broker(home)
            try:
                wait_for(lambda: not gw.state()["connected"], timeout=20, what="the gateway to lose the broker")
                expect(page.locator("#connection")).to_contain_text("Ingen internettforbindelse nå")
                weight = reading(Kind.BODY_WEIGHT, 86.4, measured_at=datetime.now(UTC).replace(microsecond=0))
                gw.agent.accept([weight])
                expect(page.locator("#latest-advice")).to_have_text(
                    "Vekten har økt mye. Ring hjertesviktpoliklinikken nå.", timeout=1000
                )
                expect(page.locator("#latest-zone")).to_have_attribute("data-zone", "red")

                form = page.locator('[data-questionnaire="hf-symptoms"]')
                form.locator('[data-question="breath"] [data-option="a-lot"]').click()
                form.locator('[data-question="swelling"] [data-option="yes"]').click()
                form.locator('[data-send="hf-symptoms"]').click()
                expect(page.locator("#result-hf-symptoms")).to_contain_text("Poengsum: 5.")
                assert gw.agent.questionnaires.depth == 1 and gw.agent.outbox.depth == 1
            finally:
                stack_mod.start_broker(home)

        def stored() -> Any:
            return db.execute(
                "SELECT kind, value FROM readings WHERE patient_id = %s AND id = %s", (patient, weight.id)
            ).fetchone()

        assert wait_for(stored, timeout=90, what="the reading in the cloud") == ("body_weight", 86.4)

        def response() -> Any:
            return db.execute(
                "SELECT questionnaire, plan_version, reported_score, score, zone, gateway_id "
                "FROM questionnaire_responses WHERE patient_id = %s",
                (patient,),
            ).fetchone()

        assert wait_for(response, timeout=90, what="the questionnaire response in the cloud") == (
            "hf-symptoms",
            version,
            5,
            5,
            "red",
            gateway.gateway_id,
        )
        wait_for(lambda: gw.agent.questionnaires.depth == 0 and gw.agent.outbox.depth == 0, what="queues drained")

    def alarms() -> dict[str, tuple[str, float | None]]:
        rows = db.execute(
            "SELECT rule, severity, last_value FROM alarms WHERE patient_id = %s AND state = 'open'", (patient,)
        ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    found = wait_for(
        lambda: (a := alarms()) and {"threshold.body_weight.high", "questionnaire.hf-symptoms.score"} <= a.keys() and a,
        timeout=30,
        what="the weight and questionnaire alarms",
    )
    assert found["threshold.body_weight.high"] == ("red", 86.4)
    assert found["questionnaire.hf-symptoms.score"] == ("red", 5.0)
    explanation = db.execute(
        "SELECT explanation_en FROM alarms WHERE patient_id = %s AND rule = 'questionnaire.hf-symptoms.score'",
        (patient,),
    ).fetchone()
    assert explanation == ("Questionnaire “How are you today?”: score 5 of 5 (yellow from 2, red from 4).",)

    headers = login(api_url, tenant.nurse, tenant.nurse_password)
    listed = httpx.get(f"{api_url}/api/v1/patients/{patient}/questionnaire-responses", headers=headers, timeout=30)
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert (item["questionnaire"], item["score"], item["zone"]) == ("hf-symptoms", 5, "red")
    assert item["answers"] == {"breath": "a-lot", "swelling": "yes"}
    stranger = make_tenant()
    other = login(api_url, stranger.nurse, stranger.nurse_password)
    hidden = httpx.get(f"{api_url}/api/v1/patients/{patient}/questionnaire-responses", headers=other, timeout=30)
    assert hidden.status_code == 404
