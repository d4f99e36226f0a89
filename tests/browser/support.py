"""Browser tests: Playwright drives the system's Debian Chromium (headless, loopback only) against the dashboard
served by the real stack's API. The stack fixtures come from the integration suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect, sync_playwright

CHROMIUM = os.environ.get("VARDE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


# Module scope: the sync API runs an event loop in this thread while it is open, so it must be closed before
# other modules' tests (which call asyncio.run) run in the same session.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; install the Debian package `chromium` (make system-deps)")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


class PageErrors:
    """Uncaught script errors and content-security-policy violations seen by a page; a test fails on any."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def on_console(self, message: ConsoleMessage) -> None:
        text = message.text
        if message.type == "error" and ("Content Security Policy" in text or "Refused to" in text):
            self.errors.append(text)

    def on_page_error(self, error: Any) -> None:
        self.errors.append(str(error))


@pytest.fixture
def page(browser: Browser, api_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=api_url, viewport={"width": 1366, "height": 900}, locale="nb-NO")
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors = PageErrors()
    page.on("console", errors.on_console)
    page.on("pageerror", errors.on_page_error)
    yield page
    context.close()
    assert not errors.errors, f"script errors or CSP violations in the page: {errors.errors}"


def sign_in(page: Page, username: str, password: str, next_path: str = "/dashboard/") -> None:
    page.goto(f"/dashboard/login?next={next_path}")
    page.get_by_label("Brukernavn").fill(username)
    page.get_by_label("Passord").fill(password)
    page.get_by_role("button", name="Logg inn").click()
    page.wait_for_url(lambda url: urlsplit(url).path == next_path)
    expect(page.locator("#user-name")).not_to_be_empty()


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
