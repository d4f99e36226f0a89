"""Client ids are bound to logins on the broker (gateways and every service instance), and service logins are
ensured without disconnecting anyone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from store.settings import Settings, varde_home
from tests.stack_plugin import Tenant, instance_logins, wait_for
from varde import stack
from varde.broker import DynSecAdmin

pytestmark = pytest.mark.integration

NOT_AUTHORISED = 0x87


@dataclass(frozen=True)
class Login:
    username: str
    password: str


def _connack(settings: Settings, login: Login, client_id: str) -> Any:
    """One CONNECT with `login` and `client_id`; the CONNACK reason code."""
    codes: list[Any] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(login.username, login.password)
    client.on_connect = lambda c, u, f, rc, p: codes.append(rc)
    client.connect(settings.mqtt_host, settings.mqtt_port)
    # Driven here rather than by a network thread, whose one-second select would make each probe last a second.
    deadline = time.monotonic() + 10
    try:
        while not codes and time.monotonic() < deadline:
            client.loop(timeout=0.02)
    finally:
        client.disconnect()
    assert codes, f"no CONNACK for {login.username} as {client_id}"
    return codes[0]


@contextmanager
def _connected(settings: Settings, login: Login, client_id: str) -> Iterator[threading.Event]:
    """A session held open for the block; yields an event set if the broker ever drops it."""
    dropped, up = threading.Event(), threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(login.username, login.password)
    client.on_connect = lambda c, u, f, rc, p: None if rc.is_failure else up.set()
    client.on_disconnect = lambda *a: dropped.set()
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    try:
        assert up.wait(10), f"{login.username} could not connect as {client_id}"
        yield dropped
    finally:
        client.disconnect()
        client.loop_stop()


def _own() -> dict[str, str]:
    """The instance names of the stack's own ingest worker and API (`varde stack up` keeps them in stack.json)."""
    own: dict[str, str] = stack.load_state(stack.StackPaths(varde_home()))["service_instances"]
    return own


def _service_client_ids() -> list[str]:
    """The client ids the platform's services connect with: the stack's own instances and ones beside them."""
    own = _own()
    return [
        f"varde-ingest-{own['ingest']}",
        f"varde-api-{own['api']}",
        "varde-ingest-second-worker",
        "varde-ingest-scale-out-2",
        "varde-api-api-1",
        f"varde-admin-{uuid.uuid4().hex[:8]}",
        "varde-ingest",
        "varde-api",
    ]


def test_no_gateway_can_connect_with_a_service_or_another_gateways_client_id(
    make_tenant: Any, settings: Settings
) -> None:
    tenant: Tenant = make_tenant(patients=3)
    for gateway in tenant.gateways:
        login = Login(gateway.gateway_id, gateway.password)
        foreign = [*_service_client_ids(), *(g.gateway_id for g in tenant.gateways if g is not gateway)]
        for client_id in foreign:
            code = _connack(settings, login, client_id)
            assert code.is_failure and code.value == NOT_AUTHORISED, f"{gateway.gateway_id} as {client_id!r}: {code}"
        assert not _connack(settings, login, gateway.gateway_id).is_failure


def test_no_service_login_can_connect_with_a_gateways_or_another_instances_client_id(
    make_tenant: Any, settings: Settings
) -> None:
    tenant: Tenant = make_tenant(patients=2)
    own = _own()
    extra = f"bound-{uuid.uuid4().hex[:6]}"
    ingest_password, api_password = str(settings.mqtt_ingest_password), str(settings.mqtt_api_password)
    ingest_log = Path(stack.load_state(stack.StackPaths(varde_home()))["services"]["ingest"]["log"])
    logged_before = ingest_log.stat().st_size
    with instance_logins(ingest=[extra], api=[extra]) as made:
        assert made == [f"varde-ingest-{extra}", f"varde-api-{extra}"]
        logins = [
            Login(f"varde-ingest-{own['ingest']}", ingest_password),  # the stack's running worker
            Login(f"varde-ingest-{extra}", ingest_password),
            Login(f"varde-api-{own['api']}", api_password),
            Login(f"varde-api-{extra}", api_password),
        ]
        # The victims hold their sessions: every gateway, and the instances beside the stack's own (the stack's
        # ingest worker holds its own session already).
        victims = [(Login(g.gateway_id, g.password), g.gateway_id) for g in tenant.gateways]
        victims += [(login, login.username) for login in logins if extra in login.username]
        with ExitStack() as held:
            dropped = {cid: held.enter_context(_connected(settings, login, cid)) for login, cid in victims}
            for login in logins:
                targets = [g.gateway_id for g in tenant.gateways] + [o.username for o in logins if o is not login]
                for client_id in targets:
                    code = _connack(settings, login, client_id)
                    assert code.is_failure and code.value == NOT_AUTHORISED, f"{login.username} as {client_id}: {code}"
            time.sleep(0.5)  # a takeover's kick arrives within milliseconds
            assert [name for name, event in dropped.items() if event.is_set()] == []
    tail = ingest_log.read_bytes()[logged_before:].decode()
    assert "mqtt_disconnected" not in tail, tail


