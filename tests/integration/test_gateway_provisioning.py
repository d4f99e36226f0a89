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
from tests.stack_plugin import wait_for
from vitals import DeviceRef, Reading
from vitals.provisioning import decode_payload

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
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=config.gateway_id, protocol=mqtt.MQTTv5)
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


def _enrol(directory: Path, payload: str) -> EdgeConfig:
    """`varde edge enrol` as the installer runs it, the code typed on standard input by the scanner."""
    config = directory / "varde-edge.toml"
    done = subprocess.run(
        [sys.executable, "-m", "varde", "edge", "enrol", "--config", str(config)],
        input=payload + "\n",
        cwd=_REPO,
        env={**os.environ, "PYTHONPATH": str(_REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    return load_config(config)


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
    # The QR code carries a one-time code, not the password; enrolling it at the API gives the same login, broker
    # and CA as the file, and the code cannot be used twice.
    assert doc["qr_version"].endswith("-M") and doc["enrolment_code_expires_at"]
    assert old_password not in json.dumps(decode_payload(doc["payload"]).__dict__)
    enrolled_config = _enrol(tmp_path / "enrolled", doc["payload"])
    assert (enrolled_config.gateway_id, enrolled_config.broker.host, enrolled_config.broker.port) == (
        gateway_id,
        "127.0.0.1",
        stack_doc["mqtts_port"],
    )
    assert enrolled_config.broker.read_password() == old_password
    assert enrolled_config.broker.tls is not None
    assert enrolled_config.broker.tls.ca_file.read_text() == Path(stack_doc["tls_ca_file"]).read_text()
    again = _varde("edge", "enrol", "--config", str(tmp_path / "again" / "gw.toml"), "--payload", doc["payload"])
    assert again.returncode == 2 and "already used or expired" in again.stderr, again.stderr

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
    rotated_doc = json.loads(rotated.stdout)
    assert new_config.broker.read_password() == rotated_doc["password"] != old_password
    assert _enrol(tmp_path / "re-enrolled", rotated_doc["payload"]).broker.read_password() == rotated_doc["password"]
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


def test_an_expired_wrong_or_revoked_gateways_code_releases_nothing(
    make_tenant: Any, settings: Settings, api_url: str, db: psycopg.Connection[Any]
) -> None:
    from datetime import timedelta

    from edge_agent.enrol import claim_password
    from store.gateway_enrolment import create_enrolment
    from varde.admin import revoke_gateway
    from vitals.provisioning import GatewayProvisioning, ProvisioningError

    gateway = make_tenant().gateways[0]

    def attempt(code: str) -> str:
        coded = GatewayProvisioning(
            gateway.gateway_id, "127.0.0.1", 8883, "", "Europe/Oslo", enrolment_code=code, api_url=api_url
        )
        return claim_password(coded)

    with psycopg.connect(settings.require_database_url()) as conn:
        expired, _ = create_enrolment(conn, gateway.gateway_id, gateway.password, timedelta(seconds=-1))
    with pytest.raises(ProvisioningError, match="already used or expired"):
        attempt(expired)
    with psycopg.connect(settings.require_database_url()) as conn:
        code, _ = create_enrolment(conn, gateway.gateway_id, gateway.password, timedelta(hours=1))
    with pytest.raises(ProvisioningError, match="already used or expired"):
        attempt(code[:-4] + "AAAA" if not code.endswith("AAAA") else code[:-4] + "BBBB")
    revoke_gateway(settings, gateway.gateway_id)
    with pytest.raises(ProvisioningError, match="already used or expired"):
        attempt(code)
    outcomes = db.execute(
        "SELECT outcome FROM audit_log WHERE action = 'gateway_enrol' AND resource = %s ORDER BY id",
        (f"gateways/{gateway.gateway_id}/enrol",),
    ).fetchall()
    assert [o for (o,) in outcomes] == ["denied", "denied", "denied"]


def test_a_code_releases_the_password_once_to_the_first_claimant(
    make_tenant: Any, settings: Settings, api_url: str
) -> None:
    from datetime import timedelta

    from edge_agent.enrol import claim_password
    from store.gateway_enrolment import create_enrolment
    from vitals.provisioning import GatewayProvisioning, ProvisioningError

    gateway = make_tenant().gateways[0]
    with psycopg.connect(settings.require_database_url()) as conn:
        code, _ = create_enrolment(conn, gateway.gateway_id, gateway.password, timedelta(hours=1))
        sealed = conn.execute(
            "SELECT sealed_password FROM gateway_enrolments WHERE gateway_id = %s", (gateway.gateway_id,)
        ).fetchone()
    assert sealed is not None and gateway.password.encode() not in bytes(sealed[0])
    coded = GatewayProvisioning(
        gateway.gateway_id, "127.0.0.1", 8883, "", "Europe/Oslo", enrolment_code=code.lower(), api_url=api_url
    )
    assert claim_password(coded) == gateway.password
    with pytest.raises(ProvisioningError, match="already used"):
        claim_password(coded)
    with psycopg.connect(settings.require_database_url()) as conn:
        row = conn.execute(
            "SELECT sealed_password, claimed_at IS NOT NULL, claimed_from FROM gateway_enrolments "
            "WHERE gateway_id = %s",
            (gateway.gateway_id,),
        ).fetchone()
    assert row == (None, True, "127.0.0.1")
