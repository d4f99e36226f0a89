"""TLS to the broker: the gateway verifies the broker against the configured CA and delivers over it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_fixtures import Broker, make_config, make_readings, wait_until

from edge_agent.agent import Agent
from edge_agent.config import BrokerConfig, TlsConfig

pytestmark = pytest.mark.integration


def _openssl(*args: str) -> None:
    subprocess.run(["/usr/bin/openssl", *args], check=True, capture_output=True, timeout=60)


def _make_ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.pem"))  # fmt: skip


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Broker, Path, Path]]:
    d = tmp_path / "pki"
    d.mkdir()
    _make_ca(d, "test-ca")
    _make_ca(d, "other-ca")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"))  # fmt: skip
    _openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "test-ca.pem"),
             "-CAkey", str(d / "test-ca.key"), "-CAcreateserial", "-days", "2",
             "-extfile", str(d / "ext.cnf"), "-out", str(d / "server.pem"))  # fmt: skip
    extra = f"allow_anonymous true\ncertfile {d / 'server.pem'}\nkeyfile {d / 'server.key'}"
    broker = Broker(tmp_path / "tls-broker", extra_conf=extra)
    broker.start()
    try:
        yield broker, d / "test-ca.pem", d / "other-ca.pem"
    finally:
        broker.stop()


def _agent(tmp_path: Path, broker: Broker, ca: Path) -> Agent:
    # No subscriber here: a PUBACK "no matching subscribers" counts as acknowledged for this check.
    base = make_config(tmp_path, broker.port, keep_when_no_subscribers=False)
    tls = BrokerConfig(host="127.0.0.1", port=broker.port, keepalive_s=10, tls=TlsConfig(ca_file=ca))
    return Agent(base.model_copy(update={"broker": tls}), radio_factory=None)


def test_readings_are_delivered_over_verified_tls(tmp_path: Path, tls_broker: tuple[Broker, Path, Path]) -> None:
    broker, ca, _ = tls_broker
    agent = _agent(tmp_path, broker, ca)
    try:
        agent.accept(make_readings(20))
        agent.publisher.start()
        assert wait_until(lambda: agent.publisher.connected, 15)
        assert wait_until(lambda: agent.outbox.depth == 0, 10)
        assert agent.publisher.stats.readings_acked == 20
    finally:
        agent.publisher.stop()
        agent.outbox.close()
        agent.plans.close()


def test_broker_with_untrusted_certificate_is_refused(tmp_path: Path, tls_broker: tuple[Broker, Path, Path]) -> None:
    broker, _, other_ca = tls_broker
    agent = _agent(tmp_path, broker, other_ca)
    try:
        agent.accept(make_readings(5))
        agent.publisher.start()
        assert not wait_until(lambda: agent.publisher.connected, 3)
        assert agent.publisher.stats.readings_published == 0
        assert agent.outbox.depth == 5
    finally:
        agent.publisher.stop()
        agent.outbox.close()
        agent.plans.close()
