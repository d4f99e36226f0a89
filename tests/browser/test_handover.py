"""The hand-over flow on the patient page, in two browsers: the hospital nurse enrols and proposes (keyboard
only), the municipal nurse reads the note and accepts, and the hospital nurse is left with consultative access."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import psycopg
from playwright.sync_api import Browser, Page, expect

from tests.browser.support import screenshot, sign_in
from tests.integration.api.support import insert_alarm
from tests.stack_plugin import Tenant


def test_hospital_proposes_a_hand_over_with_the_keyboard_and_the_municipality_accepts(
    page: Page, browser: Browser, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str
) -> None:
    hospital, municipal = make_tenant(protocol="copd"), make_tenant(patients=0)
    patient = hospital.patients[0]
    insert_alarm(db, patient, severity="red", rule="threshold.spo2.low")
    sign_in(page, hospital.nurse, hospital.nurse_password)
    page.goto(f"/dashboard/patients/{patient}")
    expect(page.locator("#patient-name")).to_be_visible()
    section = page.locator("#episode")
    expect(section.locator("#episode-summary")).to_have_text("Ikke innskrevet i digital hjemmeoppfølging.")

    section.get_by_text("Skriv inn i oppfølging").focus()
    page.keyboard.press("Enter")
    section.get_by_label("Årsak", exact=True).focus()
    page.keyboard.type("KOLS med hyppige forverringer")
    page.keyboard.press("Tab")
    page.keyboard.type("J44.1")
    page.keyboard.press("Enter")
    expect(section.locator("#episode-error")).to_have_text("")
    expect(section.locator("#episode-summary")).to_contain_text(f"Ansvarlig: {hospital.team}")
    expect(section.locator("#episode-details")).to_contain_text("J44.1")
    expect(page.locator("#live-polite")).to_contain_text("skrevet inn i oppfølging")

    section.get_by_text("Foreslå overføring til et annet team").focus()
    page.keyboard.press("Enter")
    expect(section.get_by_label("Åpne alarmer")).to_have_value(re.compile("threshold.spo2.low"))
    expect(section.get_by_label("Situasjon")).to_have_value("KOLS med hyppige forverringer")
    section.get_by_label("Mottakende team").select_option(label=municipal.team)
    section.locator("#handover-form").get_by_label("Plan", exact=True).fill("Daglig SpO2")
    section.get_by_label("Følg med på").focus()
    page.keyboard.type("Fall i SpO2 under 88 %")
    section.get_by_label("Vi beholder lesetilgang").focus()
    page.keyboard.press("Space")
    section.get_by_role("button", name="Send forslag").focus()
    page.keyboard.press("Enter")
    expect(section.locator("#handover-pending-title")).to_contain_text(f"fra {hospital.team} til {municipal.team}")
    expect(section.locator("#handover-pending-title")).to_be_focused()
    expect(section.get_by_role("button", name="Trekk forslaget")).to_be_visible()
    expect(section.get_by_role("button", name="Aksepter overføringen")).to_be_hidden()

    other = browser.new_context(base_url=api_url, locale="nb-NO")
    try:
        receiver = other.new_page()
        sign_in(receiver, municipal.nurse, municipal.nurse_password)
        receiver.goto(f"/dashboard/patients/{patient}")
        expect(receiver.locator("#patient-name")).to_be_visible()
        theirs = receiver.locator("#episode")
        expect(theirs.locator("#episode-access")).to_contain_text("foreslått som nytt ansvarlig team")
        expect(receiver.locator("#edit-link")).to_be_hidden()
        expect(theirs.locator("#handover-note")).to_contain_text("Fall i SpO2 under 88 %")
        expect(theirs.locator("#handover-note")).to_contain_text("threshold.spo2.low")
        accept = theirs.get_by_role("button", name="Aksepter overføringen")
        accept.focus()
        receiver.keyboard.press("Enter")
        expect(theirs.locator("#episode-message")).to_contain_text("Ditt team er nå ansvarlig")
        expect(theirs.locator("#episode-summary")).to_contain_text(f"Ansvarlig: {municipal.team}")
        expect(receiver.locator("#edit-link")).to_be_visible()
        expect(theirs.locator("#episode-events li[data-event='handover_accepted']")).to_have_count(1)
        screenshot(receiver, "handover-accepted")
    finally:
        other.close()

    page.reload()
    expect(section.locator("#episode-access")).to_contain_text("lesetilgang som konsulent")
    expect(section.locator("#episode-summary")).to_contain_text(f"Ansvarlig: {municipal.team}")
    expect(section.locator("#handover-propose")).to_be_hidden()
    expect(section.locator("#discharge")).to_be_hidden()
    expect(page.locator("#edit-link")).to_be_hidden()
