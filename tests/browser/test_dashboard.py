"""The dashboard in a real browser against the real stack: live alarms from MQTT, the nurse's actions, the patient
view with its charts, limit and plan editing, language, access by duty of care, and break-the-glass."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import Page, Route, expect

from store.settings import Settings
from tests.browser.support import screenshot, sign_in
from tests.integration.api.support import add_user, insert_alarm, insert_readings
from tests.stack_plugin import Tenant, login, publish
from vitals import DeviceRef, Envelope, Reading, readings_topic

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# Counts the tones the page plays: WebAudio oscillators started, seen from outside the page's code.
COUNT_TONES = """
(() => {
  window.__tones = 0;
  const Original = window.AudioContext;
  window.AudioContext = class extends Original {
    createOscillator() { window.__tones += 1; return super.createOscillator(); }
  };
})();
"""

# WCAG 2.1 contrast ratio of each element's text against the first opaque background behind it.
CONTRAST = """
(selector) => {
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length < 4 || c[3] === 1) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  return [...document.querySelectorAll(selector)].filter((el) => el.offsetParent !== null).map((el) => {
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    return { text: el.textContent.trim().slice(0, 40), ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) };
  });
}
"""


def _spo2_envelope(gateway_id: str, spo2: float) -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    device = DeviceRef(address="A4:C1:38:00:00:01", type="pulse_oximeter", model="PO-60")
    envelope = Envelope(
        gateway_id=gateway_id,
        sent_at=now,
        readings=(
            Reading(id=uuid.uuid4(), kind="spo2", value=spo2, unit="%", measured_at=now, device=device),
            Reading(id=uuid.uuid4(), kind="pulse_rate", value=96.0, unit="/min", measured_at=now, device=device),
        ),
    )
    return envelope.to_json()


def _history(db: psycopg.Connection[Any], tenant: Tenant) -> None:
    """Three weeks of morning SpO2 and pulse readings, one of them in the yellow zone, and one missed day."""
    gateway = tenant.gateways[0]
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    days = range(21, 0, -1)
    times = [now - timedelta(days=d, hours=3) for d in days]
    spo2 = [92 + (d % 4) - (5 if d == 6 else 0) for d in days]
    insert_readings(db, gateway.patient_id, gateway.gateway_id, "spo2", spo2, times)
    insert_readings(db, gateway.patient_id, gateway.gateway_id, "pulse_rate", [70 + d % 7 for d in days], times)
    insert_alarm(db, gateway.patient_id, severity="missed", kind="spo2", opened_minutes_ago=3 * 24 * 60, value=0)


def _assert_contrast(page: Page, selector: str, minimum: float = 4.5) -> int:
    results = page.evaluate(CONTRAST, selector)
    low = [r for r in results if r["ratio"] < minimum]
    assert not low, f"text below {minimum}:1 contrast: {low}"
    return len(results)


def test_red_alarm_from_mqtt_appears_live_is_announced_and_acknowledged_with_the_keyboard(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str
) -> None:
    tenant = make_tenant(protocol="copd")
    gateway = tenant.gateways[0]
    _history(db, tenant)
    page.add_init_script(COUNT_TONES)
    sign_in(page, tenant.nurse, tenant.nurse_password)
    expect(page.get_by_role("heading", name="Alarmkø")).to_be_visible()
    expect(page.locator("#stream-status")).to_have_attribute("data-state", "live")
    expect(page.locator("#queue-body tr[data-severity='missed']")).to_have_count(1)
    page.evaluate("window.__sameDocument = true")

    assert publish(gateway, readings_topic(gateway.gateway_id), _spo2_envelope(gateway.gateway_id, 80.0)) < 128

    red = page.locator("#queue-body tr[data-severity='red']")
    expect(red).to_have_count(1, timeout=15_000)
    expect(red).to_contain_text("Rød")
    expect(red).to_contain_text("80")
    expect(red).to_contain_text("Ny")
    assert page.evaluate("window.__sameDocument") is True, "the alarm must arrive without a page reload"
    # Red first: the red row sorts above the older missed-measurement alarm.
    expect(page.locator("#queue-body tr").first).to_have_attribute("data-severity", "red")
    expect(page.locator("#red-banner")).to_be_visible()
    expect(page.locator("#red-banner")).to_contain_text(f"Pasient {tenant.team.removeprefix('team-')}-0")
    expect(page.locator("#live-assertive")).to_contain_text("Ny rød alarm")
    assert page.evaluate("window.__tones") >= 3
    assert _assert_contrast(page, ".badge, button, th, td, .red-banner p, .stream-status, a") > 10
    screenshot(page, "queue")

    acknowledge = red.get_by_role("button", name=re.compile("^Kvitter"))
    acknowledge.focus()
    page.keyboard.press("Space")
    expect(red.locator(".state")).to_have_text("Kvittert")
    expect(red.get_by_role("button", name=re.compile("^Kvitter"))).to_have_count(0)
    headers = login(api_url, tenant.nurse, tenant.nurse_password)
    items = httpx.get(f"{api_url}/api/v1/alarms", headers=headers, params={"severity": "red"}).json()["items"]
    assert [a["state"] for a in items] == ["acknowledged"]

    # The patient view: latest values with zones, the chart with its points and bands, devices.
    red.get_by_role("link").click()
    page.wait_for_url(f"**/dashboard/patients/{gateway.patient_id}")
    spo2 = page.locator("#latest li[data-kind='spo2']")
    expect(spo2).to_have_attribute("data-zone", "red")
    expect(spo2).to_contain_text("80 %")
    chart = page.locator("svg.trend[data-kind='spo2']")
    expect(chart).to_be_visible()
    assert chart.locator("circle.point").count() >= 20
    assert chart.locator("rect.band-red").count() == 1 and chart.locator("rect.band-green").count() == 1
    assert chart.locator("g.missed").count() == 1
    assert chart.locator("circle.point-red").count() == 1
    expect(page.locator("#alarm-history")).to_contain_text("Manglende måling")
    expect(page.locator("#gateways")).to_contain_text("Pulsoksymeter")
    _assert_contrast(page, ".badge, button, th, td, h1, h2, h3, .muted, a, svg.trend text")
    screenshot(page, "patient")

    page.get_by_role("button", name="Døgn").click()
    expect(page.locator("svg.trend[data-kind='spo2'] circle.point")).to_have_count(1)


def test_nurse_edits_a_limit_sees_the_apis_field_error_and_activates_a_plan_with_a_preview(
    page: Page, make_tenant: Callable[..., Tenant], api_url: str
) -> None:
    tenant = make_tenant(protocol="copd")
    patient = tenant.patients[0]
    sign_in(page, tenant.nurse, tenant.nurse_password, f"/dashboard/patients/{patient}/edit")
    expect(page.get_by_role("heading", name="Grenser for alarmer")).to_be_visible()

    # COPD: red below 84, yellow below 88. A red limit above the yellow one is refused by the API.
    expect(page.locator("#limits-conditions")).to_contain_text("Grensene er satt sammen fra: KOLS")
    page.get_by_label("Måling som skal endres").select_option("spo2")
    page.locator("#mode-red_low").select_option("custom")
    page.locator("#value-red_low").fill("95")
    page.get_by_role("button", name="Lagre grensene").click()
    yellow_row = page.locator(".limit-row", has=page.locator("#value-yellow_low"))
    expect(yellow_row.locator(".field-error")).to_contain_text("gul nedre grense 88 er lavere enn rød nedre grense 95")
    page.locator("#value-red_low").fill("86")
    page.get_by_role("button", name="Lagre grensene").click()
    expect(page.locator("#limits-saved")).to_contain_text("Oksygenmetning")
    expect(page.locator("#limits-table tr[data-kind='spo2'] td[data-limit='red_low']")).to_contain_text("86 (endret)")
    headers = login(api_url, tenant.nurse, tenant.nurse_password)
    profile = httpx.get(f"{api_url}/api/v1/patients/{patient}/thresholds", headers=headers).json()
    spo2 = next(k for k in profile["kinds"] if k["kind"] == "spo2")
    assert spo2["red_low"] == {"value": 86.0, "source": "override", "condition": None}

    # A plan: zones, advice in both languages, a contact; the preview shows the patient's words as typed.
    # The first plan starts from the limits set for this patient.
    page.reload()
    zone = page.locator("#zone-rows .plan-row")
    expect(zone).to_have_count(1)
    expect(zone.get_by_label("Måling")).to_have_value("spo2")
    expect(zone.get_by_label("Rød nedre grense")).to_have_value("86")
    zone.get_by_label("Rød nedre grense").fill("85")
    zone.get_by_label("Gul nedre grense").fill("89")
    advice = {
        "green": ("Fortsett som før.", "Carry on as before."),
        "yellow": ("Bruk medisinen i planen og mål igjen.", "Take the rescue medication and measure again."),
        "red": ("Ring sykepleier nå.", "Call the nurse now."),
    }
    for zone_name, (nb, en) in advice.items():
        row = page.locator(f".advice-row[data-general='{zone_name}']")
        row.get_by_label("Bokmål").fill(nb)
        row.get_by_label("Engelsk").fill(en)
    contact = page.locator("#contact-rows .plan-row").first
    contact.get_by_label("Navn").fill("Lungepoliklinikken")
    contact.get_by_label("Rolle").fill("sykepleier")
    contact.get_by_label("Telefon").fill("ring meg")
    # The clinician's NEWS2 decisions: scale 2 (confirmed hypercapnic failure) and home oxygen.
    page.get_by_label("SpO2-skala").select_option("2")
    expect(page.get_by_label("Oksygenflow (l/min)")).to_be_disabled()
    page.get_by_label("Hjemmeoksygen").check()
    page.get_by_label("Oksygenflow (l/min)").fill("2")
    page.get_by_label("Oksygenflow (l/min)").press("Tab")
    preview = page.locator("#preview")
    expect(preview.locator("[data-zone='red']")).to_contain_text("Oksygenmetning under 85 %")
    expect(preview.locator("[data-zone='red']")).to_contain_text("Ring sykepleier nå.")
    _assert_contrast(page, "label, legend, th, td, button, .patient-zone p, .patient-zone h4, .hint, a")
    screenshot(page, "edit")
    page.get_by_role("button", name="English").click()
    expect(preview.locator("[data-zone='red']")).to_contain_text("Call the nurse now.")
    expect(preview.locator("[data-zone='green']")).to_contain_text("Oxygen saturation 89 % or more")

    page.get_by_role("button", name="Lagre som utkast").click()
    phone_error = contact.locator(".field-error")
    expect(phone_error).to_be_visible()
    expect(contact.get_by_label("Telefon")).to_have_attribute("aria-invalid", "true")
    contact.get_by_label("Telefon").fill("+47 22 11 80 80")
    page.get_by_role("button", name="Lagre som utkast").click()
    expect(page.locator("#plan-saved")).to_contain_text("Utkast versjon 1 er lagret")
    page.get_by_role("button", name="Aktiver versjon 1").click()
    expect(page.locator("#plan-saved")).to_contain_text("Versjon 1 er aktiv og sendt til 1 gateway")
    expect(page.locator("#limits-table tr[data-kind='spo2'] td[data-limit='red_low']")).to_contain_text("85 (plan)")

    page.get_by_role("link", name="Tilbake til pasienten").click()
    expect(page.locator("#plan")).to_contain_text("Versjon 1")
    expect(page.locator("#plan")).to_contain_text("Oksygenmetning (%)")
    expect(page.locator("#plan")).to_contain_text("NEWS2 SpO2-skala 2 (mål 88–92 %) · Hjemmeoksygen 2 l/min")


def test_language_switch_changes_the_interface_and_is_remembered(
    page: Page, make_tenant: Callable[..., Tenant]
) -> None:
    tenant = make_tenant()
    sign_in(page, tenant.nurse, tenant.nurse_password)
    expect(page.locator("html")).to_have_attribute("lang", "nb")
    expect(page.get_by_role("heading", name="Alarmkø")).to_be_visible()
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Alarm queue")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.locator("#stream-status")).to_contain_text("Live")
    page.reload()
    expect(page.get_by_role("heading", name="Alarm queue")).to_be_visible()
    page.get_by_role("link", name="Norsk (bokmål)").click()
    expect(page.get_by_role("heading", name="Alarmkø")).to_be_visible()

    # A token the API no longer accepts is renewed silently with the refresh cookie (the session goes on) ...
    page.evaluate("sessionStorage.setItem('varde.token', 'not-a-valid-token')")
    page.goto("/dashboard/patients")
    expect(page.locator("#user-name")).not_to_be_empty(timeout=20_000)
    assert page.evaluate("sessionStorage.getItem('varde.token')") != "not-a-valid-token"
    # ... also when the first renewals meet the database restarting (503) or no answer at all: tried again, not
    # signed out ...
    away: list[str] = []

    def database_away(route: Route) -> None:
        if len(away) == 0:
            away.append("503")
            route.fulfill(status=503, headers={"Retry-After": "1"}, json={"title": "Service Unavailable"})
        elif len(away) == 1:
            away.append("no answer")
            route.abort("connectionrefused")
        else:
            route.continue_()

    page.route("**/api/v1/auth/refresh", database_away)
    page.evaluate("sessionStorage.setItem('varde.token', 'not-a-valid-token')")
    page.goto("/dashboard/patients")
    expect(page.locator("#user-name")).not_to_be_empty(timeout=20_000)
    assert away == ["503", "no answer"] and "/dashboard/login" not in page.url
    page.unroute("**/api/v1/auth/refresh")
    # ... and when the session cannot be renewed either, back to the sign-in form, with a notice.
    page.context.clear_cookies()
    page.evaluate("sessionStorage.setItem('varde.token', 'not-a-valid-token')")
    # The page leaves for the sign-in form as soon as the API refuses the token, possibly before its own "load":
    # start the navigation from the page itself and wait for the redirect (page.goto would report it as aborted).
    page.evaluate("window.location.assign('/dashboard/patients')")
    page.wait_for_url("**/dashboard/login?**")
    expect(page.locator("#login-notice")).to_contain_text("Økten er utløpt")


def test_nurse_of_another_team_gets_no_access_page_and_breaks_the_glass_with_a_reason(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    own, other = make_tenant(), make_tenant()
    stranger = other.patients[0]
    sign_in(page, own.nurse, own.nurse_password)
    page.goto(f"/dashboard/patients/{stranger}")
    expect(page.get_by_role("heading", name="Pasienten finnes ikke, eller du har ikke tilgang")).to_be_visible()
    expect(page.locator("#patient")).to_be_hidden()
    expect(page.get_by_text(other.patients[0].hex[:8])).to_have_count(0)

    page.get_by_role("button", name="Nødtilgang …").click()
    dialog = page.get_by_role("dialog", name="Nødtilgang (bryt glasset)")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Begrunnelse (påkrevd)").fill("akutt")
    dialog.get_by_role("button", name="Åpne med nødtilgang").click()
    expect(dialog.locator("#glass-error")).to_contain_text("minst 10 tegn")
    dialog.get_by_label("Begrunnelse (påkrevd)").fill("Pasienten ringte legevakten med brystsmerter")
    dialog.get_by_role("button", name="Åpne med nødtilgang").click()
    expect(page.locator("#emergency-banner")).to_contain_text("nødtilgang")
    expect(page.locator("#patient-name")).to_have_text(f"Pasient {other.team.removeprefix('team-')}-0")
    rows = db.execute(
        "SELECT count(*) FROM audit_log WHERE patient_id = %s AND emergency AND reason LIKE 'Pasienten ringte%%'",
        (stranger,),
    ).fetchone()
    assert rows is not None and rows[0] >= 2


def test_queue_filters_team_switch_bulk_acknowledge_notes_resolve_and_sign_out(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], settings: Settings, api_url: str
) -> None:
    a, b = make_tenant(), make_tenant()
    username, password, _ = add_user(settings, "nurse", [a.team, b.team])
    yellow = [insert_alarm(db, a.patients[0], severity="yellow", opened_minutes_ago=m) for m in (30, 20)]
    red_b = insert_alarm(db, b.patients[0], severity="red", opened_minutes_ago=5)
    sign_in(page, username, password)
    body = page.locator("#queue-body")
    expect(body.locator("tr")).to_have_count(3)
    expect(body.locator("tr").first).to_have_attribute("id", f"alarm-{red_b}")
    expect(body.locator(f"#alarm-{red_b} input[type=checkbox]")).to_have_count(0)

    page.get_by_label("Rød", exact=True).uncheck()
    expect(body.locator("tr")).to_have_count(2)
    page.get_by_label("Rød", exact=True).check()
    page.get_by_label("Team:").select_option(label=a.team)
    expect(body.locator("tr")).to_have_count(2)
    expect(body.locator(f"#alarm-{red_b}")).to_have_count(0)

    for alarm in yellow:
        body.locator(f"#alarm-{alarm} input[type=checkbox]").check()
    page.get_by_role("button", name=re.compile("Kvitter valgte gule")).click()
    expect(page.locator("#bulk-message")).to_contain_text("2 alarmer kvittert")
    for alarm in yellow:
        expect(body.locator(f"#alarm-{alarm} .state")).to_have_text("Kvittert")

    page.get_by_label("Bare tildelt meg").check()
    expect(body.locator("tr")).to_have_count(0)
    page.get_by_label("Bare tildelt meg").uncheck()
    first = body.locator(f"#alarm-{yellow[0]}")
    first.get_by_role("button", name=re.compile("^Ta selv")).click()
    expect(first.locator(".assignee")).to_contain_text("Tildelt")
    page.get_by_label("Bare tildelt meg").check()
    expect(body.locator("tr")).to_have_count(1)
    page.get_by_label("Bare tildelt meg").uncheck()

    first.get_by_role("button", name=re.compile("^Notat")).click()
    dialog = page.get_by_role("dialog", name="Nytt notat")
    dialog.get_by_role("button", name="Lagre notat").click()
    expect(dialog.locator("#action-error")).to_contain_text("Skriv et notat")
    dialog.get_by_label("Notat").fill("Ringte pasienten, føler seg bedre.")
    dialog.get_by_role("button", name="Lagre notat").click()
    expect(dialog).to_be_hidden()
    headers = login(api_url, username, password)
    events = httpx.get(f"{api_url}/api/v1/alarms/{yellow[0]}", headers=headers).json()["events"]
    assert any(e["event"] == "note" and e["data"]["text"] == "Ringte pasienten, føler seg bedre." for e in events)

    first.get_by_role("button", name=re.compile("^Løs")).click()
    dialog = page.get_by_role("dialog", name="Løs alarmen")
    dialog.get_by_label("Hva ble gjort?").fill("Pasienten kontaktet, ingen tiltak nødvendig.")
    dialog.get_by_role("button", name="Løs").click()
    expect(body.locator(f"#alarm-{yellow[0]}")).to_have_count(0)

    page.get_by_role("button", name="Logg ut").click()
    expect(page.locator("#login-notice")).to_contain_text("Du er logget ut")
    page.goto("/dashboard/")
    page.wait_for_url("**/dashboard/login**")


def test_keyboard_alone_signs_in_skips_to_content_and_writes_a_note_through_the_dialog(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant()
    alarm = insert_alarm(db, tenant.patients[0], severity="yellow")
    page.goto("/dashboard/login")
    expect(page.get_by_label("Brukernavn")).to_be_focused()
    page.keyboard.type(tenant.nurse)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Passord")).to_be_focused()
    page.keyboard.type(tenant.nurse_password)
    page.keyboard.press("Enter")
    row = page.locator(f"#alarm-{alarm}")
    expect(row).to_be_visible()

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Hopp til innholdet")).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()

    note = row.get_by_role("button", name=re.compile("^Notat"))
    for _ in range(30):
        page.keyboard.press("Tab")
        if note.evaluate("button => button === document.activeElement"):
            break
    expect(note).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Nytt notat")
    expect(dialog.get_by_label("Notat")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(note).to_be_focused()

    page.keyboard.press("Enter")
    page.keyboard.type("Ringt pasienten")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Lagre notat")).to_be_focused()
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator("#live-polite")).to_contain_text("Notatet er lagret")

    # The note's own update arrives over the stream about now; the click on the row's link must still count.
    row.get_by_role("link").click()
    page.wait_for_url(f"**/dashboard/patients/{tenant.patients[0]}")
    history = page.locator(f"#history-{alarm}")
    history.get_by_text("Hendelser").click()
    expect(history.locator(".events")).to_contain_text("notat")
    expect(history.locator(".events")).to_contain_text("Ringt pasienten")


def test_a_live_update_between_press_and_release_does_not_swallow_the_click_on_a_queue_row(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str
) -> None:
    tenant = make_tenant()
    alarm = insert_alarm(db, tenant.patients[0], severity="yellow")
    sign_in(page, tenant.nurse, tenant.nurse_password)
    expect(page.locator("#stream-status")).to_have_attribute("data-state", "live")
    row = page.locator(f"#alarm-{alarm}")
    expect(row.locator(".assignee")).to_have_text("Ikke tildelt")

    # The nurse presses on the patient's name; before she lets go, a colleague's change arrives over the stream.
    row.get_by_role("link").hover()
    page.mouse.down()
    headers = login(api_url, tenant.nurse, tenant.nurse_password)
    assigned = httpx.post(f"{api_url}/api/v1/alarms/{alarm}/assign", headers=headers, json={"assignee": "me"})
    assert assigned.status_code == 200, assigned.text
    expect(row.locator(".assignee")).to_contain_text("Tildelt")
    page.mouse.up()
    page.wait_for_url(f"**/dashboard/patients/{tenant.patients[0]}")
    expect(page.locator(f"#history-{alarm}")).to_be_visible()


def test_patient_view_alarm_history_stays_in_its_column_beside_the_devices_at_1366_px(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str
) -> None:
    tenant = make_tenant()
    patient = tenant.patients[0]
    # The widest severity badge, and a user name without spaces (as directory accounts often are).
    db.execute(
        "UPDATE users SET display_name = %s WHERE username = %s",
        ("sykepleier.kari.nordmann-johansen@oslo.kommune.no", tenant.nurse),
    )
    alarm = insert_alarm(db, patient, severity="needs_review", opened_minutes_ago=60)
    insert_alarm(db, patient, severity="missed", opened_minutes_ago=3 * 24 * 60, value=0)
    headers = login(api_url, tenant.nurse, tenant.nurse_password)
    for action, body in (("acknowledge", None), ("assign", {"assignee": "me"})):
        assert httpx.post(f"{api_url}/api/v1/alarms/{alarm}/{action}", headers=headers, json=body).status_code == 200
    sign_in(page, tenant.nurse, tenant.nurse_password, f"/dashboard/patients/{patient}")
    assert page.viewport_size == {"width": 1366, "height": 900}
    history = page.locator(f"#history-{alarm}")
    history.get_by_text("Hendelser").click()
    expect(history.locator(".events li")).to_have_count(3)

    devices = page.locator("#devices-heading").bounding_box()
    assert devices is not None
    cells = page.locator("#alarm-history th, #alarm-history td").all()
    rights = [box["x"] + box["width"] for box in (cell.bounding_box() for cell in cells) if box]
    assert len(rights) == 12 and max(rights) <= devices["x"], (max(rights), devices["x"])
    screenshot(page, "patient-columns")


def test_threshold_editor_shows_which_limits_are_personal_and_which_are_set_by_hand(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(protocol="heart_failure")
    patient = tenant.patients[0]
    now = datetime.now(UTC)
    db.execute(
        "INSERT INTO personal_limits (patient_id, kind, version, valid_from, centre, spread, n, window_start, "
        "window_end, yellow_low) VALUES (%s, 'spo2', 1, %s, 94, 0.4, 14, %s, %s, 91)",
        (patient, now - timedelta(hours=1), now - timedelta(days=35), now - timedelta(days=7)),
    )
    sign_in(page, tenant.nurse, tenant.nurse_password, f"/dashboard/patients/{patient}/edit")
    row = page.locator("#limits-table tr[data-kind='spo2']")
    expect(row.locator("td[data-limit='yellow_low']")).to_contain_text("91 (personlig)")
    # After the run-in the red limit is the absolute hard floor (the personal band replaces the protocol zones).
    expect(row.locator("td[data-limit='red_low']")).to_contain_text("85 (absolutt)")
    expect(row.locator("[data-personal='spo2']")).to_contain_text("Vanlig 94 ± 0,4 % (14 målinger)")

    # A limit set by hand wins over the personal one, and says so.
    page.get_by_label("Måling som skal endres").select_option("spo2")
    expect(page.locator("#mode-yellow_low option[value='inherit']")).to_contain_text("91")
    page.locator("#mode-yellow_low").select_option("custom")
    page.locator("#value-yellow_low").fill("93")
    page.get_by_role("button", name="Lagre grensene").click()
    expect(row.locator("td[data-limit='yellow_low']")).to_contain_text("93 (endret)")
    # After the run-in the red limit is the absolute hard floor (the personal band replaces the protocol zones).
    expect(row.locator("td[data-limit='red_low']")).to_contain_text("85 (absolutt)")
