"""Gateway provisioning against the real stack over TLS: `varde gateway add` writes a configuration that
`varde edge check-config` accepts and the gateway agent delivers with; `rotate` drops the old password at once and the
fresh file works; `revoke` cuts the gateway off within seconds."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.agent import Agent
from edge_agent.config import EdgeConfig, load_config
from store.settings import Settings, varde_home
from tests.integration.conftest import wait_for
from vitals import DeviceRef, Reading

pytestmark = pytest.mark.integration

_REPO = Path(__file__).resolve().parents[2]


def _varde(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "varde", *args],
        cwd=_REPO,
        env={**os.environ, "PYTHONPATH": str(_REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _connack(config: EdgeConfig, password: str) -> Any:
    """Try one TLS login as the configured gateway with `password`; returns the CONNACK reason code."""
    result: list[Any] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    client.username_pw_set(config.username, password)
    assert config.broker.tls is not None
    client.tls_set(ca_certs=str(config.broker.tls.ca_file))
    client.on_connect = lambda c, u, f, rc, p: result.append(rc)
    client.connect(config.broker.host, config.broker.port)
    client.loop_start()
    try:
        wait_for(lambda: result, 10, what="CONNACK")
    finally:
        client.disconnect()
        client.loop_stop()
    return result[0]


@pytest.fixture
def patient(settings: Settings) -> uuid.UUID:
    from varde.admin import add_patient, add_team

    team = f"team-prov-{secrets.token_hex(4)}"
    add_team(settings, team)
    return add_patient(settings, f"Pasient {team}", team, "heart_failure", "Europe/Oslo")


class _Gateway:
    """The real gateway agent (outbox + publisher) run from a generated configuration file."""

    def __init__(self, path: Path) -> None:
        self.config = load_config(path)
        self.agent = Agent(self.config, radio_factory=None)
        self.agent.publisher.start()

    def measure(self) -> str:
        reading = Reading(
            id=uuid.uuid4(),
            kind="body_weight",
            value=82.4,
            unit="kg",
            measured_at=datetime.now(UTC).replace(microsecond=0),
            device=DeviceRef(address="C4:7C:8D:00:00:07", type="weight_scale", model="UC-352BLE"),
        )
        self.agent.accept([reading])
        return str(reading.id)

    def stop(self) -> None:
        self.agent.publisher.stop()
        self.agent.outbox.close()
        self.agent.questionnaires.close()
        self.agent.plans.close()


@pytest.fixture
def gateways() -> Iterator[list[_Gateway]]:
    started: list[_Gateway] = []
    yield started
    for gateway in started:
        gateway.stop()


def _stored(db: psycopg.Connection[Any], reading_id: str) -> bool:
    return db.execute("SELECT 1 FROM readings WHERE id = %s", (reading_id,)).fetchone() is not None


def test_add_rotate_revoke_a_gateway_over_tls_with_the_generated_files(
    stack: dict[str, Any],
    patient: uuid.UUID,
    db: psycopg.Connection[Any],
    gateways: list[_Gateway],
    tmp_path: Path,
) -> None:
    stack_doc = json.loads((varde_home() / "stack.json").read_text())
    out, svg, png = tmp_path / "gw.toml", tmp_path / "gw.svg", tmp_path / "gw.png"

    # add: configuration file and QR codes, owner-only.
    added = _varde(
        "gateway", "add", "--patient", str(patient), "--out", str(out), "--qr", str(svg), "--qr", str(png), "--json"
    )
    assert added.returncode == 0, added.stderr
    doc = json.loads(added.stdout)
    gateway_id = doc["gateway_id"]
    assert (doc["broker_host"], doc["broker_port"]) == ("127.0.0.1", stack_doc["mqtts_port"])
    for path in (out, svg, png):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert png.read_bytes().startswith(b"\x89PNG")

    checked = _varde("edge", "check-config", "--config", str(out))
    assert checked.returncode == 0, checked.stderr
    assert f"ok — gateway {gateway_id}, broker 127.0.0.1:{stack_doc['mqtts_port']}" in checked.stdout

    config = load_config(out)
    old_password = config.broker.read_password()
    assert old_password == doc["password"]
    assert config.broker.tls is not None and config.broker.tls.ca_file == Path(stack_doc["tls_ca_file"]).resolve()
    # The QR code's payload, enrolled on a gateway, gives the same login, broker and CA.
    enrolled_path = tmp_path / "enrolled" / "varde-edge.toml"
    enrolled = _varde("edge", "enrol", "--config", str(enrolled_path), "--payload", doc["payload"])
    assert enrolled.returncode == 0, enrolled.stderr
    enrolled_config = load_config(enrolled_path)
    assert (enrolled_config.gateway_id, enrolled_config.broker.host, enrolled_config.broker.port) == (
        gateway_id,
        "127.0.0.1",
        stack_doc["mqtts_port"],
    )
    assert enrolled_config.broker.read_password() == old_password
    assert enrolled_config.broker.tls is not None
    assert enrolled_config.broker.tls.ca_file.read_text() == Path(stack_doc["tls_ca_file"]).read_text()
    assert doc["qr_version"].endswith("-M")

    # A gateway agent run from the generated file connects over TLS and its reading is stored.
    first = _Gateway(out)
    gateways.append(first)
    wait_for(lambda: first.agent.publisher.connected, 15, what="the gateway to connect with the generated config")
    reading = first.measure()
    wait_for(lambda: _stored(db, reading), 20, what="the gateway's reading to be stored")

    # rotate: the live connection is dropped at once, the old password is refused, the new file works.
    started = time.monotonic()
    rotated = _varde("gateway", "rotate", gateway_id, "--out", str(out), "--qr", str(svg), "--json")
    assert rotated.returncode == 0, rotated.stderr
    wait_for(lambda: not first.agent.publisher.connected, 5, what="the old password's connection to be dropped")
    assert time.monotonic() - started < 10
    assert _connack(config, old_password).value in (0x86, 0x87)  # bad user name or password / not authorised
    time.sleep(2)
    assert not first.agent.publisher.connected, "the gateway came back with its old password"
    first.stop()
    gateways.remove(first)

    new_config = load_config(out)
    assert new_config.broker.read_password() == json.loads(rotated.stdout)["password"] != old_password
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not _connack(new_config, str(new_config.broker.read_password())).is_failure
    second = _Gateway(out)
    gateways.append(second)
    wait_for(lambda: second.agent.publisher.connected, 15, what="the gateway to connect with the rotated config")
    reading = second.measure()
    wait_for(lambda: _stored(db, reading), 20, what="a reading sent with the rotated password to be stored")

    # revoke: cut off within 5 s, and no way back in.
    started = time.monotonic()
    revoked = _varde("gateway", "revoke", gateway_id)
    assert revoked.returncode == 0, revoked.stderr
    wait_for(lambda: not second.agent.publisher.connected, 5, what="the revoked gateway to be cut off")
    assert time.monotonic() - started < 5 + 3  # the CLI process start is part of the wait
    assert _connack(new_config, str(new_config.broker.read_password())).is_failure
    refused = _varde("gateway", "rotate", gateway_id, "--out", str(tmp_path / "again.toml"))
    assert refused.returncode == 1 and "revoked" in refused.stderr
    assert not (tmp_path / "again.toml").exists()
