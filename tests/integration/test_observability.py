"""The services' operations endpoints against the real test stack: each process serves /metrics, /healthz and
/readyz on the port `varde stack` recorded; counters move when real work passes through; readiness follows
PostgreSQL and the broker; the Grafana example only uses metrics the running services export."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from store.settings import Settings, varde_home
from tests.integration.ops import (
    ROOT,
    TcpRelay,
    metrics_port,
    readiness,
    scrape,
    service_process,
    value,
)
from tests.stack_plugin import Tenant, instance_logins, login, publish, wait_for
from varde.net import free_port
from vitals import DeviceRef, Envelope, Reading, readings_topic

pytestmark = pytest.mark.integration

SERVICES = ("ingest", "rules", "api", "journal")


def _spo2_envelope(gateway_id: str, spo2: float) -> Envelope:
    now = datetime.now(UTC).replace(microsecond=0)
    device = DeviceRef(address="A4:C1:38:00:00:09", type="pulse_oximeter", model="PO-60")
    return Envelope(
        gateway_id=gateway_id,
        sent_at=now,
        readings=(
            Reading(id=uuid.uuid4(), kind="spo2", value=spo2, unit="%", measured_at=now, device=device),
            Reading(id=uuid.uuid4(), kind="pulse_rate", value=71.0, unit="/min", measured_at=now, device=device),
        ),
    )


def test_stack_status_shows_every_services_ops_endpoint_and_that_it_is_ready(stack: dict[str, Any]) -> None:
    from varde import stack as stack_mod

    def all_ready() -> dict[str, Any] | None:
        report = stack_mod.status(varde_home())
        return report if all(report["components"][s].get("ready") for s in SERVICES) else None

    report = wait_for(all_ready, 30, what="every service ready")
    for name in SERVICES:
        component = report["components"][name]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/metrics", component["metrics_url"]), component
        port = metrics_port(name)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok", "service": name}
        code, body = readiness(port)
        assert code == 200 and body["status"] == "ready" and body["checks"]["database"] is True
    assert readiness(metrics_port("ingest"))[1]["checks"]["broker"] is True


def test_published_reading_moves_the_ingest_and_rules_counters(make_tenant: Any) -> None:
    port = metrics_port("ingest")
    before, _ = scrape(port)
    tenant: Tenant = make_tenant(protocol="copd")
    gateway = tenant.gateways[0]
    assert (
        publish(gateway, readings_topic(gateway.gateway_id), _spo2_envelope(gateway.gateway_id, 80.0).to_json()) < 128
    )

    def stored() -> Any:
        after, _ = scrape(port)
        grown = value(after, "varde_ingest_readings_stored_total") - value(before, "varde_ingest_readings_stored_total")
        return after if grown >= 2 else None

    after = wait_for(stored, 20, what="the ingest counters to count the two readings")
    assert value(after, "varde_ingest_messages_total") > value(before, "varde_ingest_messages_total")
    assert value(after, "varde_ingest_batch_seconds_count") > value(before, "varde_ingest_batch_seconds_count")
    assert value(after, "varde_ingest_lag_seconds") >= 0
    assert value(after, "varde_ingest_mqtt_connected") == 1
    assert value(after, "varde_rules_evaluations_total") > value(before, "varde_rules_evaluations_total")
    readings = "varde_rules_readings_evaluated_total"
    assert value(after, readings) - value(before, readings) >= 2
    latency = "varde_rules_evaluation_seconds_count"
    assert value(after, latency) > value(before, latency)
    raised = {"rule": "threshold.spo2.low", "severity": "red"}
    alarms = "varde_rules_alarms_raised_total"
    assert value(after, alarms, **raised) - value(before, alarms, **raised) == 1


def test_api_counts_requests_by_route_template_streams_and_refused_logins(
    make_tenant: Any, api_url: str, settings: Settings
) -> None:
    port = metrics_port("api")
    tenant: Tenant = make_tenant()
    patient = str(tenant.patients[0])
    before, _ = scrape(port)

    assert (
        httpx.post(
            f"{api_url}/api/v1/auth/token", data={"username": tenant.nurse, "password": "wrong"}, timeout=30
        ).status_code
        == 401
    )
    assert httpx.get(f"{api_url}/api/v1/alarms", timeout=30).status_code == 401
    headers = login(api_url, tenant.nurse, tenant.nurse_password)
    measured = httpx.get(f"{api_url}/api/v1/patients/{patient}/measurements", headers=headers, timeout=30)
    assert measured.status_code == 200, measured.text
    stranger = str(uuid.uuid4())
    assert (
        httpx.get(f"{api_url}/api/v1/patients/{stranger}/measurements", headers=headers, timeout=30).status_code == 404
    )

    after, _ = scrape(port)
    failures = "varde_api_auth_failures_total"
    for reason in ("bad_credentials", "missing_token", "no_duty_of_care"):
        assert value(after, failures, reason=reason) - value(before, failures, reason=reason) == 1, reason
    template = "/api/v1/patients/{patient_id}/measurements"
    requests = "varde_api_requests_total"
    ok = {"method": "GET", "route": template, "status": "200"}
    assert value(after, requests, **ok) - value(before, requests, **ok) == 1
    assert value(after, "varde_api_request_seconds_count", method="GET", route=template) >= 2
    routes = {dict(labels)["route"] for name, labels in after if name == requests}
    assert not any(patient in r or stranger in r for r in routes), routes

    # A live alarm stream is counted while it is open, and no longer once the client has gone.
    opened = threading.Event()
    release = threading.Event()

    def listen() -> None:
        url = f"{api_url}/api/v1/alarms/stream"
        with httpx.stream("GET", url, headers=headers, params={"heartbeat": 0.5}, timeout=30) as response:
            assert response.status_code == 200
            for _ in response.iter_lines():
                opened.set()
                if release.is_set():
                    break

    streams_before = value(after, "varde_api_sse_clients")
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(20)
    wait_for(lambda: value(scrape(port)[0], "varde_api_sse_clients") == streams_before + 1, 10, what="stream count")
    release.set()
    listener.join(10)
    wait_for(lambda: value(scrape(port)[0], "varde_api_sse_clients") == streams_before, 10, what="stream closed")

    # Metrics are served on the operations port only, never on the public API behind the proxy.
    assert httpx.get(f"{api_url}/metrics").status_code == 404


def test_rules_leader_reports_its_ticks_and_a_second_scheduler_waits_as_standby(stack: dict[str, Any]) -> None:
    port = metrics_port("rules")
    samples = wait_for(
        lambda: (s := scrape(port)[0]) and value(s, "varde_rules_scheduler_ticks_total", outcome="ok") >= 1 and s,
        30,
        what="the leader's first tick",
    )
    assert value(samples, "varde_rules_leader") == 1
    assert value(samples, "varde_rules_scheduler_last_tick_timestamp_seconds") > 0
    standby_port = free_port()
    with service_process(["rules", "run", "--metrics-port", str(standby_port)], "rules-standby"):
        wait_for(lambda: _answers(standby_port), 30, what="the standby's ops endpoint")
        standby, _ = scrape(standby_port)
        assert value(standby, "varde_rules_leader") == 0
        assert value(standby, "varde_rules_scheduler_ticks_total") == 0
        assert readiness(standby_port)[0] == 200


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _url_via(url: str, port: int) -> str:
    return re.sub(r"@127\.0\.0\.1:\d+/", f"@127.0.0.1:{port}/", url)


def test_ingest_readiness_follows_the_broker_and_postgresql(stack: dict[str, Any], settings: Settings) -> None:
    state = json.loads((varde_home() / "stack.json").read_text())
    db_relay = TcpRelay(int(state["postgres"]["port"]))
    mqtt_relay = TcpRelay(int(state["mqtt_port"]))
    port = free_port()
    worker = f"ready-{uuid.uuid4().hex[:8]}"
    env = {
        "VARDE_DATABASE_URL": _url_via(settings.require_database_url(), db_relay.port),
        "VARDE_MQTT_PORT": str(mqtt_relay.port),
        "VARDE_LOG_FORMAT": "json",
    }
    with (
        instance_logins(ingest=[worker]),
        _session_ended_afterwards(state, worker),
        service_process(["ingest", "run", "--metrics-port", str(port), "--worker-id", worker], worker, **env),
    ):
        _check_readiness(port, mqtt_relay, db_relay)
    lines = (varde_home() / "logs" / f"{worker}.log").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    assert {"ingest_started", "mqtt_connected"} <= {e.get("event") for e in events}
    assert all({"ts", "level", "logger", "msg"} <= e.keys() for e in events)


@contextmanager
def _session_ended_afterwards(state: dict[str, Any], worker: str) -> Iterator[None]:
    """The worker is stopped while the broker is cut off from it, so it cannot end its persistent session: that
    session would stay in the shared ingest subscription and take its share of every later test's readings on this
    stack. End it as the worker's own login (nothing was published meanwhile, so nothing is in it)."""
    yield
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from store.settings import instance_login

    secret = json.loads((varde_home() / "secrets.json").read_text())
    client_id = instance_login("varde-ingest", worker)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(client_id, str(secret["mqtt_ingest_password"]))
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 0
    client.connect("127.0.0.1", int(state["mqtt_port"]), clean_start=True, properties=props)
    client.loop_start()
    try:
        assert connected.wait(10), "the worker's login could not reach the broker to end its session"
    finally:
        client.disconnect()
        client.loop_stop()


