"""Delivery that loses nothing: each answer of a record system sorted into delivered / retry / refused, OAuth2
tokens cached until they expire, and a record system down for a while (connection refused, then 503) ending with
every journal entry stored exactly once — also when its answers were lost and the workers resent.

`VARDE_TEST_JOURNAL_DOWN_SECONDS` (default 20) sets how long the record system stays down."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from clinician_api.journal.credentials import ClientCredentials, TokenCache
from clinician_api.journal.delivery import Endpoint, send
from tests.integration.api.support import headers_for, insert_alarm, insert_readings
from tests.integration.journal.receiver import RecordSystem
from tests.integration.journal.support import Journaled, outbox_rows
from tests.stack_plugin import wait_for

pytestmark = pytest.mark.integration

DOWN_SECONDS = float(os.environ.get("VARDE_TEST_JOURNAL_DOWN_SECONDS", "20"))


def _document(n: int) -> dict[str, Any]:
    bundle_id = str(uuid.uuid4())
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{bundle_id}"},
        "type": "collection",
        "timestamp": "2026-11-21T10:00:00+00:00",
        "entry": [
            {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": {"resourceType": "Basic", "code": {"text": str(n)}}}
        ],
    }


def _endpoint(system: RecordSystem, secret_ref: str, **overrides: Any) -> Endpoint:
    creds = ClientCredentials(system.token_url, system.state.client_id, secret_ref)
    values: dict[str, Any] = {"credentials": creds, "max_attempts": 5, "backoff_base_seconds": 1.0}
    values.update(overrides)
    return Endpoint(
        uuid.uuid4(),
        "ehr",
        system.base_url,
        values["credentials"],
        values["max_attempts"],
        values["backoff_base_seconds"],
        10.0,
        5.0,
    )


def test_each_answer_of_the_record_system_is_sorted_into_delivered_retry_or_refused(
    record_system: RecordSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VARDE_TEST_RECORD_SECRET", record_system.state.client_secret)
    endpoint = _endpoint(record_system, "env:VARDE_TEST_RECORD_SECRET")
    tokens = TokenCache()
    bundle = _document(1)
    key = bundle["identifier"]["value"]

    first = send(endpoint, bundle, tokens)
    assert (first.result, first.status) == ("delivered", 201) and first.location
    again = send(endpoint, bundle, tokens)
    assert (again.result, again.status) == ("delivered", 200)
    assert len(record_system.state.documents) == 1 and record_system.state.posts[f"urn:ietf:rfc:3986|{key}"] == 2

    for mode, status in (("unavailable", 503), ("busy", 429), ("timeout", 408)):
        record_system.set_mode(mode)
        outcome = send(endpoint, _document(2), tokens)
        assert (outcome.result, outcome.status) == ("retry", status), mode
    record_system.set_mode("busy")
    assert send(endpoint, _document(3), tokens).retry_after == 1.0

    record_system.set_mode("reject")
    for status in (400, 404, 409, 422):
        record_system.state.reject_status = status
        refused = send(endpoint, _document(4), tokens)
        assert (refused.result, refused.status) == ("refused", status)
        assert "the record system refused the document" in refused.detail

    record_system.set_mode("up")
    record_system.stop()
    unreachable = send(endpoint, _document(5), tokens)
    assert unreachable.result == "retry" and unreachable.status is None and "unreachable" in unreachable.detail
    record_system.start()
    assert record_system.state.token_requests == 1  # one token for all of the above

    record_system.state.tokens.clear()  # the record system revoked it: 401, the token is dropped and fetched anew
    revoked = send(endpoint, _document(6), tokens)
    assert (revoked.result, revoked.status) == ("retry", 401)
    assert send(endpoint, _document(6), tokens).result == "delivered"
    assert record_system.state.token_requests == 2

    wrong = _endpoint(record_system, "env:VARDE_TEST_NO_SUCH_SECRET")
    missing = send(wrong, _document(7), TokenCache())
    assert missing.result == "refused" and "VARDE_TEST_NO_SUCH_SECRET is not set" in missing.detail
    monkeypatch.setenv("VARDE_TEST_WRONG_SECRET", "not-the-secret")
    bad = send(_endpoint(record_system, "env:VARDE_TEST_WRONG_SECRET"), _document(8), TokenCache())
    assert (bad.result, bad.status) == ("refused", 401) and "invalid_client" in bad.detail
    assert "not-the-secret" not in bad.detail


def test_token_is_reused_until_it_expires(record_system: RecordSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VARDE_TEST_RECORD_SECRET", record_system.state.client_secret)
    record_system.state.token_ttl = 60
    endpoint = _endpoint(record_system, "env:VARDE_TEST_RECORD_SECRET")
    now = [1000.0]
    tokens = TokenCache(clock=lambda: now[0])
    for at in (1000.0, 1030.0, 1053.9):  # fetched at 1000; reused until 60 s less the early-refresh margin (6 s)
        now[0] = at
        assert send(endpoint, _document(int(at)), tokens).result == "delivered"
    assert record_system.state.token_requests == 1
    now[0] = 1054.0  # the margin reached: renewed before the record system would refuse it
    assert send(endpoint, _document(9), tokens).result == "delivered"
    assert record_system.state.token_requests == 2


def test_record_system_down_then_up_ends_with_every_entry_delivered_exactly_once(
    journaled_tenant: Any,
    record_system: RecordSystem,
    extra_workers: Any,
    api_url: str,
    db: psycopg.Connection[Any],
) -> None:
    journaled: Journaled = journaled_tenant(patients=3)
    tenant = journaled.tenant
    headers = headers_for(api_url, tenant)
    from clinician_api.journal.admin import add_subscription

    add_subscription(db, journaled.org_number, journaled.endpoint_id, batch_size=4)
    record_system.stop()  # connection refused
    extra_workers(2)  # three workers with the stack's own

    now = datetime.now(UTC)
    alarm_ids = []
    for gateway in tenant.gateways:
        insert_readings(
            db,
            gateway.patient_id,
            gateway.gateway_id,
            "spo2",
            [88.0, 85.0, 84.0],
            # received 55 s and 25 s before the subscription's mark (a late commit, inside the re-read window)
            [now - timedelta(seconds=s) for s in (60, 30, 0)],
        )
        alarm_id = insert_alarm(db, gateway.patient_id, severity="red", value=84.0)
        response = httpx.post(
            f"{api_url}/api/v1/alarms/{alarm_id}/resolve", headers=headers, json={"resolution": "Fulgt opp på telefon."}
        )
        assert response.status_code == 200, response.text
        alarm_ids.append(alarm_id)

    def written() -> bool:
        rows = outbox_rows(db, journaled.endpoint_id)
        return len(rows) >= 6 and any("unreachable" in (r["last_error"] or "") for r in rows)

    wait_for(written, 20, what="documents and batches written and the record system found unreachable")
    time.sleep(DOWN_SECONDS / 2)
    record_system.start()
    record_system.set_mode("unavailable")  # listening, but 503 for the rest of the outage
    time.sleep(DOWN_SECONDS / 2)
    rows = outbox_rows(db, journaled.endpoint_id)
    assert {r["state"] for r in rows} == {"pending"}
    assert max(r["attempts"] for r in rows) >= 3
    assert any((r["last_error"] or "").startswith("HTTP 503") for r in rows)
    # The endpoint is paused between probes: a long outage costs one attempt per back-off, not one per entry.
    assert sum(r["attempts"] for r in rows) <= 3 * (DOWN_SECONDS / 0.5 + len(rows))
    assert record_system.state.documents == {} and record_system.state.resources == {}

    with record_system.state.lock:
        record_system.state.lose_answers = 3  # stored, but the answer never reaches Varde: it must resend
        record_system.state.mode = "up"

    def all_delivered() -> list[dict[str, Any]] | None:
        rows = outbox_rows(db, journaled.endpoint_id)
        return rows if rows and all(r["state"] == "delivered" for r in rows) else None

    rows = wait_for(all_delivered, 45, what="every entry delivered after the outage")
    documents = [r for r in rows if r["kind"] == "alarm_document"]
    batches = [r for r in rows if r["kind"] == "measurements"]
    assert sorted(r["alarm_id"] for r in documents) == sorted(alarm_ids)
    assert {f"urn:ietf:rfc:3986|{r['bundle_identifier']}" for r in documents} == set(record_system.state.documents)
    assert len(record_system.state.documents) == len(alarm_ids)

    observations = record_system.state.stored_observations()
    reading_ids = [o["identifier"][0]["value"] for o in observations]
    assert len(reading_ids) == len(set(reading_ids)) == 9  # three readings for each of three patients
    assert all(r["bundle"]["type"] == "transaction" for r in batches)
    assert all(sum(e["resource"]["resourceType"] == "Observation" for e in r["bundle"]["entry"]) <= 4 for r in batches)
    resent = [k for k, n in record_system.state.posts.items() if n > 1]
    assert resent, "the lost answers forced resends"
    assert record_system.state.invalid == []


def test_entry_still_refused_a_service_after_the_retry_limit_is_dead_lettered_with_the_last_answer(
    journaled_tenant: Any, record_system: RecordSystem, api_url: str, db: psycopg.Connection[Any]
) -> None:
    journaled: Journaled = journaled_tenant(max_attempts=3, backoff_base_seconds=0.2, backoff_max_seconds=0.5)
    record_system.set_mode("unavailable")
    alarm_id = insert_alarm(db, journaled.tenant.patients[0])
    headers = headers_for(api_url, journaled.tenant)
    response = httpx.post(f"{api_url}/api/v1/alarms/{alarm_id}/resolve", headers=headers, json={"resolution": "Sett."})
    assert response.status_code == 200, response.text

    (row,) = wait_for(
        lambda: [r for r in outbox_rows(db, journaled.endpoint_id) if r["state"] == "failed"] or None,
        20,
        what="the entry dead-lettered after three attempts",
    )
    assert row["attempts"] == 3 and row["last_status"] == 503
    assert row["last_error"].startswith("gave up after 3 attempts: HTTP 503")
    assert "record system in maintenance" in row["last_error"]
    assert record_system.state.documents == {}


def test_an_empty_outbox_has_nothing_due_so_an_idle_worker_sleeps(db: psycopg.Connection[Any]) -> None:
    """Seen in a benchmark: an idle journal worker used a fifth of a core because "nothing pending" read as
    "due now"."""
    from store import journal

    with db.transaction(force_rollback=True):
        db.execute("DELETE FROM journal_outbox WHERE state = 'pending'")
        assert journal.next_due_in(db) is None
