"""Record integration in the browser: a nurse resolves an alarm in the dashboard and the FHIR document with her
note arrives at the record system (a real FHIR receiver on loopback, the stack's own journal worker delivering);
the record delivery page shows a refused document with the record system's reason and retries it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.composition import Composition
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.practitioner import Practitioner
from playwright.sync_api import Page, expect

from tests.browser.support import screenshot, sign_in
from tests.integration.api.support import audit_rows, insert_alarm, insert_readings
from tests.integration.journal.receiver import RecordSystem
from tests.integration.journal.support import Journaled, journaled_tenant, record_system
from tests.stack_plugin import Tenant, login, publish, wait_for
from vitals import DeviceRef, Envelope, Reading, readings_topic

__all__ = ["journaled_tenant", "record_system"]

pytestmark = [pytest.mark.browser, pytest.mark.integration]

MODELS: dict[str, Any] = {
    "Composition": Composition,
    "DetectedIssue": DetectedIssue,
    "Observation": Observation,
    "Practitioner": Practitioner,
}


def _validated(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The document checked with fhir.resources (R4B), as its resources by fullUrl."""
    Bundle.model_validate(doc)
    resources = {e["fullUrl"]: e["resource"] for e in doc["entry"]}
    for resource in resources.values():
        if resource["resourceType"] in MODELS:
            MODELS[resource["resourceType"]].model_validate(resource)
    assert doc["type"] == "document" and doc["entry"][0]["resource"]["resourceType"] == "Composition"
    return resources


def _patient_name(tenant: Tenant) -> str:
    return f"Pasient {tenant.team.removeprefix('team-')}-0"


def test_nurse_resolves_an_alarm_with_a_note_in_the_dashboard_and_the_document_arrives_in_the_record(
    page: Page, journaled_tenant: Callable[..., Journaled], record_system: RecordSystem
) -> None:
    journaled = journaled_tenant(protocol="copd")
    tenant, gateway = journaled.tenant, journaled.tenant.gateways[0]
    sign_in(page, tenant.nurse, tenant.nurse_password)
    expect(page.locator("#stream-status")).to_have_attribute("data-state", "live")

    now = datetime.now(UTC).replace(microsecond=0)
    reading_id = uuid.uuid4()
    device = DeviceRef(address="A4:C1:38:00:00:09", type="pulse_oximeter", model="PO-60")
    reading = Reading(id=reading_id, kind="spo2", value=80.0, unit="%", measured_at=now, device=device)
    envelope = Envelope(gateway_id=gateway.gateway_id, sent_at=now, readings=(reading,))
    assert publish(gateway, readings_topic(gateway.gateway_id), envelope.to_json()) < 128
    red = page.locator("#queue-body tr[data-severity='red']")
    expect(red).to_have_count(1, timeout=15_000)
    alarm_id = (red.get_attribute("id") or "").removeprefix("alarm-")

    note = "Ringte pasienten, økte O2 til 2 l/min; ny måling om 2 t."
    red.get_by_role("button", name=re.compile("^Løs")).click()
    dialog = page.get_by_role("dialog", name="Løs alarmen")
    dialog.get_by_label("Hva ble gjort?").fill(note)
    dialog.get_by_role("button", name="Løs").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(f"#alarm-{alarm_id}")).to_have_count(0)

    doc = wait_for(lambda: next(iter(record_system.state.documents.values()), None), 20, what="the document")
    assert record_system.state.invalid == []
    resources = _validated(doc)
    composition = doc["entry"][0]["resource"]
    assert note in composition["section"][0]["text"]["div"]
    issue = resources[composition["section"][0]["entry"][0]["reference"]]
    assert issue["identifier"] == [{"system": "urn:varde:alarm", "value": alarm_id}]
    observation = resources[issue["implicated"][0]["reference"]]
    assert observation["id"] == str(reading_id) and observation["valueQuantity"]["value"] == 80.0
    practitioner = resources[composition["author"][0]["reference"]]
    assert {"system": "urn:varde:user", "value": tenant.nurse} in practitioner["identifier"]

    # The record delivery page, from the navigation, lists it as delivered, with where the record system keeps it.
    page.get_by_role("navigation").get_by_role("link", name="Journalføring").click()
    expect(page.get_by_role("heading", name="Journalføring", exact=True)).to_be_visible()
    delivered = page.locator("#journal-delivered-body tr")
    expect(delivered).to_have_count(1)
    expect(delivered).to_contain_text("Levert")
    expect(delivered).to_contain_text(_patient_name(tenant))
    expect(delivered).to_contain_text("Løst alarm (dokument)")
    expect(delivered).to_contain_text(f"Bundle/{doc['id']}/_history/1")
    expect(page.locator("#journal-open-empty")).to_be_visible()


