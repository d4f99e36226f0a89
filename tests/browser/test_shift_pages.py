"""The smaller things of a nurse's shift in a real browser: the access log for team leads, technical
follow-up items (silent gateway, device clock), the limits editor offering the protocol's kinds with bokmål
messages, chart labels that fit, actions in the patient view's alarm history, an empty contact in the plan preview,
and axe-core finding no serious or critical violation on the main pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from store.settings import Settings
from tests.browser.support import screenshot, sign_in
from tests.integration.api.support import add_user, insert_alarm, insert_readings
from tests.stack_plugin import Tenant

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _days_of_spo2(db: psycopg.Connection[Any], tenant: Tenant, days: int = 14, flags: list[str] | None = None) -> None:
    gateway = tenant.gateways[0]
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    times = [now - timedelta(days=d, hours=2) for d in range(days, 0, -1)]
    insert_readings(db, gateway.patient_id, gateway.gateway_id, "spo2", [93 + d % 3 for d in range(days)], times)
    if flags:
        db.execute(
            "UPDATE readings SET flags = %s, received_at = now() WHERE patient_id = %s", (flags, gateway.patient_id)
        )


def test_team_lead_filters_the_access_log_and_sees_break_the_glass_highlighted(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], settings: Settings
) -> None:
    from varde.admin import set_team_lead

    own, other = make_tenant(), make_tenant()
    lead, lead_password, _ = add_user(settings, "nurse", [own.team])
    set_team_lead(settings, lead, own.team)
    # The team's nurse opens emergency access to a patient of another team: the lead sees it with its reason.
    sign_in(page, own.nurse, own.nurse_password)
    page.goto(f"/dashboard/patients/{other.patients[0]}")
    page.locator("#glass-open").click()
    page.locator("#glass-reason").fill("Pasienten ringte akutt, eget team utilgjengelig")
    page.locator("#glass-form button[type='submit']").click()
    expect(page.locator("#patient-name")).not_to_be_empty()
    page.get_by_role("button", name="Logg ut").click()
    page.wait_for_url(re.compile("signed_out"))

    sign_in(page, lead, lead_password, "/dashboard/audit")
    expect(page.locator("#nav-audit")).to_be_visible()
    expect(page.locator("#audit-body tr").first).to_be_visible()
    glass = page.locator("#audit-body tr.audit-emergency")
    expect(glass.first).to_contain_text("Pasienten ringte akutt")
    page.get_by_label("Bruker").fill(own.nurse)
    page.locator("#audit-emergency").check()
    page.get_by_role("button", name="Vis", exact=True).click()
    expect(page.locator("#audit-body tr:not(.audit-emergency)")).to_have_count(0)
    expect(page.locator("#audit-body tr.audit-emergency").first).to_contain_text(own.nurse)
    screenshot(page, "shift-audit-log")

    # Filter by patient: only the rows about the team's own patient.
    page.locator("#audit-emergency").uncheck()
    page.get_by_label("Bruker").fill("")
    page.get_by_label("Pasient").select_option(str(own.patients[0]))
    page.get_by_role("button", name="Vis", exact=True).click()
    expect(page.locator("#audit-body tr").first).to_contain_text(f"Pasient {own.team.removeprefix('team-')}-0")

    # A nurse who is not a lead gets no log.
    page.get_by_role("button", name="Logg ut").click()
    page.wait_for_url(re.compile("signed_out"))
    sign_in(page, own.nurse, own.nurse_password, "/dashboard/audit")
    expect(page.locator("#audit-denied")).to_be_visible()
    expect(page.locator("#nav-audit")).to_be_hidden()


def test_queue_lists_a_silent_gateway_and_a_device_clock_warning(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(patients=2)
    _days_of_spo2(db, tenant, 3, flags=["device_clock_corrected"])
    gateway = tenant.gateways[1]
    old = datetime.now(UTC) - timedelta(hours=40)
    insert_readings(db, gateway.patient_id, gateway.gateway_id, "spo2", [95], [old])
    # The silent patient's one reading also had its time corrected: "1 måling", never "1 målinger".
    db.execute(
        "UPDATE readings SET received_at = %s, flags = %s WHERE patient_id = %s",
        (old, ["device_clock_corrected"], gateway.patient_id),
    )
    sign_in(page, tenant.nurse, tenant.nurse_password)
    box = page.locator("#attention")
    expect(box).to_be_visible()
    prefix = f"Pasient {tenant.team.removeprefix('team-')}"
    clock = box.locator("li.attention-device_clock")
    expect(clock.filter(has_text=f"{prefix}-0")).to_contain_text("3 målinger fikk rettet tid")
    expect(clock.filter(has_text=f"{prefix}-1")).to_contain_text("1 måling fikk rettet tid")
    expect(box).not_to_contain_text("1 målinger")
    silent = box.locator("li.attention-silent_gateway").filter(has_text=f"{prefix}-1")
    expect(silent).to_contain_text("ingen nye målinger på 40 timer")
    # The catalogue's singulars, through the page's own module: "1 alarm", "1 måling".
    singular = page.evaluate(
        "async () => { const { t } = await import('/static/js/i18n.js');"
        " return [t('alarms_n', { n: 1 }), t('readings_count', { n: 1 }), t('alarms_n', { n: 2 })]; }"
    )
    assert singular == ["1 alarm", "1 måling", "2 alarmer"]


def test_editor_offers_the_protocols_kinds_and_answers_in_bokmal(
    page: Page, make_tenant: Callable[..., Tenant]
) -> None:
    tenant = make_tenant(protocol="heart_failure")
    sign_in(page, tenant.nurse, tenant.nurse_password, f"/dashboard/patients/{tenant.patients[0]}/edit")
    expect(page.locator("#trend-rows .limit-row").first).to_be_visible()
    options = page.locator("#limit-kind option").all_text_contents()
    assert "Vekt" in options and "Blodsukker" not in options and "Hjertefrekvens" not in options
    expect(page.locator("#limits-table tbody tr")).to_have_count(len(options))
    expect(page.get_by_text("API-et")).to_have_count(0)
    # A trend value outside its range: the message is in bokmål, next to the field.
    page.locator("#trend-weight_window_days-mode").select_option("custom")
    page.locator("#trend-weight_window_days").fill("30")
    page.get_by_role("button", name="Lagre trendregler").click()
    error = page.locator("[data-trend='weight_window_days'] .field-error, #trends-form .field-error").first
    expect(error).to_contain_text("Vektøkning over (dager)")
    expect(error).to_contain_text("er utenfor")
    # The plan form: a pydantic error (advice too long) in bokmål next to the field, no English from the API.
    advice = page.locator("#advice-rows textarea[data-field='nb']").first
    advice.fill("Ring sykepleier. " * 130)  # 2210 characters; the plan allows 2000
    page.get_by_role("button", name="Lagre som utkast").click()
    advice_error = page.locator("#advice-rows .field-error").first
    expect(advice_error).to_have_text("Kan ha høyst 2000 tegn.")
    expect(page.locator("#plan-form")).not_to_contain_text("String should have")
    assert advice.get_attribute("aria-invalid") == "true"
    # An empty contact in the preview without "():".
    page.locator("[data-row='contacts'] [data-field='name']").first.fill("")
    page.locator("[data-row='contacts'] [data-field='role']").first.fill("")
    page.locator("[data-row='contacts'] [data-field='phone']").first.fill("")
    expect(page.locator(".patient-screen")).not_to_contain_text("():")
    screenshot(page, "shift-editor")


def test_patient_view_charts_fit_their_labels_and_range_and_history_has_actions(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(protocol="copd")
    _days_of_spo2(db, tenant, 14)
    alarm = insert_alarm(db, tenant.patients[0], severity="yellow", kind="spo2")
    sign_in(page, tenant.nurse, tenant.nurse_password, f"/dashboard/patients/{tenant.patients[0]}")
    chart = page.locator("svg.trend[data-kind='spo2']")
    expect(chart).to_be_visible()
    # 14 days of data: the chart opens on 30 days, not 90.
    expect(page.locator("[data-range='30d']")).to_have_attribute("aria-pressed", "true")
    overflow = chart.evaluate(
        "svg => [...svg.querySelectorAll('.limit text')].map(t => t.getBBox().x + t.getBBox().width)"
        ".filter(right => right > svg.viewBox.baseVal.width)"
    )
    assert overflow == [], f"limit labels cut off at the right edge: {overflow}"
    row = page.locator(f"#history-{alarm}")
    row.get_by_role("button", name=re.compile("^Kvitter")).click()
    expect(row).to_contain_text("Kvittert")
    assert db.execute("SELECT state FROM alarms WHERE id = %s", (alarm,)).fetchone() == ("acknowledged",)
    row.get_by_role("button", name=re.compile("^Løs")).click()
    page.locator("#history-text").fill("Målt på nytt, 95 %")
    page.locator("#history-submit").click()
    expect(row).to_contain_text("Løst")
    assert db.execute("SELECT resolution FROM alarms WHERE id = %s", (alarm,)).fetchone() == ("Målt på nytt, 95 %",)
    screenshot(page, "shift-patient-view")


@pytest.mark.parametrize("where", ["queue", "patient", "edit", "journal", "audit"])
def test_axe_finds_no_serious_or_critical_violation(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], settings: Settings, where: str
) -> None:
    from varde.admin import set_team_lead

    tenant = make_tenant()
    _days_of_spo2(db, tenant, 5)
    for severity in ("red", "yellow", "missed"):
        insert_alarm(db, tenant.patients[0], severity=severity)
    set_team_lead(settings, tenant.nurse, tenant.team)
    path = {
        "queue": "/dashboard/",
        "patient": f"/dashboard/patients/{tenant.patients[0]}",
        "edit": f"/dashboard/patients/{tenant.patients[0]}/edit",
        "journal": "/dashboard/journal",
        "audit": "/dashboard/audit",
    }[where]
    sign_in(page, tenant.nurse, tenant.nurse_password, path)
    ready = {
        "queue": "#queue-body tr",
        "patient": "svg.trend",
        "edit": "#trend-rows .limit-row",
        "journal": "#journal-open-body tr, #journal-open-empty:not([hidden])",
        "audit": "#audit-body tr",
    }[where]
    page.locator(ready).first.wait_for(state="attached")
    if where == "journal":  # both tables filled in (or their empty states shown) before the scan
        page.locator("#journal-delivered-body tr, #journal-delivered-empty:not([hidden])").first.wait_for()
    results = Axe().run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, "\n".join(f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]}" for v in bad)
