"""The local stack for integration tests, and helpers to provision teams, patients, users and gateways."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from store.settings import Settings, get_settings, varde_home


@pytest.fixture(scope="session")
def stack() -> Iterator[dict[str, Any]]:
    from varde import stack as stack_mod

    with stack_mod.running(varde_home()) as state:
        # A test that ran before the stack existed may have cached settings without it (workers of pytest-xdist
        # reach their first integration test in any order).
        get_settings.cache_clear()
        yield state


@contextmanager
def instance_logins(**instances: list[str]) -> Iterator[list[str]]:
    """Broker logins for service instances a test starts beside the stack's own (`ingest=["second-worker"]`), each
    bound to its own client id; deleted afterwards (start and stop the instances inside the block)."""
    from varde import stack as stack_mod

    logins = stack_mod.ensure_service_instances(varde_home(), dict(instances))
    try:
        yield logins
    finally:
        stack_mod.retire_service_instances(varde_home(), dict(instances))


@pytest.fixture(scope="session")
def settings(stack: dict[str, Any]) -> Settings:
    return Settings()


@pytest.fixture
def db(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        yield conn


@dataclass(frozen=True)
class Gateway:
    gateway_id: str
    password: str
    patient_id: UUID
    host: str
    port: int

    def client(self, client_id: str | None = None) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or self.gateway_id, protocol=mqtt.MQTTv5)
        client.username_pw_set(self.gateway_id, self.password)
        return client


@dataclass
class Tenant:
    """A care team with a nurse, one or more patients and their gateways, unique per test."""

    team: str
    team_id: UUID
    nurse: str
    nurse_password: str
    patients: list[UUID]
    gateways: list[Gateway]


@pytest.fixture
def make_tenant(settings: Settings) -> Callable[..., Tenant]:
    from varde.admin import add_gateways, add_patient, add_team, add_user

    def make(patients: int = 1, protocol: str = "heart_failure") -> Tenant:
        suffix = secrets.token_hex(4)
        team = f"team-{suffix}"
        team_id = add_team(settings, team)
        nurse, password = f"nurse-{suffix}", secrets.token_urlsafe(12)
        add_user(settings, nurse, "nurse", [team], password)
        patient_ids = [add_patient(settings, f"Pasient {suffix}-{i}", team, protocol) for i in range(patients)]
        creds = add_gateways(settings, patient_ids)
        gateways = [
            Gateway(c.gateway_id, c.password, p, c.mqtt_host, c.mqtt_port)
            for c, p in zip(creds, patient_ids, strict=True)
        ]
        return Tenant(team, team_id, nurse, password, patient_ids, gateways)

    return make


@pytest.fixture(scope="session")
def api_url(stack: dict[str, Any]) -> str:
    return str(json.loads((varde_home() / "stack.json").read_text())["api_url"])


def login(api_url: str, username: str, password: str) -> dict[str, str]:
    response = httpx.post(
        f"{api_url}/api/v1/auth/token", data={"username": username, "password": password}, timeout=30.0
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def wait_for(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def publish(gateway: Gateway, topic: str, payload: bytes, qos: int = 1, timeout: float = 10.0) -> int:
    """Publish one message with the gateway's login; returns the PUBACK reason code value."""
    return publish_all(gateway, topic, [payload], qos=qos, timeout=timeout)[0]


def publish_all(gateway: Gateway, topic: str, payloads: list[bytes], qos: int = 1, timeout: float = 10.0) -> list[int]:
    """Publish messages in order over one connection with the gateway's login; the PUBACK reason code values in the
    same order (a connection per message costs ~0.1 s, which made replaying a few hundred envelopes slow)."""
    client = gateway.client()
    codes: dict[int, int] = {}

    def on_publish(client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        codes[mid] = rc.value

    client.on_publish = on_publish
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect(gateway.host, gateway.port)
    client.loop_start()
    try:
        mids = [client.publish(topic, payload, qos=qos).mid for payload in payloads]
        wait_for(lambda: len(codes) >= len(mids), timeout + 0.05 * len(mids), interval=0.01, what="PUBACK")
    finally:
        client.disconnect()
        client.loop_stop()
    return [codes[mid] for mid in mids]


__all__ = ["Gateway", "Tenant", "login", "publish", "publish_all", "wait_for"]