def test_refused_document_shows_as_failed_with_the_reason_and_retry_on_the_page_delivers_it(
    page: Page,
    journaled_tenant: Callable[..., Journaled],
    record_system: RecordSystem,
    make_tenant: Callable[..., Tenant],
    db: psycopg.Connection[Any],
    api_url: str,
) -> None:
    journaled = journaled_tenant()
    tenant, gateway = journaled.tenant, journaled.tenant.gateways[0]
    record_system.state.reject_message = "Pasienten er ikke registrert i journalen"
    record_system.set_mode("reject")
    insert_readings(db, gateway.patient_id, gateway.gateway_id, "spo2", [84.0], [datetime.now(UTC)])
    alarm_id = insert_alarm(db, tenant.patients[0], severity="red", value=84.0)
    headers = login(api_url, tenant.nurse, tenant.nurse_password)
    resolved = httpx.post(
        f"{api_url}/api/v1/alarms/{alarm_id}/resolve", headers=headers, json={"resolution": "Vurdert, ingen tiltak."}
    )
    assert resolved.status_code == 200, resolved.text

    def failed() -> list[dict[str, Any]] | None:
        return httpx.get(f"{api_url}/api/v1/journal/entries", headers=headers).json()["items"] or None

    (entry,) = wait_for(lambda: [e for e in failed() or [] if e["state"] == "failed"] or None, 20, what="refusal")

    sign_in(page, tenant.nurse, tenant.nurse_password, "/dashboard/journal")
    row = page.locator(f"#journal-open-body #journal-{entry['id']}")
    expect(row).to_have_attribute("data-state", "failed")
    expect(row).to_contain_text("Feilet")
    expect(row).to_contain_text(_patient_name(tenant))
    expect(row).to_contain_text("HTTP 422")
    expect(row).to_contain_text("Pasienten er ikke registrert i journalen")
    expect(row).to_contain_text("Ingen – stoppet til noen prøver igjen")
    expect(row.locator("td.number")).to_have_text("1")
    expect(page.locator("#journal-delivered-empty")).to_be_visible()
    retry = row.get_by_role("button", name=f"Prøv igjen: {_patient_name(tenant)}, Løst alarm (dokument)")
    expect(retry).to_be_visible()
    screenshot(page, "journal")
    assert record_system.state.documents == {}

    # In English too; the record system is fixed, and the retry goes out from the keyboard.
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Record delivery", exact=True)).to_be_visible()
    expect(row).to_contain_text("Failed")
    record_system.set_mode("up")
    retry = row.get_by_role("button", name=re.compile("^Retry: "))
    retry.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#live-polite")).to_contain_text(f"Sending to the record again: {_patient_name(tenant)}")
    done = page.locator(f"#journal-delivered-body #journal-{entry['id']}")
    expect(done).to_contain_text("Delivered", timeout=20_000)
    expect(page.locator(f"#journal-open-body #journal-{entry['id']}")).to_have_count(0)
    expect(page.locator("#journal-open-empty")).to_be_visible()
    expect(page.locator("#live-polite")).to_contain_text(f"Delivered to the record: {_patient_name(tenant)}")
    (doc,) = record_system.state.documents.values()
    _validated(doc)
    assert "Vurdert, ingen tiltak." in doc["entry"][0]["resource"]["section"][0]["text"]["div"]
    assert audit_rows(db, action="journal_retry", patient_id=tenant.patients[0])

    # A nurse of another team sees none of it: the page shows what the journal API lets her see.
    other = make_tenant()
    page.get_by_role("link", name="Norsk (bokmål)").click()
    # The language link is a navigation: sign out on the page it arrives at, not on the one being left.
    expect(page.get_by_role("heading", name="Journalføring", exact=True)).to_be_visible()
    page.get_by_role("button", name="Logg ut").click()
    # The sign-out navigation ends before the next one starts (on the sign-in page, whatever reason it names).
    page.wait_for_url(re.compile(r"/dashboard/login"), timeout=30_000)
    sign_in(page, other.nurse, other.nurse_password, "/dashboard/journal")
    expect(page.locator("#journal-updated")).not_to_be_empty()
    expect(page.locator("#journal-open-empty")).to_be_visible()
    expect(page.locator("#journal-delivered-empty")).to_be_visible()
    expect(page.locator("#journal-delivered-body tr")).to_have_count(0)
