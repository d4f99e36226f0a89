"""Per-gateway credentials and the broker's ACL: refused connections and refused publishes keep every reading."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_fixtures import Broker, Collector, make_config, make_readings, wait_until

from edge_agent.agent import Agent
from edge_agent.config import BrokerConfig

pytestmark = pytest.mark.integration

ALLOWED, DENIED = "gw-test-0001", "gw-test-0002"


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[Broker]:
    workdir = tmp_path / "secured"
    workdir.mkdir()
    passwd, acl = workdir / "passwd", workdir / "acl"
    for i, (user, password) in enumerate([(ALLOWED, "right-pw"), (DENIED, "other-pw"), ("ingest", "ingest-pw")]):
        create = ["-c"] if i == 0 else []
        subprocess.run(["/usr/bin/mosquitto_passwd", "-b", *create, str(passwd), user, password], check=True)
    acl.write_text(
        "pattern write varde/v1/gw/%u/status\n"
        "pattern read varde/v1/gw/%u/plan\n"
        f"user {ALLOWED}\ntopic write varde/v1/gw/{ALLOWED}/readings\n"
        "user ingest\ntopic read varde/v1/gw/+/readings\ntopic read varde/v1/gw/+/status\n"
    )
    broker = Broker(workdir, extra_conf=f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _agent(tmp_path: Path, broker: Broker, gateway_id: str, password: str) -> Agent:
    base = make_config(tmp_path, broker.port)
    secret = tmp_path / f"{gateway_id}.pw"
    secret.write_text(password + "\n")
    auth = BrokerConfig(host="127.0.0.1", port=broker.port, keepalive_s=10, password_file=secret)
    return Agent(base.model_copy(update={"gateway_id": gateway_id, "broker": auth}), radio_factory=None)


def _close(agent: Agent) -> None:
    agent.publisher.stop()
    agent.outbox.close()
    agent.plans.close()


def test_gateway_with_its_credentials_delivers(tmp_path: Path, secured_broker: Broker) -> None:
    ingest = Collector(secured_broker.port, ALLOWED, "ingest-1", ("ingest", "ingest-pw"))
    agent = _agent(tmp_path, secured_broker, ALLOWED, "right-pw")
    try:
        agent.accept(make_readings(40))
        agent.publisher.start()
        assert wait_until(lambda: ingest.unique == 40, 15)
        assert wait_until(lambda: agent.outbox.depth == 0, 5)
    finally:
        _close(agent)
        ingest.close()


def test_wrong_password_never_connects_and_keeps_readings(tmp_path: Path, secured_broker: Broker) -> None:
    agent = _agent(tmp_path, secured_broker, ALLOWED, "wrong-pw")
    try:
        agent.accept(make_readings(10))
        agent.publisher.start()
        assert not wait_until(lambda: agent.publisher.connected, 3)
        assert agent.publisher.stats.connects == 0
        assert agent.outbox.depth == 10
    finally:
        _close(agent)


def test_publish_refused_by_acl_keeps_rows_for_retry(tmp_path: Path, secured_broker: Broker) -> None:
    ingest = Collector(secured_broker.port, DENIED, "ingest-2", ("ingest", "ingest-pw"))
    agent = _agent(tmp_path, secured_broker, DENIED, "other-pw")
    try:
        agent.accept(make_readings(25))
        agent.publisher.start()
        assert wait_until(lambda: agent.publisher.stats.envelopes_refused >= 1, 10)
        assert agent.publisher.stats.readings_acked == 0
        assert agent.outbox.depth == 25
        assert ingest.unique == 0
    finally:
        _close(agent)
        ingest.close()
