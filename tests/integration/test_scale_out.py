"""Scale-out on one machine: two ingest workers in the shared subscription, two API replicas behind HAProxy.

Real processes throughout: the test stack's PostgreSQL and Mosquitto, its ingest worker plus a second one, and two
`varde api run` replicas behind a real HAProxy (varde.scaleout). Requests go through the load balancer, which names
the replica that answered in `X-Varde-Replica`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from store.settings import Settings, varde_home
from tests.integration.load import Load
from tests.stack_plugin import Tenant, instance_logins, login, publish, wait_for
from varde import scaleout
from varde.net import free_port, port_open
from vitals import DeviceRef, Envelope, Reading, readings_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_OXIMETER = DeviceRef(address="A4:C1:38:00:00:02", type="pulse_oximeter", model="PO-60")


@pytest.fixture(scope="module")
def second_ingest_metrics(stack: dict[str, Any]) -> Iterator[str]:
    """A second ingest worker next to the stack's own; yields its metrics URL."""
    home = varde_home()
    port = free_port()
    env = {**os.environ, "VARDE_HOME": str(home), "VARDE_INGEST_WORKER_ID": "scale-out-2"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    with instance_logins(ingest=["scale-out-2"]):
        with open(home / "logs" / "ingest-scale-out-2.log", "ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "varde", "ingest", "run", "--metrics-port", str(port)],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            wait_for(lambda: port_open("127.0.0.1", port), timeout=60, what="the second ingest worker")
            wait_for(
                lambda: "mqtt_subscribed" in (home / "logs" / "ingest-scale-out-2.log").read_text(),
                timeout=30,
                what="the second worker's shared subscription",
            )
            yield f"http://127.0.0.1:{port}/metrics"
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)


@pytest.fixture(scope="module")
def pool(stack: dict[str, Any]) -> Iterator[scaleout.ReplicaPool]:
    with scaleout.replicas(varde_home(), 2) as running:
        yield running


def _stored_by(metrics_url: str) -> float:
    for line in httpx.get(metrics_url, timeout=10).text.splitlines():
        if line.startswith("varde_ingest_readings_stored_total "):
            return float(line.split()[1])
    raise AssertionError("varde_ingest_readings_stored_total missing from the worker's metrics")


def _low_spo2(gateway_id: str, value: float) -> tuple[bytes, uuid.UUID]:
    now = datetime.now(UTC).replace(microsecond=0)
    reading = Reading(id=uuid.uuid4(), kind="spo2", value=value, unit="%", measured_at=now, device=_OXIMETER)
    return Envelope(gateway_id=gateway_id, sent_at=now, readings=(reading,)).to_json(), reading.id


def _read_stream(url: str, headers: dict[str, str], out: list[tuple[str, str]], stop: threading.Event) -> None:
    """Collect (event, data) pairs of the alarm stream; ("closed", why) when the server side goes away."""
    try:
        with (
            httpx.Client(base_url=url, timeout=httpx.Timeout(30, read=30)) as client,
            client.stream(
                "GET", "/api/v1/alarms/stream", headers=headers, params={"heartbeat": 1, "lang": "en"}
            ) as resp,
        ):
            out.append(("status", str(resp.status_code)))
            out.append(("replica", resp.headers.get(scaleout.REPLICA_HEADER, "")))
            event = "message"
            for line in resp.iter_lines():
                if stop.is_set():
                    return
                if line.startswith(":"):
                    out.append(("comment", line[1:].strip()))
                elif line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    out.append((event, line.split(":", 1)[1].strip()))
                    event = "message"
            out.append(("closed", "end of stream"))
    except httpx.HTTPError as exc:
        out.append(("closed", type(exc).__name__))


def _wait_connected(events: list[tuple[str, str]]) -> None:
    """Wait for the stream's `connected` comment; a cold replica on a loaded machine may take several seconds."""
    try:
        wait_for(lambda: ("comment", "connected") in events, timeout=45, what="the alarm stream through the LB")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; stream so far: {events}") from None


def test_readings_from_many_gateways_split_over_two_workers_are_stored_once_and_raise_their_alarms(
    pool: scaleout.ReplicaPool, second_ingest_metrics: str, make_tenant: Any, settings: Settings
) -> None:
    busy: Tenant = make_tenant(patients=4, protocol="general")
    copd: Tenant = make_tenant(patients=3, protocol="copd")
    headers = login(pool.url, copd.nurse, copd.nurse_password)
    events: list[tuple[str, str]] = []
    stop = threading.Event()
    reader = threading.Thread(target=_read_stream, args=(pool.url, headers, events, stop), daemon=True)
    reader.start()
    _wait_connected(events)
    second_before = _stored_by(second_ingest_metrics)
    low = {g.patient_id: 80.0 + i for i, g in enumerate(copd.gateways)}
    alarm_ids: set[uuid.UUID] = set()
    try:
        with Load(busy.gateways, per_envelope=20, envelopes_per_s=30) as load:
            for gateway in copd.gateways:
                payload, reading_id = _low_spo2(gateway.gateway_id, low[gateway.patient_id])
                assert publish(gateway, readings_topic(gateway.gateway_id), payload) < 128
                alarm_ids.add(reading_id)
            wait_for(lambda: len(load.counts.acked) > 1500, timeout=60, what="1500 acknowledged readings")
        acked, published = load.counts.acked, load.counts.published
        all_ids = list(published | alarm_ids)

        def counts() -> tuple[int, int, int]:
            with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE id = ANY(%s)) FROM readings "
                    "WHERE id = ANY(%s)",
                    (list(acked | alarm_ids), all_ids),
                ).fetchone()
            assert row is not None
            return int(row[0]), int(row[1]), int(row[2])

        wait_for(
            lambda: counts()[2] == len(acked | alarm_ids), timeout=90, interval=0.5, what="every acked reading stored"
        )
        rows, distinct, _ = counts()
        second = _stored_by(second_ingest_metrics) - second_before
        print(
            f"\ntwo workers: published={len(published) + len(alarm_ids)} acked={len(acked) + len(alarm_ids)} "
            f"rows={rows} distinct={distinct} stored_by_second_worker={second:.0f}"
        )
        assert rows == distinct, "a reading was stored twice"
        assert distinct <= len(published) + len(alarm_ids)
        assert 0 < second < rows, "both ingest workers should have stored part of the stream"

        def red_spo2_alarms() -> dict[str, dict[str, Any]] | None:
            response = httpx.get(f"{pool.url}/api/v1/alarms", headers=headers, params={"lang": "en"}, timeout=30)
            assert response.status_code == 200, response.text
            items = [a for a in response.json()["items"] if a["rule"] == "threshold.spo2.low"]
            mine = {a["patient_id"]: a for a in items}
            assert len(mine) == len(items), "one open alarm per patient and rule"
            return mine if len(mine) == len(copd.patients) else None

        alarms = wait_for(red_spo2_alarms, what="a low-SpO2 alarm for each COPD patient")
        for patient_id, value in low.items():
            assert alarms[str(patient_id)]["severity"] == "red"
            assert alarms[str(patient_id)]["last_value"] == value
        streamed = wait_for(
            lambda: {json.loads(d)["patient_id"] for e, d in events if e == "alarm"} >= {str(p) for p in low} or None,
            what="each alarm on the live stream through the load balancer",
        )
        assert streamed
        assert events[0] == ("status", "200") and events[1][1] in ("api1", "api2")
        assert all(json.loads(d)["patient_id"] in {str(p) for p in low} for e, d in events if e == "alarm")
    finally:
        stop.set()
        reader.join(5)


