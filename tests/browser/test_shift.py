"""A nurse's whole shift in a real browser: one row per measurement act acted on at once, sessions that
are renewed while the screen is in use and warn before they end, drafts kept across a sign-in, trend alarms on the
patient's tiles, trend limits tailored per patient and honoured by the rules, and escalation that reaches the
on-call nurse through a loopback receiver. Time in the page runs on Playwright's clock, never on sleeps."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Page, expect

from store.settings import Settings
from tests.browser.support import screenshot, sign_in
from tests.integration.api.support import insert_alarm, insert_readings
from tests.stack_plugin import Tenant, publish, wait_for
from vitals import DeviceRef, Envelope, Reading, readings_topic

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CUFF = DeviceRef(address="A4:C1:38:00:00:02", type="blood_pressure_monitor", model="UA-651BLE")
SCALE = DeviceRef(address="A4:C1:38:00:00:03", type="weight_scale", model="UC-352BLE")


class Receiver:
    """A loopback HTTP receiver standing in for the on-call system (webhook channel): keeps every JSON body."""

    def __init__(self) -> None:
        bodies: list[dict[str, Any]] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/oncall"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def _bp(gateway_id: str, systolic: float, diastolic: float, mean: float, pulse: float) -> bytes:
    """One cuff inflation: four readings sharing the act's `group`."""
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    group = uuid.uuid4().hex
    readings = tuple(
        Reading(id=uuid.uuid4(), kind=kind, value=value, unit=unit, measured_at=now, device=CUFF, group=group)
        for kind, value, unit in (
            ("bp_systolic", systolic, "mm[Hg]"),
            ("bp_diastolic", diastolic, "mm[Hg]"),
            ("bp_mean", mean, "mm[Hg]"),
            ("pulse_rate", pulse, "/min"),
        )
    )
    return Envelope(gateway_id=gateway_id, sent_at=now, readings=readings).to_json()


def _weight(gateway_id: str, value: float) -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    reading = Reading(id=uuid.uuid4(), kind="body_weight", value=value, unit="kg", measured_at=now, device=SCALE)
    return Envelope(gateway_id=gateway_id, sent_at=now, readings=(reading,)).to_json()


def _weight_history(db: psycopg.Connection[Any], tenant: Tenant, index: int, kg: float = 80.0) -> None:
    """Three mornings: steady, steady, then yesterday already 2.7 kg up (a gain the rules confirm on the next
    weighing: one heavy reading alone is no trend)."""
    gateway = tenant.gateways[index]
    now = datetime.now(UTC)
    times = [now - timedelta(days=d, hours=2) for d in (3, 2, 1)]
    insert_readings(
        db, gateway.patient_id, gateway.gateway_id, "body_weight", [kg, kg, kg + 2.7], times, device_type="weight_scale"
    )


