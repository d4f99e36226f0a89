"""The nurse's worklist and the population overview in a real browser against the real stack: every item type,
most urgent first, filtered and taken with the keyboard alone; zones, trends, the CSV download and the print view."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Locator, Page, expect

from store.events import notify_changes
from tests.browser.support import screenshot, sign_in
from tests.integration.api.support import audit_rows, insert_alarm
from tests.integration.api.work_items import seed_handover, seed_work
from tests.stack_plugin import Tenant

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def assert_no_serious_axe_violation(page: Page) -> None:
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, "\n".join(f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]}" for v in bad)


def tab_to(page: Page, target: Locator, limit: int = 80) -> None:
    """Press Tab (only the keyboard) until the target has the focus."""
    handle = target.element_handle()
    for _ in range(limit):
        if page.evaluate("(el) => document.activeElement === el", handle):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{target} never got the focus by Tab")


def test_worklist_shows_all_work_most_urgent_first_and_is_worked_with_the_keyboard_alone(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(patients=2)
    seeded = seed_work(db, tenant)
    hospital = make_tenant()
    handover = seed_handover(db, hospital, tenant, hours_ago=25)
    sign_in(page, tenant.nurse, tenant.nurse_password, "/dashboard/worklist")
    expect(page.get_by_role("heading", name="Arbeidsliste")).to_be_visible()
    rows = page.locator("#worklist-body tr")
    expect(rows).to_have_count(7)
    expect(rows.first).to_have_attribute("id", f"wi-alarm-{seeded.red}")
    expect(rows.first).to_contain_text("Rød")
    for kind in ("Melding", "Manglende måling", "Inaktiv pasient", "Plan til gjennomgang", "Overføring til teamet"):
        expect(page.locator("#worklist-body")).to_contain_text(kind)
    # The hand-over waiting for this team's answer: overdue after a day, answered on the patient page, not taken.
    proposed = page.locator(f"#wi-handover-{handover}")
    expect(proposed).to_contain_text(f"Overføring fra {hospital.team} venter på svar")
    expect(proposed).to_have_attribute("data-overdue", "true")
    expect(proposed.get_by_role("link")).to_have_attribute(
        "href", f"/dashboard/patients/{hospital.patients[0]}#episode"
    )
    expect(proposed.locator("button")).to_have_count(0)
    expect(page.locator(f"#wi-alarm-{seeded.yellow}")).to_have_attribute("data-overdue", "true")
    expect(page.locator(f"#wi-alarm-{seeded.yellow}")).to_contain_text("Over fristen med")
    expect(page.locator(f"#wi-message-{seeded.thread}")).to_contain_text("igjen")
    expect(page.locator("[data-count='alarm']")).to_have_text("2")
    screenshot(page, "worklist")
    assert_no_serious_axe_violation(page)

    # A new alarm arrives over the alarm queue's live stream, without waiting for the minute's reload.
    page.evaluate("window.__sameDocument = true")
    fresh = insert_alarm(db, tenant.patients[1], severity="yellow", opened_minutes_ago=0)
    notify_changes(db, "api", [fresh])
    expect(page.locator(f"#wi-alarm-{fresh}")).to_have_count(1, timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True
    expect(rows).to_have_count(8)

    # Keyboard only: untick "Melding" with Space, then take the message... it is gone, so take the inactive patient.
    messages = page.get_by_label("Melding (1)")
    tab_to(page, messages)
    page.keyboard.press("Space")
    expect(page.locator(f"#wi-message-{seeded.thread}")).to_have_count(0)
    expect(rows).to_have_count(7)
    take = page.locator(f"#wi-inactive_patient-{seeded.inactive} button")
    expect(take).to_have_text("Ta")
    tab_to(page, take)
    page.keyboard.press("Enter")
    row = page.locator(f"#wi-inactive_patient-{seeded.inactive}")
    expect(row).to_contain_text(tenant.nurse)
    expect(row.locator("button")).to_have_text("Frigi")
    assert page.evaluate("document.activeElement.dataset.focusKey") == f"inactive_patient:{seeded.inactive}"
    expect(page.locator("#live-polite")).to_contain_text("Du tok")

    # An alarm is taken the same way, through the alarm queue's own assignment.
    red_take = page.locator(f"#wi-alarm-{seeded.red} button")
    tab_to(page, red_take)
    page.keyboard.press("Enter")
    expect(page.locator(f"#wi-alarm-{seeded.red}")).to_contain_text(tenant.nurse)
    mine = page.get_by_label("Bare mine")
    tab_to(page, mine)
    page.keyboard.press("Space")
    expect(rows).to_have_count(2)
    screenshot(page, "worklist-keyboard")

    # The alarm queue is the worklist's alarm view: linked both ways, and the same alarms.
    page.get_by_role("link", name="Åpne alarmkøen").click()
    expect(page.locator(f"#queue-body tr#alarm-{seeded.red}")).to_have_count(1)
    expect(page.get_by_role("link", name="Arbeidsliste (alt arbeid)")).to_be_visible()


def test_population_overview_shows_zones_and_trends_downloads_csv_and_prints_without_the_controls(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(patients=3, protocol="copd")
    insert_alarm(db, tenant.patients[0], severity="red", opened_minutes_ago=30)
    insert_alarm(db, tenant.patients[1], severity="yellow", opened_minutes_ago=60)
    sign_in(page, tenant.nurse, tenant.nurse_password, "/dashboard/population")
    expect(page.get_by_role("heading", name="Populasjonsoversikt")).to_be_visible()
    section = page.locator(f"section[data-team='{tenant.team_id}']")
    expect(section.locator("[data-figure='patients']")).to_have_text("3")
    expect(section.locator("tr[data-zone='red'] td[data-trend='worse']")).to_have_text("1")
    expect(section.locator("tr[data-zone='yellow'] td[data-trend='worse']")).to_have_text("1")
    expect(section.locator("tr[data-zone='green'] td[data-trend='stable']")).to_have_text("1")
    expect(page.locator(f"#population-body tr[data-patient='{tenant.patients[0]}']")).to_contain_text("Verre")
    screenshot(page, "population")
    assert_no_serious_axe_violation(page)

    with page.expect_download() as info:
        page.get_by_role("button", name="Last ned CSV").click()
    download = info.value
    assert download.suggested_filename.startswith("varde-population-")
    path = download.path()
    assert path is not None
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert sorted(r["zone"] for r in rows) == ["green", "red", "yellow"]
    assert audit_rows(db, resource="/api/v1/population/export.csv", username=tenant.nurse, action="export")
    expect(page.locator("#population-message")).to_have_text("CSV lastet ned")

    page.emulate_media(media="print")
    expect(page.locator(".topbar")).to_be_hidden()
    expect(page.locator("#population-form")).to_be_hidden()
    expect(section).to_be_visible()
    screenshot(page, "population-print")


def test_patient_page_downloads_the_period_summary_pdf_and_says_when_there_is_no_record_to_send_it_to(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant()
    insert_alarm(db, tenant.patients[0], severity="yellow", opened_minutes_ago=60)
    sign_in(page, tenant.nurse, tenant.nurse_password, f"/dashboard/patients/{tenant.patients[0]}")
    expect(page.get_by_role("heading", name="Periodeoppsummering")).to_be_visible()
    expect(page.get_by_label("Fra")).not_to_have_value("")
    with page.expect_download() as info:
        page.get_by_role("button", name="Last ned PDF").click()
    path = info.value.path()
    assert path is not None and path.read_bytes().startswith(b"%PDF-")
    assert info.value.suggested_filename.startswith("varde-summary-")
    page.get_by_role("button", name="Send til journal").click()
    expect(page.locator("#report-message")).to_have_text("Virksomheten har ikke noe journalsystem å sende til.")