def test_nurse_token_from_the_load_balancer_works_on_both_replicas(
    pool: scaleout.ReplicaPool, make_tenant: Any
) -> None:
    tenant: Tenant = make_tenant(patients=2)
    headers = login(pool.url, tenant.nurse, tenant.nurse_password)
    served: Counter[str] = Counter()
    with httpx.Client(base_url=pool.url, headers=headers, timeout=30) as client:
        for _ in range(20):
            response = client.get("/api/v1/patients", params={"limit": 50})
            assert response.status_code == 200, response.text
            assert {p["id"] for p in response.json()["items"]} == {str(p) for p in tenant.patients}
            served[response.headers[scaleout.REPLICA_HEADER]] += 1
    print(f"\nrequests per replica through the load balancer: {dict(served)}")
    assert set(served) == {"api1", "api2"} and min(served.values()) >= 5
    for replica in pool.replicas:  # the same token, straight at each replica (one shared token secret)
        direct = httpx.get(f"{replica.url}/api/v1/patients", headers=headers, timeout=30)
        assert direct.status_code == 200, direct.text
        assert scaleout.REPLICA_HEADER not in direct.headers
    no_token = httpx.get(f"{pool.url}/api/v1/patients", timeout=30)
    assert no_token.status_code == 401


def test_killed_replica_is_taken_out_and_requests_and_streams_through_the_load_balancer_keep_working(
    stack: dict[str, Any], make_tenant: Any
) -> None:
    tenant: Tenant = make_tenant()
    with scaleout.replicas(varde_home(), 2) as own:
        headers = login(own.url, tenant.nurse, tenant.nurse_password)
        for _ in range(4):  # warm both replicas (first request: imports, pools) before timing anything
            assert httpx.get(f"{own.url}/api/v1/alarms", headers=headers, timeout=30).status_code == 200
        events: list[tuple[str, str]] = []
        stop = threading.Event()
        reader = threading.Thread(target=_read_stream, args=(own.url, headers, events, stop), daemon=True)
        reader.start()
        _wait_connected(events)
        streaming = dict(events)["replica"]
        victim = next(r for r in own.replicas if r.name == streaming)
        survivor = next(r.name for r in own.replicas if r is not victim)
        own.kill(victim.index)
        lb_view_at_kill = own.server_states()
        served: Counter[str] = Counter()
        statuses: Counter[int] = Counter()
        with httpx.Client(base_url=own.url, headers=headers, timeout=30) as client:
            for _ in range(40):
                response = client.get("/api/v1/alarms")
                statuses[response.status_code] += 1
                served[response.headers.get(scaleout.REPLICA_HEADER, "")] += 1
        own.wait_states({survivor: "UP", victim.name: "DOWN"}, timeout=10)
        reader.join(15)
        assert not reader.is_alive(), "the stream served by the killed replica should have ended"
        again: list[tuple[str, str]] = []
        reconnect = threading.Thread(target=_read_stream, args=(own.url, headers, again, stop), daemon=True)
        reconnect.start()  # what the dashboard's EventSource does after `retry` ms
        _wait_connected(again)
        relogin = login(own.url, tenant.nurse, tenant.nurse_password)
        after = httpx.get(f"{own.url}/api/v1/alarms", headers=relogin, timeout=30)
        stop.set()
        print(
            f"\nafter killing {victim.name}: LB saw {lb_view_at_kill} at the kill; statuses={dict(statuses)} "
            f"served_by={dict(served)} stream={events[-1]} reconnected_to={dict(again)['replica']} "
            f"lb_now={own.server_states()}"
        )
        assert statuses == Counter({200: 40})
        assert set(served) == {survivor}
        assert events[-1][0] == "closed"
        assert dict(again)["replica"] == survivor
        assert after.status_code == 200


