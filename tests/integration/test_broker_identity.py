"""Client ids are bound to logins on the broker, and service logins are ensured without disconnecting anyone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from store.settings import Settings, varde_home
from tests.integration.conftest import Gateway, Tenant, wait_for
from varde import stack

pytestmark = pytest.mark.integration


def _connack(gateway: Gateway, client_id: str) -> Any:
    """One CONNECT with the gateway's own login and `client_id`; the CONNACK reason code."""
    codes: list[Any] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(gateway.gateway_id, gateway.password)
    client.on_connect = lambda c, u, f, rc, p: codes.append(rc)
    client.connect(gateway.host, gateway.port)
    client.loop_start()
    try:
        wait_for(lambda: codes, 10, what=f"CONNACK for {client_id}")
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


def _service_client_ids() -> list[str]:
    """The client ids the platform's services connect with (`ingest_service/worker.py`, `gateway_link.py`)."""
    return [
        f"varde-ingest-{socket.gethostname()}",
        f"varde-ingest-{os.environ.get('VARDE_INGEST_WORKER_ID', 'second-worker')}",
        "varde-ingest-second-worker",
        f"varde-api-{uuid.uuid4().hex[:12]}",
        f"varde-admin-{uuid.uuid4().hex[:8]}",
        "varde-ingest",
        "varde-api",
    ]


def test_no_gateway_can_connect_with_a_service_or_another_gateways_client_id(make_tenant: Any) -> None:
    tenant: Tenant = make_tenant(patients=3)
    for gateway in tenant.gateways:
        foreign = [*_service_client_ids(), *(g.gateway_id for g in tenant.gateways if g is not gateway)]
        for client_id in foreign:
            code = _connack(gateway, client_id)
            assert code.is_failure and code.value == 0x87, f"{gateway.gateway_id} as {client_id!r}: {code}"
        assert not _connack(gateway, gateway.gateway_id).is_failure


def _start_second_worker(home: Any, log_name: str) -> tuple[subprocess.Popen[bytes], Any]:
    env = {
        **os.environ,
        "VARDE_HOME": str(home),
        "VARDE_INGEST_WORKER_ID": f"idem-{uuid.uuid4().hex[:6]}",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    log = open(home / "logs" / log_name, "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "varde", "ingest", "run", "--metrics-port", "0"],
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    return proc, log


def test_a_second_stack_up_leaves_running_ingest_workers_connected(settings: Settings) -> None:
    home = varde_home()
    kicked = threading.Event()
    watcher = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"varde-ingest-watch-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
    )
    watcher.username_pw_set(settings.mqtt_ingest_username, settings.mqtt_ingest_password)
    connected = threading.Event()
    watcher.on_connect = lambda c, u, f, rc, p: connected.set()
    watcher.on_disconnect = lambda *a: kicked.set()
    watcher.connect(settings.mqtt_host, settings.mqtt_port)
    watcher.loop_start()
    proc, log = _start_second_worker(home, "ingest-idempotent.log")
    text = lambda: (home / "logs" / "ingest-idempotent.log").read_text()  # noqa: E731
    try:
        assert connected.wait(10)
        wait_for(lambda: "mqtt_connected" in text(), 30, what="the second worker connected")
        stack.up(home)
        stack.up(home)
        # A kick arrives within milliseconds of the broker's answer to the admin command; give it ample time.
        time.sleep(2.0)
        assert not kicked.is_set(), "a running varde-ingest connection was disconnected by `stack up`"
        assert "mqtt_disconnected" not in text(), text()
        assert proc.poll() is None
    finally:
        watcher.disconnect()
        watcher.loop_stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