def _check_readiness(port: int, mqtt_relay: TcpRelay, db_relay: TcpRelay) -> None:
    wait_for(lambda: _answers(port) and readiness(port)[0] == 200, 30, what="the worker to be ready")
    mqtt_relay.cut()
    code, body = wait_for(lambda: (r := readiness(port))[0] == 503 and r, 30, what="not ready without broker")
    assert body["checks"] == {"database": True, "broker": False}
    assert value(scrape(port)[0], "varde_ingest_mqtt_connected") == 0
    db_relay.cut()
    code, body = wait_for(
        lambda: (r := readiness(port))[1]["checks"]["database"] is False and r, 15, what="database unreachable"
    )
    assert code == 503 and body["status"] == "not_ready"
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200


@pytest.mark.parametrize("service", ["journal", "api"])
def test_readiness_goes_false_when_postgresql_is_unreachable(
    stack: dict[str, Any], settings: Settings, service: str
) -> None:
    state = json.loads((varde_home() / "stack.json").read_text())
    relay = TcpRelay(int(state["postgres"]["port"]))
    port = free_port()
    args = [service, "run", "--metrics-port", str(port)]
    if service == "api":
        args += ["--port", str(free_port())]
    env = {"VARDE_DATABASE_URL": _url_via(settings.require_database_url(), relay.port)}
    with service_process(args, f"{service}-ready", **env):
        wait_for(lambda: _answers(port) and readiness(port)[0] == 200, 30, what=f"the {service} process to be ready")
        relay.cut()
        _code, body = wait_for(lambda: (r := readiness(port))[0] == 503 and r, 15, what="not ready")
        assert body == {"status": "not_ready", "service": service, "checks": {"database": False}}
        assert _answers(port)


