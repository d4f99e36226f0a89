"""The journal worker's metrics, scraped from the stack's own worker while a resolved alarm travels to a record
system that is first in maintenance (503), then back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.integration.journal.receiver import RecordSystem
from tests.integration.journal.support import Journaled
from tests.integration.ops import metrics_port, scrape, value
from tests.stack_plugin import login, publish, wait_for
from vitals import DeviceRef, Envelope, Reading, readings_topic

pytestmark = pytest.mark.integration


def test_failed_attempts_backlog_and_delivery_of_a_resolved_alarm_are_counted(
    journaled_tenant: Any, record_system: RecordSystem, api_url: str
) -> None:
    port = metrics_port("journal")
    journaled: Journaled = journaled_tenant(protocol="copd")
    tenant, gateway = journaled.tenant, journaled.tenant.gateways[0]
    record_system.set_mode("unavailable")
    now = datetime.now(UTC).replace(microsecond=0)
    device = DeviceRef(address="A4:C1:38:00:00:0A", type="pulse_oximeter", model="PO-60")
    envelope = Envelope(
        gateway_id=gateway.gateway_id,
        sent_at=now,
        readings=(Reading(id=uuid.uuid4(), kind="spo2", value=79.0, unit="%", measured_at=now, device=device),),
    )
    assert publish(gateway, readings_topic(gateway.gateway_id), envelope.to_json()) < 128
    headers = login(api_url, tenant.nurse, tenant.nurse_password)

    def red_alarm() -> dict[str, Any] | None:
        items = httpx.get(f"{api_url}/api/v1/alarms", headers=headers).json()["items"]
        return next((a for a in items if a["rule"] == "threshold.spo2.low"), None)

    alarm = wait_for(red_alarm, what="the SpO2 alarm")
    before, _ = scrape(port)
    retry_5xx = {"outcome": "retry", "status_class": "5xx"}
    resolved = httpx.post(
        f"{api_url}/api/v1/alarms/{alarm['id']}/resolve", headers=headers, json={"resolution": "Ringt opp."}
    )
    assert resolved.status_code == 200, resolved.text

    def failing() -> Any:
        now_samples, _ = scrape(port)
        grown = value(now_samples, "varde_journal_failures_total", **retry_5xx) - value(
            before, "varde_journal_failures_total", **retry_5xx
        )
        waiting = value(now_samples, "varde_journal_retry_backlog_entries") >= 1
        return now_samples if grown >= 1 and waiting else None

    during = wait_for(failing, 30, what="the 503 answers to be counted")
    assert value(during, "varde_journal_entries", state="pending") >= 1
    assert value(during, "varde_journal_backlog_age_seconds") > 0

    record_system.set_mode("up")
    delivered = {"kind": "alarm_document"}

    def delivered_now() -> Any:
        now_samples, _ = scrape(port)
        grown = value(now_samples, "varde_journal_deliveries_total", **delivered) - value(
            before, "varde_journal_deliveries_total", **delivered
        )
        # The outbox gauges are read at most every few seconds, so they may follow the counter a little later.
        shown = value(now_samples, "varde_journal_entries", state="delivered") > value(
            before, "varde_journal_entries", state="delivered"
        )
        return now_samples if grown >= 1 and shown else None

    after = wait_for(delivered_now, 30, what="the delivery to be counted and shown in the outbox gauge")
    assert value(after, "varde_journal_passes_total") > value(before, "varde_journal_passes_total")
    assert record_system.state.documents