def test_a_changed_service_password_is_set_and_a_retired_or_shared_login_no_longer_connects(
    settings: Settings,
) -> None:
    secret = stack._read_json(stack.StackPaths(varde_home()).secrets_file)
    name = f"pw-{uuid.uuid4().hex[:6]}"
    username = f"varde-ingest-{name}"
    first, second = Login(username, f"first-{uuid.uuid4().hex}"), Login(username, f"second-{uuid.uuid4().hex}")
    legacy = Login("varde-ingest", str(settings.mqtt_ingest_password))
    with DynSecAdmin(settings.mqtt_host, settings.mqtt_port, "admin", str(secret["mqtt_admin_password"])) as admin:
        try:
            # The shared, unbound login of earlier versions, as an upgraded broker still has it.
            admin.run(
                [
                    {
                        "command": "createClient",
                        "username": legacy.username,
                        "password": legacy.password,
                        "roles": [{"rolename": "service-ingest"}],
                    }
                ],
                tolerate=("already exists",),
            )
            assert not _connack(settings, legacy, "varde-ingest-anything").is_failure
            admin.ensure_service_logins({"ingest": first.password}, {"ingest": [name]})
            assert not _connack(settings, first, username).is_failure
            assert _connack(settings, legacy, "varde-ingest-anything").is_failure, "the shared login was deleted"
            # The digest of the last ensured password differs: the new one is set, the old one refused.
            admin.ensure_service_logins({"ingest": second.password}, {"ingest": [name]})
            assert _connack(settings, first, username).is_failure
            assert not _connack(settings, second, username).is_failure
            # A login left unbound (made by hand, or half-way) is bound by the next ensure.
            admin.run([{"command": "setClientId", "username": username}])
            assert not _connack(settings, second, "varde-ingest-elsewhere").is_failure
            admin.ensure_service_logins({"ingest": second.password}, {"ingest": [name]})
            assert _connack(settings, second, "varde-ingest-elsewhere").value == NOT_AUTHORISED
            assert not _connack(settings, second, username).is_failure
            admin.delete_service_logins([username])
            assert _connack(settings, second, username).is_failure
        finally:
            admin.delete_service_logins([username, legacy.username])


def _start_second_worker(home: Any, worker_id: str, log_name: str) -> tuple[subprocess.Popen[bytes], Any]:
    env = {
        **os.environ,
        "VARDE_HOME": str(home),
        "VARDE_INGEST_WORKER_ID": worker_id,
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
    worker_id, watch_id = f"idem-{uuid.uuid4().hex[:6]}", f"watch-{uuid.uuid4().hex[:6]}"
    watch = Login(f"varde-ingest-{watch_id}", str(settings.mqtt_ingest_password))
    with instance_logins(ingest=[worker_id, watch_id]), _connected(settings, watch, watch.username) as kicked:
        proc, log = _start_second_worker(home, worker_id, "ingest-idempotent.log")
        text = lambda: (home / "logs" / "ingest-idempotent.log").read_text()  # noqa: E731
        try:
            wait_for(lambda: "mqtt_connected" in text(), 30, what="the second worker connected")
            stack.up(home)
            stack.up(home)
            stack.ensure_service_instances(home, {"ingest": [worker_id, watch_id]})
            # A kick arrives within milliseconds of the broker's answer to the admin command; give it ample time.
            time.sleep(2.0)
            assert not kicked.is_set(), "a running varde-ingest connection was disconnected by `stack up`"
            assert "mqtt_disconnected" not in text(), text()
            assert proc.poll() is None
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            log.close()