def test_every_metric_of_the_grafana_dashboard_is_exported_by_a_running_service(stack: dict[str, Any]) -> None:
    from tests.unit.test_grafana_dashboard import dashboard_metric_names

    exported: set[str] = set()
    label_values: set[str] = set()
    for name in SERVICES:
        samples, names = scrape(metrics_port(name))
        exported |= names
        label_values |= {v for _, labels in samples for _, v in labels}
    missing = dashboard_metric_names(ROOT / "deploy" / "grafana" / "varde.json") - exported
    assert not missing, f"the dashboard uses metrics no service exports: {sorted(missing)}"
    # No series names a patient, user, gateway or alarm: no id or raw path in any label value.
    assert not [v for v in label_values if _UUID.search(v) or "gw-" in v], sorted(label_values)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_rules_leader_takes_the_lead_again_after_a_database_restart(stack: dict[str, Any]) -> None:
    """Found when the fault tests ran before this file: a restart ended the leader's session, the scheduler process
    exited, and nothing ran the scheduled rules (missed measurements, escalation) until someone restarted it."""
    from varde import stack as stack_mod

    port = metrics_port("rules")
    wait_for(lambda: value(scrape(port)[0], "varde_rules_leader") == 1, 30, what="the leader")
    ticks_before = value(scrape(port)[0], "varde_rules_scheduler_ticks_total", outcome="ok")
    stack_mod.restart_postgres(varde_home())
    # the next tick finds the session gone, gives up the lead, then takes it again and ticks
    samples = wait_for(
        lambda: (
            (s := scrape(port)[0])
            and value(s, "varde_rules_leader") == 1
            and value(s, "varde_rules_scheduler_ticks_total", outcome="ok") > ticks_before
            and s
        ),
        75,
        what="the scheduler leading and ticking again after the restart",
    )
    assert value(samples, "varde_rules_leader") == 1