def test_the_sign_in_budget_is_shared_by_the_replicas(
    pool: scaleout.ReplicaPool, make_tenant: Any, db: psycopg.Connection[Any]
) -> None:
    """10 failed sign-ins per account and minute in all: 5 guesses at each replica spend it for both."""
    tenant: Tenant = make_tenant()
    first, second = pool.replicas
    for replica in (first, second):
        for _ in range(5):
            guess = httpx.post(
                f"{replica.url}/api/v1/auth/token", data={"username": tenant.nurse, "password": "guess"}, timeout=30
            )
            assert guess.status_code == 401, guess.text
    for replica in (first, second):
        right = httpx.post(
            f"{replica.url}/api/v1/auth/token",
            data={"username": tenant.nurse, "password": tenant.nurse_password},
            timeout=30,
        )
        assert right.status_code == 429, (replica.name, right.text)
        assert 1 <= int(right.headers["retry-after"]) <= 60
    limited = db.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'login' AND outcome = 'rate_limited' AND username = %s",
        (tenant.nurse,),
    ).fetchone()
    assert limited is not None and limited[0] == 2
    other: Tenant = make_tenant()  # another account from the same address still signs in
    assert login(second.url, other.nurse, other.nurse_password)["Authorization"].startswith("Bearer ")


def _audited_addr(db: psycopg.Connection[Any], username: str) -> list[str | None]:
    rows = db.execute(
        "SELECT client_addr FROM audit_log WHERE action = 'login' AND username = %s ORDER BY id", (username,)
    ).fetchall()
    return [r[0] for r in rows]


_SPOOF = {"X-Forwarded-For": "203.0.113.66", "X-Forwarded-Proto": "https"}


def test_forwarded_headers_count_only_from_the_configured_proxy(
    pool: scaleout.ReplicaPool, stack: dict[str, Any], api_url: str, make_tenant: Any, db: psycopg.Connection[Any]
) -> None:
    """The replicas trust X-Forwarded-* from HAProxy's address (VARDE_FORWARDED_ALLOW_IPS=127.0.0.1, as `varde
    stack replicas` starts them); the stack's own API trusts no proxy, so the same headers from a client change
    nothing. Through HAProxy a client's own copies are dropped and the real address is forwarded."""
    tenant: Tenant = make_tenant()
    wrong = {"username": tenant.nurse, "password": "not-it"}

    # Straight at the stack's API (no proxy configured): the client cannot claim an address or https.
    direct = httpx.post(f"{api_url}/api/v1/auth/token", data=wrong, headers=_SPOOF, timeout=30)
    assert direct.status_code == 401
    assert "strict-transport-security" not in direct.headers
    lang = httpx.get(f"{api_url}/dashboard/lang/en", headers=_SPOOF, timeout=30)
    assert "secure" not in lang.headers["set-cookie"].lower()
    assert _audited_addr(db, tenant.nurse) == ["127.0.0.1"]

    # From the configured proxy's address: the forwarded client address and https are believed.
    replica = pool.replicas[0]
    proxied = httpx.post(f"{replica.url}/api/v1/auth/token", data=wrong, headers=_SPOOF, timeout=30)
    assert proxied.status_code == 401
    assert proxied.headers["strict-transport-security"].startswith("max-age=")
    lang = httpx.get(f"{replica.url}/dashboard/lang/en", headers=_SPOOF, timeout=30)
    assert "secure" in lang.headers["set-cookie"].lower()
    assert _audited_addr(db, tenant.nurse) == ["127.0.0.1", "203.0.113.66"]

    # Through HAProxy: the client's own X-Forwarded-* are replaced by the real peer and http.
    through = httpx.post(f"{pool.url}/api/v1/auth/token", data=wrong, headers=_SPOOF, timeout=30)
    assert through.status_code == 401
    assert "strict-transport-security" not in through.headers
    assert _audited_addr(db, tenant.nurse) == ["127.0.0.1", "203.0.113.66", "127.0.0.1"]
