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
from tests.browser.support import screenshot, sign_in
from tests.patient.plans import plan_body
from tests.stack_plugin import Tenant, login

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
        upsert_alarms(conn, [alarm], "rules")

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


def test_nurse_adds_a_step_up_in_the_plan_editor_and_a_later_edit_keeps_it(
    page: Page, make_tenant: Callable[..., Tenant], api_url: str
) -> None:
    tenant = make_tenant()
    patient = tenant.patients[0]
    nurse = login(api_url, tenant.nurse, tenant.nurse_password)
    plans = f"{api_url}/api/v1/patients/{patient}/plans"
    assert httpx.post(plans, headers=nurse, json=plan_body(), timeout=30).status_code == 201
    sign_in(page, tenant.nurse, tenant.nurse_password, f"/dashboard/patients/{patient}/edit")

    page.get_by_role("button", name="Legg til opptrapping").click()
    row = page.locator("#step-rows .plan-row")
    expect(row.get_by_label("Alarm på")).to_be_focused()
    row.get_by_label("Fra sone").select_option("yellow")
    row.get_by_label("Mål innen (klokkeslett, kommaseparert)").fill("08:00, 19:00")
    row.get_by_label("Minst (dager)").fill("5")
    row.get_by_label("Grønne dager før nedtrapping").fill("2")
    row.get_by_label("Spør også daglig").select_option("hf-symptoms")
    row.get_by_label("Svar innen").fill("17:00")
    page.get_by_role("button", name="Lagre som utkast").click()
    expect(page.locator("#plan-saved")).to_contain_text("Utkast versjon 2 er lagret")
    [step] = httpx.get(f"{plans}/2", headers=nurse, timeout=30).json()["body"]["step_ups"]
    assert (step["kind"], step["zone"], step["days"], step["green_days"]) == ("body_weight", "yellow", 5, 2)
    assert [e["deadline"] for e in step["schedule"]] == ["08:00", "19:00"]
    assert step["questionnaires"] == [{"id": "hf-symptoms", "deadline": "17:00"}]

    # A version made from it keeps the step-up as it was; one the API refuses says which field.
    page.reload()
    page.locator("#plan-diagnosis").fill("I50.1")
    page.get_by_role("button", name="Lagre som utkast").click()
    expect(page.locator("#plan-saved")).to_contain_text("Utkast versjon 3 er lagret")
    assert httpx.get(f"{plans}/3", headers=nurse, timeout=30).json()["body"]["step_ups"] == [step]
    row = page.locator("#step-rows .plan-row")
    row.get_by_label("Alarm på").select_option("spo2")
    page.get_by_role("button", name="Lagre som utkast").click()
    expect(page.locator("#plan-error")).to_contain_text("En opptrapping trenger soner for målingen i planen")
