"""The interactive API documentation in real Chromium: /docs (Swagger UI) renders the OpenAPI document with every
network request going to the API's own origin (no CDN: closed hospital networks have no internet), under
a content security policy without inline scripts (the `page` fixture fails on any CSP violation or script error)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _foreign(requests: list[str], api_url: str) -> list[str]:
    own = _origin(api_url)
    return [u for u in requests if not (u.startswith(("data:", f"blob:{own}/")) or _origin(u) == own)]


def test_swagger_ui_renders_from_the_apis_own_files(page: Page, api_url: str) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Varde clinician API")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert page.locator(".opblock").count() >= 30
    expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    assert f"{api_url}/openapi.json" in requests
    assert any(u.endswith("/docs/assets/swagger-ui-bundle.js") for u in requests)
    assert _foreign(requests, api_url) == []


def test_the_docs_page_allows_scripts_from_this_origin_only(api_url: str) -> None:
    response = httpx.get(f"{api_url}/docs", timeout=30)
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy, policy
    assert "cdn" not in response.text.lower() and "https://" not in response.text
    for gone in ("/redoc", "/docs/oauth2-redirect"):  # ReDoc's bundle loads its logo from a CDN; no OAuth2 redirects
        assert httpx.get(f"{api_url}{gone}", timeout=30).status_code == 404
