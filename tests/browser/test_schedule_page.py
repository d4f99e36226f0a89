"""The nurse's patient page shows the need-driven measurement schedule: the step-up a yellow weight alarm made, the
words the patient's gateway shows, the measurements in force and the change history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
from playwright.sync_api import Page, expect

from rules_engine.alarms import AlarmUpsert, upsert_alarms
from tests.browser.conftest import screenshot, sign_in
from tests.integration.conftest import Tenant, login
from tests.patient.plans import plan_body

EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def test_patient_page_shows_the_stepped_up_schedule_and_its_history(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str
) -> None:
    tenant = make_tenant()
    patient = tenant.patients[0]
    nurse = login(api_url, tenant.nurse, tenant.nurse_password)
    body = plan_body(
        step_ups=[
            {
                "kind": "body_weight",
                "zone": "yellow",
                "schedule": [{"kind": "body_weight", "deadline": d, "weekdays": EVERY_DAY} for d in ("09:00", "20:00")],
            }
        ]
    )
    plans = f"{api_url}/api/v1/patients/{patient}/plans"
    version = httpx.post(plans, headers=nurse, json=body, timeout=30).json()["version"]
    assert httpx.post(f"{plans}/{version}/activate", headers=nurse, timeout=30).status_code == 200
    now = datetime.now(UTC)
    alarm = AlarmUpsert(
        patient_id=patient, rule="threshold.body_weight.high", kind="body_weight", severity="yellow", value=83.0,
        limit=82.0, count=1, reading_id=None, measured_at=now, window_start=None, window_end=None,
        explanation_nb="Vekt 83 kg over 82 kg", explanation_en="Weight 83 kg above 82 kg",
    )  # fmt: skip
    with psycopg.connect(db.info.dsn, password=db.info.password) as conn, conn.transaction():
        upsert_alarms(conn, [alarm])

    sign_in(page, tenant.nurse, tenant.nurse_password, f"/dashboard/patients/{patient}")
    section = page.locator("#measurement-schedule")
    expect(section.locator(".patient-notice")).to_have_text("Mål vekt to ganger daglig de neste 5 dagene.")
    expect(section.locator(".schedule-step")).to_contain_text("Trappet opp: Vekt (gul)")
    expect(section.locator(".schedule-step")).to_contain_text("etter 3 grønne dager (0 så langt)")
    history = page.locator(".alarm-events").first
    history.locator("summary").click()
    expect(history.locator(".events li")).to_contain_text(["åpnet", "måleplanen trappet opp"])
    expect(section.locator("#schedule-items li")).to_contain_text(
        ["Systolisk blodtrykk innen kl. 09:00", "Systolisk blodtrykk innen kl. 20:00", "Vekt innen kl. 09:00",
         "Vekt innen kl. 20:00"]
    )  # fmt: skip
    expect(section.locator('#schedule-history [data-change="stepped_up"]')).to_contain_text(
        "Trappet opp (gul) for Vekt"
    )
    screenshot(page, "patient-schedule")
