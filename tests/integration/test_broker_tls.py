"""Gateways over TLS: the local stack's Mosquitto TLS listener (private CA under .varde/tls/) admits only valid
gateway logins, and a revoked gateway is cut off at once and cannot come back."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from store.settings import Settings, varde_home
from tests.stack_plugin import Gateway, Tenant, wait_for
from vitals import readings_topic

pytestmark = pytest.mark.integration


class _TlsGateway:
    """A gateway's MQTT v5 connection over TLS that records what the broker answered."""

    def __init__(self, gateway_id: str, password: str, ca_file: str) -> None:
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connect_reason: Any = None
        self.pubacks: list[int] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gateway_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(gateway_id, password)
        self.client.tls_set(ca_certs=ca_file)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: self.disconnected.set()
        self.client.on_publish = lambda client, userdata, mid, rc, props: self.pubacks.append(rc.value)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connect_reason = rc
        self.connected.set()

    def connect(self, port: int) -> Any:
        """Connect without automatic reconnects; returns the CONNACK reason code."""
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.connected.wait(10) or self.disconnected.wait(0), "no CONNACK over TLS"
        return self.connect_reason

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _tls(stack: dict[str, Any]) -> tuple[int, str]:
    doc = json.loads((varde_home() / "stack.json").read_text())
    return int(doc["mqtts_port"]), str(doc["tls_ca_file"])


def _envelope(gateway_id: str) -> tuple[str, bytes]:
    reading_id = str(uuid.uuid4())
    doc = {
        "schema": "varde.readings/1",
        "gateway_id": gateway_id,
        "sent_at": datetime.now(UTC).isoformat(),
        "readings": [
            {
                "id": reading_id,
                "kind": "body_weight",
                "value": 81.9,
                "unit": "kg",
                "measured_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
                "device": {"address": "C4:7C:8D:00:00:07", "type": "weight_scale", "model": "UC-352BLE"},
                "flags": [],
            }
        ],
    }
    return reading_id, json.dumps(doc).encode()


def test_tls_listener_serves_a_certificate_from_the_local_ca(stack: dict[str, Any]) -> None:
    port, ca_file = _tls(stack)
    context = ssl.create_default_context(cafile=ca_file)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    untrusted = ssl.create_default_context()  # the system store does not know the local CA
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, pytest.raises(ssl.SSLCertVerificationError):
        untrusted.wrap_socket(raw, server_hostname="127.0.0.1")
    assert Path(ca_file).parent == varde_home() / "tls"


def test_gateway_with_wrong_or_unknown_login_is_refused_over_tls(make_tenant: Any, stack: dict[str, Any]) -> None:
    port, ca_file = _tls(stack)
    gateway: Gateway = make_tenant().gateways[0]
    for username, password in ((gateway.gateway_id, "not-the-password"), ("gw-000000000000", gateway.password)):
        attempt = _TlsGateway(username, password, ca_file)
        try:
            reason = attempt.connect(port)
        finally:
            attempt.close()
        assert reason is not None and reason.is_failure, (username, reason)
        assert reason.value in (0x86, 0x87), reason  # bad user name or password / not authorized


def test_gateway_with_valid_login_publishes_over_tls_and_the_reading_is_stored(
    make_tenant: Any, stack: dict[str, Any], db: psycopg.Connection[Any]
) -> None:
    port, ca_file = _tls(stack)
    gateway: Gateway = make_tenant().gateways[0]
    link = _TlsGateway(gateway.gateway_id, gateway.password, ca_file)
    try:
        assert not link.connect(port).is_failure
        reading_id, payload = _envelope(gateway.gateway_id)
        link.client.publish(readings_topic(gateway.gateway_id), payload, qos=1)
        wait_for(lambda: link.pubacks, what="PUBACK over TLS")
        assert link.pubacks[0] < 128
    finally:
        link.close()
    wait_for(
        lambda: db.execute("SELECT 1 FROM readings WHERE id = %s", (reading_id,)).fetchone(),
        timeout=20,
        what="the reading sent over TLS to be stored",
    )


def test_revoked_gateway_is_disconnected_within_seconds_and_cannot_reconnect(
    make_tenant: Any, stack: dict[str, Any], settings: Settings
) -> None:
    from varde.admin import revoke_gateway

    port, ca_file = _tls(stack)
    tenant: Tenant = make_tenant()
    gateway = tenant.gateways[0]
    link = _TlsGateway(gateway.gateway_id, gateway.password, ca_file)
    try:
        assert not link.connect(port).is_failure
        started = time.monotonic()
        revoke_gateway(settings, gateway.gateway_id)
        assert link.disconnected.wait(5), "the revoked gateway's live TLS connection was not dropped"
        assert time.monotonic() - started < 5
    finally:
        link.close()
    again = _TlsGateway(gateway.gateway_id, gateway.password, ca_file)
    try:
        reason = again.connect(port)
    finally:
        again.close()
    assert reason is not None and reason.is_failure, reason