def _pump_until(page: Page, check: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Wait for something the page's events report: Playwright delivers them only while it is called."""
    for _ in range(int(timeout_s * 10)):
        if check():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _name(tenant: Tenant, index: int) -> str:
    return f"Pasient {tenant.team.removeprefix('team-')}-{index}"


def test_a_scripted_shift_refresh_group_acknowledge_trend_tile_tailored_rule_and_escalation(
    page: Page,
    make_tenant: Callable[..., Tenant],
    db: psycopg.Connection[Any],
    settings: Settings,
    receiver: Receiver,
) -> None:
    from varde.admin import add_escalation_target

    tenant = make_tenant(patients=2, protocol="heart_failure")
    add_escalation_target(settings, tenant.team, "Vakthavende sykepleier", "webhook", receiver.url)
    first, second = tenant.gateways
    _weight_history(db, tenant, 0)
    _weight_history(db, tenant, 1)
    refreshes: list[str] = []
    page.on("request", lambda r: refreshes.append(r.url) if r.url.endswith("/api/v1/auth/refresh") else None)
    page.clock.install()
    sign_in(page, tenant.nurse, tenant.nurse_password)
    expect(page.locator("#stream-status")).to_have_attribute("data-state", "live")

    # One cuff inflation over the red systolic and the yellow diastolic limit: one row, the red value as headline.
    assert publish(first, readings_topic(first.gateway_id), _bp(first.gateway_id, 226, 114, 151, 80)) < 128
    row = page.locator("#queue-body tr").filter(has_text=_name(tenant, 0))
    expect(row).to_have_count(1, timeout=15_000)
    expect(row).to_have_attribute("data-severity", "red")
    expect(row.locator(".explanation")).to_contain_text("226")
    expect(row.locator(".also")).to_contain_text("114")
    expect(row.locator(".when")).to_contain_text("Målt")
    expect(row.locator(".when")).to_contain_text("mottatt")
    # Systolic, diastolic (and NEWS2, whose deciding reading is the systolic) are one event.
    ids = (row.get_attribute("data-alarm-ids") or "").split()
    rules = db.execute("SELECT rule FROM alarms WHERE id = ANY(%s::uuid[]) ORDER BY rule", (ids,)).fetchall()
    assert {"threshold.bp_systolic.high", "threshold.bp_diastolic.high"} <= {r[0] for r in rules}
    screenshot(page, "shift-01-bp-event-one-row")
    row.get_by_role("button", name=re.compile("^Kvitter alle")).click()
    expect(row.locator(".state")).to_have_text("Kvittert")
    states = db.execute("SELECT state FROM alarms WHERE id = ANY(%s::uuid[])", (ids,)).fetchall()
    assert {s[0] for s in states} == {"acknowledged"}

    # 35 minutes of the shift on the page's clock, with the nurse at the screen: tokens (10 min) are renewed.
    token_before = page.evaluate("sessionStorage.getItem('varde.token')")
    renewed = "() => Number(sessionStorage.getItem('varde.token_expires')) - Date.now() > 60000"
    for _ in range(7):
        page.keyboard.press("Shift")
        page.clock.fast_forward("05:00")
        page.wait_for_function(renewed, polling=100)  # a renewal that fell due has completed
    _pump_until(page, lambda: len(refreshes) >= 3, "three silent token renewals")
    expect(page.locator("#session-warning")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('varde.token')") != token_before
    assert "login" not in page.url
    screenshot(page, "shift-02-after-35-minutes")

    # A weight gain of 2.9 kg in 3 days, confirmed by the second heavy weighing in a row (heart-failure limit
    # 2.0 kg): the weight tile shows the trend alarm.
    assert publish(first, readings_topic(first.gateway_id), _weight(first.gateway_id, 82.9)) < 128
    expect(page.locator("#queue-body tr").filter(has_text="Vekt")).to_have_count(1, timeout=15_000)
    page.locator("#queue-body tr").filter(has_text="Vekt").get_by_role("link", name=_name(tenant, 0)).click()
    tile = page.locator("#latest li[data-kind='body_weight']")
    expect(tile).to_have_attribute("data-zone", "yellow")
    expect(tile.locator(".tile-alarm")).to_contain_text("+2,9 kg")
    screenshot(page, "shift-03-trend-on-tile")

    # Tailor the weight-gain rule of the second patient to 3 kg: a 2.5 kg gain (confirmed) then raises nothing.
    page.goto(f"/dashboard/patients/{second.patient_id}/edit")
    page.locator("#trend-weight_gain_kg-mode").select_option("custom")
    page.locator("#trend-weight_gain_kg").fill("3,0")
    page.get_by_role("button", name="Lagre trendregler").click()
    expect(page.locator("#trends-saved")).to_have_text("Trendreglene er lagret.")
    expect(page.locator("[data-trend='weight_gain_kg'] .source")).to_contain_text("endret")
    screenshot(page, "shift-04-tailored-weight-rule")
    assert publish(second, readings_topic(second.gateway_id), _weight(second.gateway_id, 82.5)) < 128
    wait_for(
        lambda: db.execute(
            "SELECT 1 FROM readings WHERE patient_id = %s AND value = 82.5", (second.patient_id,)
        ).fetchone(),
        what="the second patient's weight stored",
    )
    assert db.execute(
        "SELECT count(*) FROM alarms WHERE patient_id = %s AND rule = 'trend.weight_gain'", (second.patient_id,)
    ).fetchone() == (0,)

    # Escalate the weight alarm: the on-call nurse's receiver gets a text without patient data; the row says so.
    page.goto("/dashboard/")
    weight_row = page.locator("#queue-body tr").filter(has_text="Vekt")
    weight_row.get_by_role("button", name=re.compile("^Eskaler")).click()
    wait_for(lambda: receiver.bodies, timeout=30, what="the escalation notice at the on-call receiver")
    text = receiver.bodies[0]["text"]
    assert "eskalert" in text and tenant.team in text
    assert _name(tenant, 0) not in json.dumps(receiver.bodies[0]) and str(first.patient_id) not in text
    expect(weight_row.locator(".tag-escalated")).to_be_visible()
    expect(weight_row).to_contain_text("Varslet: Vakthavende sykepleier", timeout=15_000)
    glyph = weight_row.locator(".glyph-escalated")
    assert glyph.evaluate("e => getComputedStyle(e).borderBottomWidth") != "0px"  # drawn with CSS, not a glyph
    screenshot(page, "shift-05-escalated-and-notified")


def test_idle_warning_then_sign_in_again_restores_the_note_draft_and_sign_out_ends_the_refresh_token(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str
) -> None:
    tenant = make_tenant()
    insert_alarm(db, tenant.patients[0], severity="yellow")
    idle_reported: list[int] = []
    page.on(
        "request",
        lambda r: (
            idle_reported.append(int(r.headers.get("x-varde-idle-ms", "-1")))
            if r.url.endswith("/api/v1/auth/refresh")
            else None
        ),
    )
    page.clock.install()
    sign_in(page, tenant.nurse, tenant.nurse_password)
    page.get_by_role("button", name=re.compile("^Notat")).click()
    page.locator("#action-text").fill("Ringte pasienten, avtalt ny måling kl. 14")
    idle = Settings().session_idle_minutes
    # The screen is watched and nobody touches it: the renewals say for how long it has been idle.
    valid = "() => Number(sessionStorage.getItem('varde.token_expires')) > Date.now()"
    for _ in range((idle - 1) // 5):
        page.clock.fast_forward("05:00")
        page.wait_for_function(valid, polling=100)  # a renewal that fell due has completed
    page.clock.fast_forward((idle - 1) % 5 * 60_000)
    warning = page.locator("#session-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("logget ut om")
    expect(page.get_by_role("button", name="Fortsett økten")).to_be_visible()  # usable over the open note dialog
    assert page.locator("#action-dialog #session-warning").count() == 1
    assert idle_reported and max(idle_reported) >= (idle - Settings().session_access_minutes - 1) * 60_000
    screenshot(page, "shift-06-idle-warning")
    idle_cookie = _refresh_cookie(page)
    page.clock.fast_forward("02:00")
    page.wait_for_url(re.compile(r"/dashboard/login\?.*reason=idle"))
    # The idle sign-out ended the session on the server too: its refresh cookie renews nothing.
    wait_for(lambda: _session_ended(db, tenant.nurse), what="the idle session ended on the server")
    assert _refresh(api_url, idle_cookie).status_code == 401
    expect(page.locator("#login-notice")).to_contain_text("påbegynte notater er tatt vare på")
    page.get_by_label("Brukernavn").fill(tenant.nurse)
    page.get_by_label("Passord").fill(tenant.nurse_password)
    page.get_by_role("button", name="Logg inn").click()
    expect(page.locator("#action-dialog")).to_be_visible()
    expect(page.locator("#action-text")).to_have_value("Ringte pasienten, avtalt ny måling kl. 14")
    expect(page.locator("#action-draft-restored")).to_be_visible()
    screenshot(page, "shift-07-draft-restored")
    page.get_by_role("button", name="Lagre notat").click()
    expect(page.locator("#queue-body .note")).to_contain_text("Ringte pasienten")  # the note shows in the row

    cookie = _refresh_cookie(page)
    assert next(c for c in page.context.cookies() if c["name"] == "varde_refresh")["httpOnly"] is True
    assert page.evaluate("document.cookie").find("varde_refresh") < 0
    page.get_by_role("button", name="Logg ut").click()
    page.wait_for_url(re.compile(r"reason=signed_out"))
    assert _refresh(api_url, cookie).status_code == 401
    assert page.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('varde'))") == []

    # A page whose own idle timer does not end the session (here: told the limit is ten times longer) is still
    # signed out by the server once it reports no input for longer than the deployment's idle timeout.
    sign_in(page, tenant.nurse, tenant.nurse_password)
    page.evaluate(f"sessionStorage.setItem('varde.idle_ms', String({idle * 10 * 60_000}))")
    page.clock.fast_forward((idle + 1) * 60_000)
    page.wait_for_url(re.compile(r"/dashboard/login\?.*reason=expired"))
    reasons = db.execute(
        "SELECT DISTINCT s.revoked_reason FROM staff_sessions s JOIN users u ON u.id = s.user_id WHERE u.username = %s",
        (tenant.nurse,),
    ).fetchall()
    assert ("idle",) in reasons, reasons


def _refresh_cookie(page: Page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "varde_refresh")


def _refresh(api_url: str, cookie: str) -> Any:
    import httpx

    return httpx.post(
        f"{api_url}/api/v1/auth/refresh", headers={"X-Varde-Session": "1", "Cookie": f"varde_refresh={cookie}"}
    )


def _session_ended(db: psycopg.Connection[Any], username: str) -> bool:
    """Every refresh token of the user's sessions ended on the server."""
    row = db.execute(
        "SELECT count(*) FILTER (WHERE s.revoked_at IS NULL), count(*) FROM staff_sessions s "
        "JOIN users u ON u.id = s.user_id WHERE u.username = %s",
        (username,),
    ).fetchone()
    return row is not None and row[1] > 0 and row[0] == 0


def test_red_banner_is_hidden_until_a_new_red_alarm_and_closes(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(protocol="copd")
    insert_alarm(db, tenant.patients[0], severity="red")
    sign_in(page, tenant.nurse, tenant.nurse_password)
    expect(page.locator("#queue-body tr")).to_have_count(1)
    banner = page.locator("#red-banner")
    expect(banner).to_be_hidden()
    gateway = tenant.gateways[0]
    now = datetime.now(UTC).replace(microsecond=0)
    device = DeviceRef(address="A4:C1:38:00:00:01", type="pulse_oximeter", model="PO-60")
    reading = Reading(id=uuid.uuid4(), kind="spo2", value=79.0, unit="%", measured_at=now, device=device)
    publish(
        gateway,
        readings_topic(gateway.gateway_id),
        Envelope(gateway_id=gateway.gateway_id, sent_at=now, readings=(reading,)).to_json(),
    )
    expect(banner).to_be_visible(timeout=15_000)
    expect(page.locator("#red-banner-link")).to_have_attribute("href", f"/dashboard/patients/{gateway.patient_id}")
    page.locator("#red-banner-close").click()
    expect(banner).to_be_hidden()


def test_a_red_glucose_stays_the_headline_when_a_milder_reading_follows(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(protocol="diabetes")
    gateway = tenant.gateways[0]
    sign_in(page, tenant.nurse, tenant.nurse_password)
    row = page.locator("#queue-body tr").filter(has_text=_name(tenant, 0))
    # 2.6 mmol/L is red (limit 3.0); 3.0 a minute later is only yellow and updates the same alarm.
    assert publish(gateway, readings_topic(gateway.gateway_id), _glucose(gateway.gateway_id, 2.6, minutes_ago=6)) < 128
    expect(row).to_have_count(1, timeout=15_000)
    expect(row).to_have_attribute("data-severity", "red")
    expect(row.locator(".muted").filter(has_text="måling")).to_have_count(0)  # one reading: no count, no "1 målinger"
    assert publish(gateway, readings_topic(gateway.gateway_id), _glucose(gateway.gateway_id, 3.0, minutes_ago=1)) < 128
    facts = row.locator(".muted").filter(has_text="siste:")
    expect(facts).to_contain_text("siste: Blodsukker 3,0", timeout=15_000)
    expect(facts).to_contain_text("2 målinger")
    expect(row).to_have_attribute("data-severity", "red")
    expect(row.locator(".explanation")).to_contain_text("Blodsukker 2,6 mmol/L, under rød grense")
    rows = db.execute(
        "SELECT severity, severity_value, last_value FROM alarms WHERE patient_id = %s AND state <> 'resolved'",
        (gateway.patient_id,),
    ).fetchall()
    assert [(r[0], float(r[1]), float(r[2])) for r in rows] == [("red", 2.6, 3.0)]
    screenshot(page, "shift-08-red-glucose-headline")


def _glucose(gateway_id: str, value: float, minutes_ago: int) -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    device = DeviceRef(address="A4:C1:38:00:00:05", type="glucose_meter", model="Contour Next One")
    measured = now - timedelta(minutes=minutes_ago)
    reading = Reading(id=uuid.uuid4(), kind="glucose", value=value, unit="mmol/L", measured_at=measured, device=device)
    return Envelope(gateway_id=gateway_id, sent_at=now, readings=(reading,)).to_json()


@pytest.mark.parametrize("width", [800, 1366])
def test_queue_does_not_overflow_sideways(
    page: Page, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], width: int
) -> None:
    tenant = make_tenant(patients=2)
    for patient in tenant.patients:
        for severity in ("red", "yellow", "missed"):
            insert_alarm(db, patient, severity=severity)
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, tenant.nurse, tenant.nurse_password)
    expect(page.locator("#queue-body tr")).to_have_count(6)
    page.locator("#toggle-per-patient").click()
    expect(page.locator("#queue-body tr")).to_have_count(2)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the queue scrolls sideways by {overflow} px at {width} px"
    page.locator("#toggle-per-patient").click()
    expect(page.locator("#queue-body tr")).to_have_count(6)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the queue scrolls sideways by {overflow} px at {width} px"
    screenshot(page, f"shift-queue-{width}px")
    if width != 800:
        return
    # Per patient, one click acts on the patient's whole group (red, yellow and missed), and only on it.
    page.locator("#toggle-per-patient").click()
    first = page.locator("#queue-body tr").filter(has_text=_name(tenant, 0))
    first.get_by_role("button", name=re.compile(r"^Kvitter alle \(3\)")).click()
    expect(first.locator(".state")).to_have_text("Kvittert")
    states = db.execute(
        "SELECT patient_id, array_agg(DISTINCT state) FROM alarms WHERE patient_id = ANY(%s) GROUP BY patient_id",
        (tenant.patients,),
    ).fetchall()
    assert dict(states) == {tenant.patients[0]: ["acknowledged"], tenant.patients[1]: ["open"]}
    screenshot(page, "shift-queue-per-patient-acknowledged")
