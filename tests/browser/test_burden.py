"""The alarm-burden page: reached from the navigation by keyboard, it shows the team's alarms per patient-week and
the noisiest rule first, follows the period chosen, and speaks English when asked."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import sign_in
from tests.integration.api.support import insert_alarm
from tests.stack_plugin import Tenant

pytestmark = [pytest.mark.integration, pytest.mark.browser]

DAY_MINUTES = 24 * 60


def test_team_lead_finds_the_noisy_rule_on_the_burden_page_with_the_keyboard(
    page: Page, make_tenant: Any, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(patients=2)
    db.execute("UPDATE patients SET created_at = now() - interval '100 days' WHERE id = ANY(%s)", (tenant.patients,))
    for patient in tenant.patients:
        for days_ago in (1, 5):
            insert_alarm(
                db, patient, rule="threshold.spo2.low", state="resolved", opened_minutes_ago=days_ago * DAY_MINUTES
            )
    insert_alarm(db, tenant.patients[0], rule="news2", kind=None, opened_minutes_ago=60 * DAY_MINUTES)

    sign_in(page, tenant.nurse, tenant.nurse_password)
    link = page.get_by_role("link", name="Alarmbelastning")
    for _ in range(30):
        page.keyboard.press("Tab")
        if link.evaluate("(a) => a === document.activeElement"):
            break
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard/burden")
    expect(link).to_have_attribute("aria-current", "page")

    team = page.locator(f'[data-team="{tenant.team_id}"]')
    # 28 days: 4 SpO2 alarms over 2 patients × 4 weeks = 0,5 per patient-week; the NEWS2 alarm is older.
    expect(team.locator("[data-cell=team-per-week]")).to_contain_text(
        "4 alarmer, 0,5 per pasientuke (2 pasienter, 8 pasientuker)"
    )
    rows = team.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-rule", "threshold.spo2.low")
    expect(rows.first.locator("th")).to_contain_text("Oksygenmetning under grensen")
    expect(rows.first.locator("[data-cell=per-week]")).to_have_text("0,5")

    period = page.get_by_label("Periode")
    period.focus()
    period.select_option("90")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_have_attribute("data-rule", "news2")
    expect(team.locator("[data-cell=team-per-week]")).to_contain_text("5 alarmer")

    page.locator("#lang-switch").click()
    expect(page.locator("h1")).to_have_text("Alarm burden")
    expect(team.locator("[data-cell=team-per-week]")).to_contain_text("0.5 per patient-week")
    expect(team.locator("thead")).to_contain_text("Per patient-week")
