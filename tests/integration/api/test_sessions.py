"""Dashboard sessions over HTTP against the real API: the refresh cookie is HttpOnly and SameSite=Strict, rotates on
every use, a reused token ends its whole session, the idle timeout and sign-out end it server-side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest

from store.settings import Settings
from tests.stack_plugin import Tenant

pytestmark = pytest.mark.integration
HEADER = {"X-Varde-Session": "1"}


def _open(api_url: str, tenant: Tenant) -> tuple[httpx.Client, dict[str, Any]]:
    client = httpx.Client(base_url=api_url, timeout=30.0)
    answer = client.post("/api/v1/auth/session", data={"username": tenant.nurse, "password": tenant.nurse_password})
    assert answer.status_code == 200, answer.text
    return client, answer.json() | {"set_cookie": answer.headers["set-cookie"]}


def _refresh(api_url: str, cookie: str, idle_ms: int | None = None) -> httpx.Response:
    idle = {} if idle_ms is None else {"X-Varde-Idle-Ms": str(idle_ms)}
    return httpx.post(f"{api_url}/api/v1/auth/refresh", headers={**HEADER, **idle, "Cookie": f"varde_refresh={cookie}"})


def test_refresh_cookie_is_httponly_strict_and_rotates_and_a_reused_token_ends_the_session(
    api_url: str, make_tenant: Callable[..., Tenant]
) -> None:
    tenant = make_tenant()
    client, opened = _open(api_url, tenant)
    cookie_header = opened["set_cookie"].lower()
    assert "httponly" in cookie_header and "samesite=strict" in cookie_header and "path=/api/v1/auth" in cookie_header
    assert opened["expires_in"] == Settings().session_access_minutes * 60
    assert opened["idle_timeout"] == Settings().session_idle_minutes * 60
    first = client.cookies["varde_refresh"]

    renewed = _refresh(api_url, first)
    assert renewed.status_code == 200, renewed.text
    second = renewed.cookies["varde_refresh"]
    assert second != first
    me = httpx.get(f"{api_url}/api/v1/me", headers={"Authorization": f"Bearer {renewed.json()['access_token']}"})
    assert me.status_code == 200 and me.json()["username"] == tenant.nurse

    # The used token again within the grace: the browser whose answer was lost (it left the page while the renewal
    # was in flight, so the new cookie never arrived) gets a successor of its own, and the session goes on.
    again = _refresh(api_url, first)
    assert again.status_code == 200, again.text
    assert again.cookies["varde_refresh"] not in (first, second)

    # The used token again (after the grace for racing tabs): someone holds a copy, so the whole family ends.
    with psycopg.connect(Settings().require_database_url(), autocommit=True) as db:
        db.execute(
            "UPDATE staff_sessions s SET used_at = used_at - interval '1 minute' FROM users u "
            "WHERE u.id = s.user_id AND u.username = %s AND s.used_at IS NOT NULL",
            (tenant.nurse,),
        )
    reused = _refresh(api_url, first)
    assert reused.status_code == 401 and "reused" in reused.json()["detail"]
    assert _refresh(api_url, second).status_code == 401


def test_refresh_needs_the_session_header_so_a_cross_site_form_cannot_renew(
    api_url: str, make_tenant: Callable[..., Tenant]
) -> None:
    client, _ = _open(api_url, make_tenant())
    answer = httpx.post(
        f"{api_url}/api/v1/auth/refresh", headers={"Cookie": f"varde_refresh={client.cookies['varde_refresh']}"}
    )
    assert answer.status_code == 403


def test_a_session_idle_longer_than_the_setting_cannot_be_renewed(
    api_url: str, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant()
    client, _ = _open(api_url, tenant)
    idle = Settings().session_idle_minutes
    db.execute(
        "UPDATE staff_sessions s SET created_at = now() - make_interval(mins => %s + 1) FROM users u "
        "WHERE u.id = s.user_id AND u.username = %s",
        (idle, tenant.nurse),
    )
    answer = _refresh(api_url, client.cookies["varde_refresh"])
    assert answer.status_code == 401 and "idle" in answer.json()["detail"]
    assert "varde_refresh=" in answer.headers.get("set-cookie", "")  # the cookie is cleared


def test_sign_out_ends_the_refresh_token_on_the_server(
    api_url: str, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant()
    client, _ = _open(api_url, tenant)
    token = client.cookies["varde_refresh"]
    assert client.post("/api/v1/auth/logout", headers=HEADER).status_code == 204
    assert _refresh(api_url, token).status_code == 401
    row = db.execute(
        "SELECT s.revoked_reason FROM staff_sessions s JOIN users u ON u.id = s.user_id WHERE u.username = %s",
        (tenant.nurse,),
    ).fetchone()
    assert row is not None and row[0] == "signed_out"


def test_idle_timeout_is_a_deployment_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VARDE_SESSION_IDLE_MINUTES", "480")
    monkeypatch.setenv("VARDE_SESSION_ACCESS_MINUTES", "5")
    settings = Settings()
    assert settings.session_idle_minutes == 480 and settings.session_access_minutes == 5


def test_a_page_reporting_no_input_for_longer_than_the_idle_timeout_cannot_renew(
    api_url: str, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    """The page renews while its screen is watched; the time since the last input it reports decides."""
    tenant = make_tenant()
    client, _ = _open(api_url, tenant)
    idle_ms = Settings().session_idle_minutes * 60_000
    watched = _refresh(api_url, client.cookies["varde_refresh"], idle_ms=idle_ms - 60_000)
    assert watched.status_code == 200, watched.text
    left = _refresh(api_url, watched.cookies["varde_refresh"], idle_ms=idle_ms)
    assert left.status_code == 401 and "idle" in left.json()["detail"]
    row = db.execute(
        "SELECT count(*) FILTER (WHERE s.revoked_reason = 'idle'), count(*) FROM staff_sessions s "
        "JOIN users u ON u.id = s.user_id WHERE u.username = %s",
        (tenant.nurse,),
    ).fetchone()
    assert row is not None and row[0] == row[1] == 2  # the whole session ended
