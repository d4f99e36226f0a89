"""The patient app in real Chromium, signed in through the real OpenID provider: today's reading and its zone, the
plan's advice, what became of an alarm, a message that reaches the nurse's queue and the nurse's answer, the access
log; a relative with a read-only proxy and one with every right and two patients; revocation; a reservation seen
in the dashboard; a stepped-up schedule's notice. Every page, a relative's too, is checked with axe-core, by
keyboard and at 200 % zoom."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect

from clinician_api.citizen.sessions import COOKIE
from rules_engine.alarms import AlarmUpsert, upsert_alarms
from tests.browser.support import PageErrors, browser, playwright, screenshot
from tests.citizen.stack import OidcStack
from tests.citizen.support import MIN, Home, People, grant_proxy, national_sign_in
from tests.integration.api.support import insert_alarm
from tests.patient.plans import plan_body

__all__ = ["browser", "playwright"]

pytestmark = pytest.mark.integration
AXE = Axe()
PAGES = ["/min/", "/min/plan", "/min/questionnaire", "/min/messages", "/min/log", "/min/sharing"]
RIGHTS = ["read_measurements", "read_plan", "answer_questionnaires", "write_messages", "read_access_log"]
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@pytest.fixture
def open_context(browser: Browser, oidc: OidcStack) -> Iterator[Any]:
    contexts: list[tuple[BrowserContext, PageErrors]] = []

    def make(locale: str = "nb-NO", **options: Any) -> Page:
        context = browser.new_context(base_url=oidc.api_url, locale=locale, **options)
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors = PageErrors()
        page.on("console", errors.on_console)
        page.on("pageerror", errors.on_page_error)
        contexts.append((context, errors))
        return page

    yield make
    for context, errors in contexts:
        context.close()
        assert not errors.errors, f"script errors or CSP violations: {errors.errors}"


def provider_login(page: Page, login: str) -> None:
    """The provider's own sign-in page (oidc-provider's development interaction): any password."""
    page.goto("/min/login")
    page.get_by_role("link", name="Logg inn med ID-porten").click()
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any")
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/min/$"))


def staff_login(page: Page, username: str, password: str, next_path: str) -> None:
    page.goto(f"/dashboard/login?next={next_path}")
    page.get_by_label("Brukernavn").fill(username)
    page.get_by_label("Passord").fill(password)
    page.get_by_role("button", name="Logg inn").click()
    page.wait_for_url(lambda url: next_path in url)


def assert_accessible(page: Page, what: str) -> None:
    results = AXE.run(page)
    assert results.response["testEngine"]["name"] == "axe-core" and results.response["passes"], "axe did not run"
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, f"{what}: {serious}"


def assert_no_horizontal_scroll(page: Page, what: str) -> None:
    width = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], f"{what} scrolls sideways at this width: {width}"


def step_up_weight(oidc: OidcStack, home: Home, db: psycopg.Connection[Any]) -> None:
    """The nurse activates a plan that measures weight twice a day after a yellow weight alarm, and the rules open
    one (the step-up happens in the alarm's own transaction, as in production)."""
    step = {
        "kind": "body_weight",
        "zone": "yellow",
        "schedule": [{"kind": "body_weight", "deadline": d, "weekdays": EVERY_DAY} for d in ("09:00", "20:00")],
    }
    plans = f"{oidc.api_url}/api/v1/patients/{home.patient_id}/plans"
    made = httpx.post(plans, headers=home.nurse_headers, json=plan_body(step_ups=[step]), timeout=30)
    assert made.status_code == 201, made.text
    activated = httpx.post(f"{plans}/{made.json()['version']}/activate", headers=home.nurse_headers, timeout=30)
    assert activated.status_code == 200, activated.text
    alarm = AlarmUpsert(
        patient_id=home.patient_id, rule="threshold.body_weight.high", kind="body_weight", severity="yellow",
        value=83.1, limit=82.0, count=1, reading_id=None, measured_at=datetime.now(UTC), window_start=None,
        window_end=None, explanation_nb="Vekt 83,1 kg over 82 kg", explanation_en="Weight 83.1 kg above 82 kg",
    )  # fmt: skip
    with psycopg.connect(db.info.dsn, password=db.info.password) as conn, conn.transaction():
        upsert_alarms(conn, [alarm], "rules")


def test_patient_journey_from_national_sign_in_to_the_nurses_answer(
    open_context: Any, oidc: OidcStack, people: People, home: Home, db: psycopg.Connection[Any]
) -> None:
    seen = insert_alarm(db, home.patient_id, kind="body_weight", value=83.1, opened_minutes_ago=5)
    acknowledged = httpx.post(
        f"{oidc.api_url}/api/v1/alarms/{seen}/acknowledge", headers=home.nurse_headers, timeout=30
    )
    assert acknowledged.status_code == 200
    patient = open_context()
    provider_login(patient, people.patient_nid)
    today = patient.locator("#today")
    expect(today).to_contain_text("83,1 kg")
    expect(today).to_contain_text("Gul sone")
    expect(today).to_contain_text("Ta en ekstra vanndrivende tablett i dag.")
    expect(patient.locator(".kind-chart svg")).to_have_count(1)
    expect(patient.locator("#alarms")).to_contain_text(
        "Sykepleier Kari Sykepleier har sett målingen din (83,1 kg) og tar kontakt med deg i dag."
    )

    patient.get_by_role("link", name="Min plan").click()
    expect(patient.locator("#zone-advice")).to_contain_text("Ring sykepleieren nå.")
    expect(patient.locator("#zone-advice")).to_contain_text("Vekten har økt mye.")

    patient.get_by_role("link", name="Meldinger").click()
    patient.get_by_label("Emne").fill("Vekten min")
    patient.get_by_label("Melding", exact=True).fill("Vekten har gått opp. Hva gjør jeg?")
    patient.get_by_role("button", name="Send").last.click()
    expect(patient.locator("#thread-messages")).to_contain_text("Vekten har gått opp.")

    nurse = open_context()
    staff_login(nurse, home.tenant.nurse, home.tenant.nurse_password, "/dashboard/")
    waiting = nurse.locator("#awaiting li", has_text="Vekten min")
    expect(waiting).to_be_visible()
    waiting.get_by_role("link").click()
    expect(nurse.locator("#contact-thread-messages")).to_contain_text("Vekten har gått opp.")
    nurse.get_by_label("Svarmal").select_option(label="Takk, vi ringer deg")
    nurse.get_by_role("button", name="Send svar").click()
    expect(nurse.locator("#contact-thread-messages")).to_contain_text("Vi ringer deg i løpet av dagen.")

    patient.reload()
    patient.locator(".thread-link", has_text="Vekten min").click()
    answer = patient.locator("#thread-messages li.from-team")
    expect(answer).to_contain_text("Kari Sykepleier, Sykepleier")
    expect(answer).to_contain_text("Vi ringer deg i løpet av dagen.")

    patient.get_by_role("link", name="Hvem har sett").click()
    expect(patient.locator("#log")).to_contain_text("Kari Sykepleier (Sykepleier) så journalen din i Varde.")
    expect(patient.locator("#log")).to_contain_text(home.tenant.team)
    screenshot(patient, "min-log-nb")


def test_relative_with_read_only_proxy_sees_measurements_cannot_write_and_is_refused_after_revocation(
    open_context: Any, oidc: OidcStack, people: People, home: Home
) -> None:
    owner = national_sign_in(oidc.api_url, people.patient_nid)
    proxy = grant_proxy(owner, home.patient_id, people.relative_nid, ["read_measurements", "read_plan"], days=7)
    relative = open_context()
    provider_login(relative, people.relative_nid)
    relative.goto(f"/min/?p={home.patient_id}")
    expect(relative.locator("#today")).to_contain_text("83,1 kg")
    expect(relative.get_by_role("link", name="Meldinger")).to_be_hidden()
    expect(relative.get_by_role("link", name="Spørreskjema")).to_be_hidden()
    expect(relative.get_by_role("link", name="Deling og fullmakt")).to_be_hidden()
    relative.goto(f"/min/messages?p={home.patient_id}")
    expect(relative.locator("#no-access")).to_have_text("Fullmakten din gir ikke rett til å skrive meldinger.")
    expect(relative.locator("#new-form")).to_be_hidden()
    for path in ("/min/", "/min/plan", "/min/messages"):
        relative.goto(f"{path}?p={home.patient_id}")
        relative.wait_for_load_state("networkidle")
        assert_accessible(relative, f"relative {path}")

    assert owner.post(f"/api/v1/min/patients/{home.patient_id}/proxies/{proxy['id']}/revoke", headers=MIN).is_success
    relative.goto(f"/min/?p={home.patient_id}")
    expect(relative.locator("#today li")).to_have_count(0)
    refused = relative.request.get(f"/api/v1/min/patients/{home.patient_id}/measurements")
    assert refused.status == 404


def test_every_relative_page_passes_axe_and_reflows_with_every_right_and_a_second_patient(
    open_context: Any, oidc: OidcStack, people: People, home: Home
) -> None:
    assert httpx.get(
        f"{oidc.api_url}/api/v1/patients/{home.patient_id}", headers=home.nurse_headers, timeout=30
    ).is_success  # something for the relative's access log to list
    owner = national_sign_in(oidc.api_url, people.patient_nid)
    grant_proxy(owner, home.patient_id, people.relative_nid, RIGHTS, days=7)
    other = national_sign_in(oidc.api_url, people.other_patient_nid)
    grant_proxy(other, home.other_patient_id, people.relative_nid, ["read_measurements"], days=7)
    relative = open_context()
    provider_login(relative, people.relative_nid)
    acting = relative.locator("#acting")
    expect(acting).to_be_visible()
    expect(acting.locator("option")).to_have_count(2)
    for path in PAGES:
        relative.goto(f"{path}?p={home.patient_id}")
        expect(relative.locator("#loading")).to_have_count(0)  # removed once the page has its data
        assert_accessible(relative, f"relative {path}")
    expect(relative.locator("#no-access")).to_be_visible()  # /min/sharing is the patient's own
    relative.goto(f"/min/log?p={home.patient_id}")
    expect(relative.locator("#log")).to_contain_text("Kari Sykepleier (Sykepleier) så journalen din i Varde.")

    for width, height in ((640, 400), (360, 740)):
        relative.set_viewport_size({"width": width, "height": height})
        for path in PAGES:
            relative.goto(f"{path}?p={home.patient_id}")
            expect(relative.locator("#loading")).to_have_count(0)
            assert_no_horizontal_scroll(relative, f"relative {path} at {width} px")
    relative.goto(f"/min/?p={home.patient_id}")
    expect(relative.locator("#today")).to_contain_text("83,1 kg")
    screenshot(relative, "min-relative-home-360")

    # The selector takes the relative to the other patient, whose proxy gives measurements only.
    acting.select_option(str(home.other_patient_id))
    relative.wait_for_url(re.compile(rf"p={home.other_patient_id}"))
    expect(relative.locator("#today")).to_contain_text("99,9 kg")
    expect(relative.get_by_role("link", name="Min plan")).to_be_hidden()
    assert_accessible(relative, "relative / of the second patient")
    assert_no_horizontal_scroll(relative, "relative / of the second patient at 360 px")


def test_every_patient_page_passes_axe_by_keyboard_and_at_200_percent_zoom(
    open_context: Any, oidc: OidcStack, people: People, home: Home
) -> None:
    login = open_context()
    login.goto("/min/login")
    assert_accessible(login, "login")
    patient = open_context()
    provider_login(patient, people.patient_nid)
    for path in PAGES:
        patient.goto(path)
        patient.wait_for_load_state("networkidle")
        expect(patient.locator("#loading")).to_have_count(0)
        assert_accessible(patient, path)

    # 200 % zoom of a 1280 px wide window is a 640 px wide layout; a phone is narrower still.
    for width, height in ((640, 400), (360, 740)):
        patient.set_viewport_size({"width": width, "height": height})
        for path in PAGES:
            patient.goto(path)
            patient.wait_for_load_state("networkidle")
            assert_no_horizontal_scroll(patient, f"{path} at {width} px")

    # Keyboard only: skip link, menu, and writing a message without the mouse.
    patient.set_viewport_size({"width": 1024, "height": 800})
    patient.goto("/min/")
    patient.wait_for_load_state("networkidle")
    patient.keyboard.press("Tab")
    expect(patient.locator(".skip-link")).to_be_focused()
    focused_nav = []
    for _ in range(12):
        patient.keyboard.press("Tab")
        focused_nav.append(patient.evaluate("() => document.activeElement.textContent.trim()"))
    assert "Meldinger" in focused_nav, focused_nav
    patient.goto("/min/messages")
    expect(patient.locator("#messages-area")).to_be_visible()
    patient.locator("#new-subject").focus()
    patient.keyboard.type("Tastatur")
    patient.keyboard.press("Tab")
    patient.keyboard.type("Skrevet uten mus.")
    patient.keyboard.press("Tab")
    expect(patient.locator("#new-form button[type=submit]")).to_be_focused()
    patient.keyboard.press("Enter")
    expect(patient.locator("#thread-messages")).to_contain_text("Skrevet uten mus.")

    # The plan by keyboard: the skip link lands in the content, and Tab reaches the contacts' phone numbers.
    patient.goto("/min/plan")
    expect(patient.locator("#loading")).to_have_count(0)
    patient.keyboard.press("Tab")
    expect(patient.locator(".skip-link")).to_be_focused()
    patient.keyboard.press("Enter")
    expect(patient.locator("#main")).to_be_focused()
    patient.keyboard.press("Tab")
    expect(patient.locator("#contacts a").first).to_be_focused()
    expect(patient.locator("#contacts a").first).to_have_attribute("href", "tel:+4722118080")

    # Sharing by keyboard: a reservation with Space, then a proxy revoked with Enter; focus stays on the page.
    owner = national_sign_in(oidc.api_url, people.patient_nid)
    grant_proxy(owner, home.patient_id, people.relative_nid, ["read_measurements"], days=7)
    patient.goto("/min/sharing")
    expect(patient.locator("#loading")).to_have_count(0)
    research = patient.locator("#reservation-research")
    expect(research).to_be_checked()
    for _ in range(20):
        patient.keyboard.press("Tab")
        if patient.evaluate("() => document.activeElement.id") == "reservation-research":
            break
    expect(research).to_be_focused()
    patient.keyboard.press("Space")
    expect(patient.locator("#reservations")).to_contain_text("Endret")
    expect(research).not_to_be_checked()
    expect(research).to_be_focused()
    patient.keyboard.press("Tab")
    revoke = patient.get_by_role("button", name=re.compile("Ola Pårørende"))
    expect(revoke).to_be_focused()
    patient.keyboard.press("Enter")
    expect(patient.locator("#proxies")).to_contain_text("Ola Pårørende")
    expect(revoke).to_have_count(0)
    expect(patient.locator("#proxies-heading")).to_be_focused()  # not lost with the button


def test_reservation_against_record_sharing_is_visible_in_the_dashboard(
    open_context: Any, oidc: OidcStack, people: People, home: Home
) -> None:
    patient = open_context()
    provider_login(patient, people.patient_nid)
    patient.get_by_role("link", name="Deling og fullmakt").click()
    sharing = patient.get_by_label("Send målingene mine til journalen på sykehuset")
    expect(sharing).to_be_checked()
    sharing.uncheck()
    expect(patient.locator("#reservations")).to_contain_text("Endret")
    nurse = open_context()
    staff_login(nurse, home.tenant.nurse, home.tenant.nurse_password, f"/dashboard/patients/{home.patient_id}")
    expect(nurse.locator("[data-reservation=record_sharing]")).to_contain_text("RESERVERT")
    expect(nurse.locator("[data-reservation=research]")).to_contain_text("Ingen reservasjon")
    assert (
        httpx.get(f"{oidc.api_url}/min/", timeout=30)
        .headers["content-security-policy"]
        .startswith("default-src 'none'")
    )


def test_patient_answers_the_questionnaire_by_keyboard_and_a_relative_with_the_right_answers_in_english(
    open_context: Any, oidc: OidcStack, people: People, home: Home
) -> None:
    patient = open_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    provider_login(patient, people.patient_nid)
    patient.get_by_role("link", name="Svar på «Hvordan har du det i dag?»").click()
    expect(patient.locator("#loading")).to_have_count(0)
    assert_accessible(patient, "questionnaire (nb)")
    send = patient.get_by_role("button", name="Send svarene")
    send.focus()
    patient.keyboard.press("Enter")
    expect(patient.get_by_role("alert").first).to_contain_text("Svar på alle spørsmålene")
    first = patient.get_by_role("radio", name="Nei").first
    expect(first).to_be_focused()
    patient.keyboard.press("Space")
    patient.keyboard.press("ArrowDown")
    patient.keyboard.press("ArrowDown")
    expect(patient.get_by_role("radio", name="Mye")).to_be_checked()
    patient.keyboard.press("Tab")
    patient.keyboard.press("Space")
    patient.keyboard.press("ArrowDown")
    expect(patient.get_by_role("radio", name="Ja")).to_be_checked()
    patient.keyboard.press("Tab")
    expect(send).to_be_focused()
    patient.keyboard.press("Enter")
    result = patient.locator("[data-result]")
    expect(result).to_contain_text("Takk! Svarene er sendt til sykepleierne.")
    expect(result).to_contain_text("Rød sone")
    expect(result).to_contain_text("Ring sykepleieren nå.")
    expect(patient.locator(".result-heading")).to_be_focused()
    assert_no_horizontal_scroll(patient, "questionnaire on a phone")
    screenshot(patient, "min-questionnaire-nb")

    owner = national_sign_in(oidc.api_url, people.patient_nid)
    grant_proxy(owner, home.patient_id, people.relative_nid, ["answer_questionnaires"], days=7)
    relative = open_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    provider_login(relative, people.relative_nid)
    relative.get_by_role("link", name="English").click()
    relative.goto(f"/min/questionnaire?p={home.patient_id}")
    expect(relative.locator("#page-title")).to_have_text(re.compile(r"^Questionnaire for Pasient "))
    expect(relative.locator("[data-answered]")).to_contain_text("by Kari Pasient")
    expect(relative.get_by_role("link", name="Messages")).to_be_hidden()
    relative.get_by_role("radio", name="A little").check()
    relative.get_by_role("radio", name="No").last.check()
    relative.get_by_role("button", name="Send the answers").click()
    expect(relative.locator("[data-result]")).to_contain_text("Green zone: as planned")
    assert_accessible(relative, "questionnaire (en, relative)")
    screenshot(relative, "min-questionnaire-en")
    relative.reload()
    expect(relative.locator("[data-answered]")).to_contain_text(
        "by Ola Pårørende, a relative, on behalf of the patient"
    )


@pytest.mark.parametrize("lang", ["nb", "en"])
def test_the_app_speaks_bokmal_and_english_on_a_phone(
    open_context: Any, oidc: OidcStack, people: People, home: Home, db: psycopg.Connection[Any], lang: str
) -> None:
    words = {
        "nb": ("Gul sone", "Hva du gjør i hver sone", "Hvem har sett"),
        "en": ("Yellow zone", "What to do in each zone", "Who has looked"),
    }[lang]
    notice = {
        "nb": ("Målingene er trappet opp. Mål vekt to ganger daglig de neste 5 dagene.", "Vekt før kl. 20:00"),
        "en": (
            "You measure more often for now. Measure weight twice a day for the next 5 days.",
            "Body weight before 20:00",
        ),
    }[lang]
    step_up_weight(oidc, home, db)
    patient = open_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    provider_login(patient, people.patient_nid)
    if lang == "en":
        patient.get_by_role("link", name="English").click()
    expect(patient.locator("#today")).to_contain_text(words[0])
    expect(patient.locator(".kind-chart")).to_have_count(1)
    expect(patient.locator("html")).to_have_attribute("lang", lang)
    expect(patient.locator("#reminders-card .schedule-notice")).to_have_text(notice[0])
    # Weighed once today: that fills one of the two weight times of the stepped-up day, not both.
    weight = patient.locator("#reminders li", has_text=notice[1].split(" ")[0])
    expect(weight).to_have_count(2)
    expect(weight.and_(patient.locator("li.done"))).to_have_count(1)
    assert_no_horizontal_scroll(patient, f"home ({lang}) on a phone")
    screenshot(patient, f"min-home-{lang}")
    patient.goto("/min/plan")
    expect(patient.locator("#zones-heading")).to_have_text(words[1])
    expect(patient.locator("#zone-advice .zone-card")).to_have_count(3)
    expect(patient.locator("#loading")).to_have_count(0)
    expect(patient.locator("#schedule-notices .schedule-notice")).to_have_text(notice[0])
    expect(patient.locator("#schedule")).to_contain_text(notice[1])  # the schedule in force, stepped up
    assert_accessible(patient, f"plan ({lang}) stepped up")
    screenshot(patient, f"min-plan-{lang}")
    expect(patient.get_by_role("link", name=words[2])).to_be_visible()


def test_nurse_signs_in_with_the_staff_issuer_and_lands_in_the_queue(
    open_context: Any, oidc: OidcStack, people: People, home: Home
) -> None:
    nurse = open_context()
    nurse.goto("/dashboard/login")
    nurse.get_by_role("link", name="Logg inn med HelseID").click()
    nurse.locator("input[name=login]").fill(f"hpr-{people.nurse_hpr}")
    nurse.locator("input[name=password]").fill("any")
    nurse.locator("button[type=submit]").click()
    nurse.wait_for_url(re.compile(r"/dashboard/$"))
    expect(nurse.locator("#user-name")).to_contain_text("Kari Sykepleier")
    expect(nurse.locator("#awaiting-section")).to_be_visible()
    assert "#code=" not in nurse.url


def test_only_someone_whose_session_ended_is_told_they_were_signed_out(
    open_context: Any, oidc: OidcStack, people: People, home: Home
) -> None:
    first = open_context()
    first.goto("/min/")
    first.wait_for_url(re.compile(r"/min/login$"))
    expect(first.get_by_role("link", name="Logg inn med ID-porten")).to_be_visible()
    expect(first.locator("#login-notice")).to_be_hidden()

    # Signed in, then the session ends behind the page's back (idle timeout, or ended from another device).
    returning = open_context()
    provider_login(returning, people.patient_nid)
    cookies = [c for c in returning.context.cookies() if c["name"] == COOKIE]
    assert cookies, "signing in set no session cookie"
    context = returning.context
    returning.close()  # its own polling would navigate to the sign-in page meanwhile
    context.add_cookies([{**cookies[0], "value": "ended-" + cookies[0]["value"][:8]}])
    back = context.new_page()
    # The page leaves for the sign-in form as soon as the API refuses the session, before its own "load".
    back.goto("/min/", wait_until="commit")
    back.wait_for_url(re.compile(r"/min/login\?reason=expired$"))
    expect(back.locator("#login-notice")).to_have_text(
        "Du ble logget ut fordi det var lenge siden du brukte siden. Logg inn igjen."
    )
