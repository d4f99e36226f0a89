"""The alarm queue: order, filters, keyset paging, nurse actions with their events and notifications, bulk
acknowledgement with receipts to the gateway, and the live SSE stream."""

from __future__ import annotations

import json
import threading
from typing import Any
from uuid import UUID

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest

from store.events import CHANNEL, listen, notify_changes
from store.settings import Settings
from tests.integration.api.support import add_user, headers_for, insert_alarm
from tests.stack_plugin import Tenant, login, wait_for
from vitals import Receipt, receipts_topic

pytestmark = pytest.mark.integration


def _queue(api: httpx.Client, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = api.get("/api/v1/alarms", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_queue_is_sorted_by_severity_then_age_and_pages_with_a_cursor(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(patients=3)
    p1, p2, p3 = tenant.patients
    ids = {
        "yellow_old": insert_alarm(db, p1, severity="yellow", opened_minutes_ago=300),
        "red_new": insert_alarm(db, p2, severity="red", opened_minutes_ago=5),
        "red_old": insert_alarm(db, p3, severity="red", opened_minutes_ago=50),
        "missed": insert_alarm(db, p1, severity="missed", kind=None, opened_minutes_ago=900),
        "yellow_new": insert_alarm(db, p2, severity="yellow", opened_minutes_ago=1),
        "review": insert_alarm(db, p3, severity="needs_review", opened_minutes_ago=1000),
    }
    insert_alarm(db, p1, severity="red", state="resolved")
    headers = headers_for(api_url, tenant)
    expected = ["red_old", "red_new", "yellow_old", "yellow_new", "missed", "review"]
    whole = _queue(api, headers, team=str(tenant.team_id), limit=100)
    assert [a["id"] for a in whole["items"]] == [str(ids[k]) for k in expected]
    assert whole["next"] is None

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"team": str(tenant.team_id), "limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = _queue(api, headers, **params)
        seen += [a["id"] for a in page["items"]]
        cursor = page["next"]
        if not cursor:
            break
    assert seen == [str(ids[k]) for k in expected]

    reds = _queue(api, headers, severity="red", team=str(tenant.team_id))["items"]
    assert {a["id"] for a in reds} == {str(ids["red_old"]), str(ids["red_new"])}
    first = whole["items"][0]
    for field in (
        "id",
        "patient_id",
        "rule",
        "kind",
        "severity",
        "state",
        "opened_at",
        "updated_at",
        "count",
        "last_value",
        "explanation",
        "patient_name",
        "assignee_id",
        "back_in_range",
        "escalated",
    ):
        assert field in first
    assert first["patient_name"].startswith("Pasient")
    resolved = _queue(api, headers, state="resolved", team=str(tenant.team_id))["items"]
    assert [a["severity"] for a in resolved] == ["red"]
    bad = api.get("/api/v1/alarms", headers=headers, params={"cursor": "garbage!!"})
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"


def _listen(settings: Settings) -> tuple[psycopg.Connection[Any], list[dict[str, Any]]]:
    conn = psycopg.connect(settings.require_database_url(), autocommit=True)
    listen(conn, CHANNEL)
    return conn, []


def _drain(conn: psycopg.Connection[Any], into: list[dict[str, Any]], timeout: float = 2.0) -> list[dict[str, Any]]:
    for n in conn.notifies(timeout=timeout, stop_after=1):
        into.append(json.loads(n.payload))
    return into


def test_acknowledge_assign_note_resolve_write_events_and_notify(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any], settings: Settings
) -> None:
    tenant: Tenant = make_tenant()
    patient = tenant.patients[0]
    alarm = insert_alarm(db, patient, severity="red")
    headers = headers_for(api_url, tenant)
    listener, notes = _listen(settings)
    try:
        acked = api.post(f"/api/v1/alarms/{alarm}/acknowledge", headers=headers)
        assert acked.status_code == 200, acked.text
        assert acked.json()["state"] == "acknowledged" and acked.json()["acknowledged_by"]
        assert {"alarms": [str(alarm)], "source": "api", "readings": 0} in _drain(listener, notes)
        assert api.post(f"/api/v1/alarms/{alarm}/acknowledge", headers=headers).status_code == 409

        assigned = api.post(f"/api/v1/alarms/{alarm}/assign", headers=headers, json={"assignee": "me"}).json()
        assert assigned["assignee_name"] == tenant.nurse
        _, _, colleague_id = add_user(settings, "physician", [tenant.team])
        to_colleague = api.post(f"/api/v1/alarms/{alarm}/assign", headers=headers, json={"assignee": str(colleague_id)})
        assert to_colleague.json()["assignee_id"] == str(colleague_id)
        stranger = make_tenant()
        stranger_id = db.execute("SELECT id FROM users WHERE username = %s", (stranger.nurse,)).fetchone()
        assert stranger_id is not None
        refused = api.post(f"/api/v1/alarms/{alarm}/assign", headers=headers, json={"assignee": str(stranger_id[0])})
        assert refused.status_code == 422

        noted = api.post(f"/api/v1/alarms/{alarm}/notes", headers=headers, json={"text": "Ringte, ingen svar."})
        assert noted.status_code == 200
        assert api.post(f"/api/v1/alarms/{alarm}/resolve", headers=headers, json={"resolution": ""}).status_code == 422
        resolved = api.post(
            f"/api/v1/alarms/{alarm}/resolve", headers=headers, json={"resolution": "Snakket med pasienten, ok."}
        ).json()
        assert resolved["state"] == "resolved" and resolved["resolution"] == "Snakket med pasienten, ok."
        again = api.post(f"/api/v1/alarms/{alarm}/resolve", headers=headers, json={"resolution": "igjen"})
        assert again.status_code == 409
        events = [e["event"] for e in resolved["events"]]
        assert events == ["opened", "acknowledged", "assigned", "assigned", "note", "resolved"]
        assert resolved["events"][4]["data"] == {"text": "Ringte, ingen svar."}
        assert resolved["events"][5]["actor_name"] == tenant.nurse
        wait_for(lambda: len(_drain(listener, notes, 0.5)) >= 5, what="a notification per change")
    finally:
        listener.close()
    detail = api.get(f"/api/v1/alarms/{alarm}", headers=headers, params={"lang": "en"}).json()
    assert detail["explanation"] == detail["explanation_en"] and len(detail["events"]) == 6


def test_admin_without_clinical_role_cannot_act_on_alarms(
    make_tenant: Any, api: httpx.Client, db: psycopg.Connection[Any], settings: Settings
) -> None:
    tenant: Tenant = make_tenant()
    alarm = insert_alarm(db, tenant.patients[0])
    admin, password, _ = add_user(settings, "admin", [tenant.team])
    headers = login(str(api.base_url), admin, password)
    assert api.post(f"/api/v1/alarms/{alarm}/acknowledge", headers=headers).status_code == 403


def test_a_group_action_holds_one_patients_alarms_of_the_callers_teams_only(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(patients=2)
    p1, p2 = tenant.patients
    first = [insert_alarm(db, p1, severity="red"), insert_alarm(db, p1, severity="missed", kind=None)]
    second = insert_alarm(db, p2)
    foreign = insert_alarm(db, make_tenant().patients[0])
    headers = headers_for(api_url, tenant)

    def group(ids: list[UUID]) -> httpx.Response:
        return api.post("/api/v1/alarms/group/acknowledge", headers=headers, json={"alarm_ids": [str(a) for a in ids]})

    two_patients = group([*first, second])
    assert two_patients.status_code == 422
    assert two_patients.json()["errors"][0]["message_nb"] == "alarmer for flere pasienter"
    assert group([*first, foreign]).status_code == 404  # another team's alarm: as if it did not exist
    assert group([foreign]).status_code == 404
    states = db.execute("SELECT DISTINCT state FROM alarms WHERE id = ANY(%s)", ([*first, second, foreign],))
    assert states.fetchall() == [("open",)]  # nothing of a refused group changed
    done = group(first)
    assert done.status_code == 200, done.text
    states = db.execute("SELECT DISTINCT state FROM alarms WHERE id = ANY(%s)", (first,)).fetchall()
    assert states == [("acknowledged",)]


class _Subscriber:
    """A gateway's own MQTT login listening on one of its topics."""

    def __init__(self, tenant: Tenant, topic: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        gateway = tenant.gateways[0]
        self.client = gateway.client()
        subscribed = threading.Event()
        self.client.on_message = lambda c, u, m: self.messages.append(m)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.connect(gateway.host, gateway.port)
        self.client.loop_start()
        assert subscribed.wait(10), "subscription not acknowledged"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_bulk_acknowledge_refuses_red_and_sends_receipts_to_the_gateway(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(patients=2)
    p1, p2 = tenant.patients
    yellow = [insert_alarm(db, p1), insert_alarm(db, p2), insert_alarm(db, p1, severity="missed", kind=None)]
    red = insert_alarm(db, p2, severity="red")
    headers = headers_for(api_url, tenant)
    refused = api.post(
        "/api/v1/alarms/bulk-acknowledge", headers=headers, json={"alarm_ids": [str(a) for a in [*yellow, red]]}
    )
    assert refused.status_code == 409
    assert refused.json()["red_alarm_ids"] == [str(red)]
    states = db.execute("SELECT DISTINCT state FROM alarms WHERE id = ANY(%s)", ([*yellow, red],)).fetchall()
    assert states == [("open",)]

    other = make_tenant()
    foreign = insert_alarm(db, other.patients[0])
    hidden = api.post("/api/v1/alarms/bulk-acknowledge", headers=headers, json={"alarm_ids": [str(foreign)]})
    assert hidden.status_code == 404

    subscriber = _Subscriber(tenant, receipts_topic(tenant.gateways[0].gateway_id))
    try:
        done = api.post(
            "/api/v1/alarms/bulk-acknowledge",
            headers=headers,
            json={"alarm_ids": [str(a) for a in yellow], "note": "Sett, ufarlig.", "send_receipt": True},
        )
        assert done.status_code == 200, done.text
        result = done.json()
        assert sorted(result["acknowledged"]) == sorted(str(a) for a in yellow)
        assert {r["gateway_id"]: r["published"] for r in result["receipts"]} == {
            g.gateway_id: True for g in tenant.gateways
        }
        wait_for(lambda: subscriber.messages, what="the receipt at the gateway")
        receipt = Receipt.model_validate_json(subscriber.messages[0].payload)
        assert receipt.event == "readings_seen" and str(p1) not in subscriber.messages[0].payload.decode()
    finally:
        subscriber.close()
    again = api.post("/api/v1/alarms/bulk-acknowledge", headers=headers, json={"alarm_ids": [str(yellow[0])]})
    assert again.json()["unchanged"] == [str(yellow[0])]
    events = db.execute(
        "SELECT event, count(*) FROM alarm_events WHERE alarm_id = ANY(%s) GROUP BY event ORDER BY event", (yellow,)
    ).fetchall()
    assert dict(events) == {"acknowledged": 3, "note": 3, "opened": 3, "receipt_sent": 3}


def _sse_events(api_url: str, headers: dict[str, str], out: list[tuple[str, str]], stop: threading.Event) -> None:
    with (
        httpx.Client(base_url=api_url, timeout=httpx.Timeout(30, read=30)) as client,
        client.stream(
            "GET", "/api/v1/alarms/stream", headers=headers, params={"heartbeat": 0.5, "lang": "en"}
        ) as response,
    ):
        out.append(("status", str(response.status_code)))
        event = "message"
        for line in response.iter_lines():
            if stop.is_set():
                return
            if line.startswith(":"):
                out.append(("comment", line[1:].strip()))
            elif line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                out.append((event, line.split(":", 1)[1].strip()))
                event = "message"


def test_stream_pushes_changes_of_visible_alarms_only_with_heartbeats(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    mine, theirs = make_tenant(), make_tenant()
    my_alarm = insert_alarm(db, mine.patients[0])
    their_alarm = insert_alarm(db, theirs.patients[0])
    headers = headers_for(api_url, mine)
    events: list[tuple[str, str]] = []
    stop = threading.Event()
    reader = threading.Thread(target=_sse_events, args=(api_url, headers, events, stop), daemon=True)
    reader.start()
    try:
        wait_for(lambda: ("comment", "connected") in events, what="the stream to open")
        their_headers = headers_for(api_url, theirs)
        assert api.post(f"/api/v1/alarms/{their_alarm}/acknowledge", headers=their_headers).status_code == 200
        assert api.post(f"/api/v1/alarms/{my_alarm}/acknowledge", headers=headers).status_code == 200
        pushed = wait_for(lambda: [json.loads(d) for e, d in events if e == "alarm"], what="an alarm event")
        assert pushed[0]["id"] == str(my_alarm) and pushed[0]["state"] == "acknowledged"
        assert pushed[0]["explanation"] == pushed[0]["explanation_en"]
        wait_for(lambda: ("comment", "heartbeat") in events, what="a heartbeat")
        # Rows changed by another process (ingest, the scheduler) arrive the same way: a NOTIFY naming the alarm.
        db.execute("UPDATE alarms SET count = count + 1, updated_at = now() WHERE id = %s", (my_alarm,))
        notify_changes(db, "ingest", [my_alarm], readings=1)
        wait_for(lambda: len([1 for e, _ in events if e == "alarm"]) >= 2, what="the ingest-side change")
        assert all(json.loads(d)["id"] == str(my_alarm) for e, d in events if e == "alarm")
        assert str(their_alarm) not in " ".join(d for _, d in events)
    finally:
        stop.set()
        notify_changes(db, "ingest", [my_alarm])
        reader.join(10)


def test_one_listener_connection_serves_many_stream_clients(
    make_tenant: Any, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant()
    headers = headers_for(api_url, tenant)
    stop = threading.Event()
    streams = [[] for _ in range(4)]  # type: list[list[tuple[str, str]]]
    readers = [threading.Thread(target=_sse_events, args=(api_url, headers, out, stop), daemon=True) for out in streams]
    for r in readers:
        r.start()
    try:
        wait_for(lambda: all(("comment", "connected") in s for s in streams), what="four streams")
        listeners = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'varde-api-events'"
        ).fetchone()
        assert listeners == (1,)
    finally:
        stop.set()
        alarm = insert_alarm(db, tenant.patients[0])
        notify_changes(db, "ingest", [alarm])
        for r in readers:
            r.join(10)


def test_assigning_to_me_filter(make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]) -> None:
    tenant: Tenant = make_tenant()
    a, b = insert_alarm(db, tenant.patients[0]), insert_alarm(db, tenant.patients[0])
    headers = headers_for(api_url, tenant)
    api.post(f"/api/v1/alarms/{a}/assign", headers=headers, json={"assignee": "me"})
    mine = _queue(api, headers, assignee="me")["items"]
    assert [UUID(x["id"]) for x in mine] == [a]
    assert b not in [UUID(x["id"]) for x in mine]
