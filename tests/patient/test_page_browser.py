"""The patient page in Debian Chromium (Playwright, headless, loopback only): usable with the keyboard alone, in
bokmål and English; a red reading's advice within a second; reminders with a chime; the nurse's receipt."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.edge.edge_fixtures import free_port
from tests.patient.gateway import RunningAgent, gateway_config, open_page, reading, tab_to
from tests.patient.plans import plan, wire
from vitals import Kind, Receipt, SelfManagementPlan, plan_topic
from vitals.plan import ActiveStep
from vitals.schedules import effective_content

pytestmark = pytest.mark.browser
OSLO = ZoneInfo("Europe/Oslo")


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[RunningAgent]:
    with RunningAgent(gateway_config(tmp_path, "127.0.0.1", free_port())) as running:
        running.agent.screen.plans.receive(plan_topic("gw-test-0001"), wire(1))
        yield running


@pytest.fixture
def page(browser: Browser, gw: RunningAgent) -> Iterator[Page]:
    with open_page(browser, gw.url) as p:
        yield p


def test_a_questionnaire_is_answered_with_tab_and_enter_in_bokmal_and_english(page: Page, gw: RunningAgent) -> None:
    expect(page.locator("h1")).to_have_text("Min plan")
    expect(page.locator("html")).to_have_attribute("lang", "nb")
    form = page.locator('[data-questionnaire="hf-symptoms"]')
    expect(form.locator("h3")).to_have_text("Hvordan har du det i dag?")

    tab_to(page, '[data-send="hf-symptoms"]')
    page.keyboard.press("Enter")
    expect(page.locator("#result-hf-symptoms")).to_have_text("Svar på 2 spørsmål til før du sender.")

    page.keyboard.press("Shift+Tab")
    tab_to(page, '[data-question="breath"] [data-option="a-lot"]')
    page.keyboard.press("Enter")
    expect(form.locator('[data-question="breath"] [data-option="a-lot"]')).to_have_attribute("aria-pressed", "true")
    tab_to(page, '[data-question="swelling"] [data-option="yes"]')
    page.keyboard.press("Enter")
    tab_to(page, '[data-send="hf-symptoms"]')
    page.keyboard.press("Enter")
    result = page.locator("#result-hf-symptoms")
    expect(result).to_contain_text("Takk! Svarene er lagret. Poengsum: 5.")
    expect(result).to_contain_text("Rød – følg rådet under nå")
    expect(result).to_contain_text("Ring sykepleieren nå.")
    assert gw.agent.questionnaires.depth == 1
    expect(result).to_be_focused()

    page.keyboard.press("Shift+Tab")
    tab_to(page, 'button[data-lang="en"]')
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("My plan")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(form.locator("h3")).to_have_text("How are you today?")
    expect(form).to_contain_text("Last answered today at")
    tab_to(page, '[data-question="breath"] [data-option="no"]')
    page.keyboard.press("Enter")
    tab_to(page, '[data-question="swelling"] [data-option="no"]')
    page.keyboard.press("Enter")
    tab_to(page, '[data-send="hf-symptoms"]')
    page.keyboard.press("Enter")
    expect(result).to_contain_text("Thank you! Your answers are saved. Score: 0.")
    expect(result).to_contain_text("Green – within your plan")
    assert gw.agent.questionnaires.depth == 2

    page.reload()
    expect(page.locator("h1")).to_have_text("My plan")  # the choice of language is remembered


def test_a_red_reading_shows_its_advice_within_a_second_in_large_plain_language(page: Page, gw: RunningAgent) -> None:
    expect(page.locator("#latest-body")).to_have_text("Ingen måling ennå.")
    expect(page.locator("#connection")).to_contain_text("Ingen internettforbindelse nå")
    gw.agent.accept([reading(Kind.BODY_WEIGHT, 86.4)])
    expect(page.locator("#latest-advice")).to_have_text(
        "Vekten har økt mye. Ring hjertesviktpoliklinikken nå.", timeout=1000
    )
    zone = page.locator("#latest-zone")
    expect(zone).to_have_attribute("data-zone", "red")
    expect(zone).to_contain_text("Rød – følg rådet under nå")
    expect(zone).to_contain_text("86,4 kg")
    assert float(zone.locator(".values").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 40
    expect(page.locator('#schedule [data-state="done"]')).to_contain_text("Utført kl.")
    expect(page.locator("#contact-list")).to_contain_text("+47 22 11 80 80")

    page.locator('button[data-lang="en"]').click()
    advice = page.locator("#latest-advice")
    expect(advice).to_have_text("Your weight has gone up a lot. Call the heart failure clinic now.")
    expect(zone).to_contain_text("86.4 kg")


def test_a_reminder_sounds_before_the_deadline_and_the_receipt_is_shown(browser: Browser, gw: RunningAgent) -> None:
    # The clock is set before the page opens: opened at the real time of day, the page would first sound whatever
    # reminder is due then (an evening one, in a run at 19:50) and then the morning one.
    today = datetime.now(OSLO)
    gw.agent.screen.clock = lambda: today.replace(hour=8, minute=15, second=0, microsecond=0)
    with open_page(browser, gw.url) as page:
        _reminder_and_receipts(page, gw, today)


def _reminder_and_receipts(page: Page, gw: RunningAgent, today: datetime) -> None:
    expect(page.locator("#reminders")).to_contain_text("Husk å måle vekt før kl. 09:00.")
    expect(page.locator("body")).to_have_attribute("data-chimes", "1")

    seen_at = today.replace(hour=10, minute=42, second=0, microsecond=0).astimezone(UTC)
    receipt = Receipt(id=uuid.uuid4(), at=seen_at, nb="Sett.", en="Seen.")
    gw.agent.screen.receive_receipt(receipt.to_json())
    expect(page.locator("#receipt-text")).to_have_text("Målingene dine ble sett av sykepleier kl. 10:42")
    page.locator('button[data-lang="en"]').click()
    expect(page.locator("#receipt-text")).to_have_text("Your measurements were seen by the nurse at 10:42")
    answered = Receipt(id=uuid.uuid4(), event="message_answered", at=seen_at, nb="Svar.", en="Answered.")
    gw.agent.screen.receive_receipt(answered.to_json())
    expect(page.locator("#message-text")).to_have_text(
        "The care team answered your message at 10:42. Read the answer in My follow-up."
    )
    expect(page.locator("#reminders")).to_contain_text("Remember to measure your body weight before 09:00.")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("body")).not_to_have_attribute("data-chimes", "1")  # once per item and day, not per load


def test_a_stepped_up_schedule_is_announced_in_plain_words_and_today_follows_it(page: Page, gw: RunningAgent) -> None:
    every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    step = {
        "kind": "body_weight",
        "zone": "yellow",
        "schedule": [{"kind": "body_weight", "deadline": d, "weekdays": every_day} for d in ("09:00", "20:00")],
    }
    base = plan(1, step_ups=[step])
    today = datetime.now(UTC).astimezone(OSLO).date()
    active = ActiveStep.model_validate(
        {"kind": "body_weight", "zone": "yellow", "since": datetime.now(UTC), "until": today + timedelta(days=5),
         "green_days": 0, "green_days_needed": 3}
    )  # fmt: skip
    stepped = SelfManagementPlan.model_validate(
        {
            **effective_content(base, [(Kind.BODY_WEIGHT, "yellow")]).model_dump(by_alias=True),
            "schedule_revision": 1,
            "active_steps": [active],
        }
    )
    assert gw.agent.screen.plans.receive(plan_topic("gw-test-0001"), stepped.to_json()) == "accepted"
    notice = page.locator("#schedule-notices .schedule-notice")
    expect(notice).to_have_text("Mål vekt to ganger daglig de neste 5 dagene.")
    expect(page.locator('#schedule [data-item$=":measurement:body_weight:2000"]')).to_have_count(1)
    page.locator('button[data-lang="en"]').click()
    expect(notice).to_have_text("Measure weight twice a day for the next 5 days.")
