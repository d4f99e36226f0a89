"""sd_notify over a datagram socket, and the agent loop: sources feed `accept`, systemd hears READY/WATCHDOG."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_fixtures import Broker, Collector, make_config, make_readings, wait_until
from typer.testing import CliRunner

from edge_agent.agent import Agent
from edge_agent.cli import app
from edge_agent.systemd import notify, watchdog_period_s


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    try:
        yield sock
    finally:
        sock.close()


def _messages(sock: socket.socket) -> list[str]:
    sock.setblocking(False)
    out: list[str] = []
    while True:
        try:
            out.append(sock.recv(256).decode())
        except BlockingIOError:
            return out


def test_notify_sends_to_the_systemd_socket(notify_socket: socket.socket) -> None:
    assert notify("READY=1")
    assert notify_socket.recv(64) == b"READY=1"


def test_notify_without_systemd_is_a_quiet_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False


def test_watchdog_period_is_half_of_watchdog_sec_for_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_period_s() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_period_s() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_period_s() is None


@pytest.mark.integration
def test_agent_run_feeds_sources_pings_watchdog_and_stops(
    tmp_path: Path,
    broker: Broker,
    collector: Collector,
    notify_socket: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    agent = Agent(make_config(tmp_path, broker.port), radio_factory=None)
    readings = make_readings(30)

    async def oximeter(a: Agent) -> None:
        for r in readings:
            a.accept([r])
            await asyncio.sleep(0.02)
        while collector.unique < len(readings):
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.2)
        a.request_stop()

    async def bounded() -> int:
        return await asyncio.wait_for(agent.run([oximeter]), 30)

    assert asyncio.run(bounded()) == 0
    assert collector.unique == 30
    messages = _messages(notify_socket)
    assert messages[0] == "READY=1" and "WATCHDOG=1" in messages and messages[-1] == "STOPPING=1"
    assert wait_until(lambda: collector.last_status() == {"state": "offline"}, 5)


def test_check_config_command_reports_ok_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "good.toml"
    good.write_text('gateway_id = "gw-0001"\npatient_timezone = "Europe/Oslo"\n[broker]\nhost = "h"\n')
    result = runner.invoke(app, ["check-config", "--config", str(good)])
    assert result.exit_code == 0 and "gw-0001" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('gateway_id = "gw-0001"\npatient_timezone = "Europe/Oslo"\n[broker]\nport = 1\n')
    result = runner.invoke(app, ["check-config", "--config", str(bad)])
    assert result.exit_code == 2 and "broker.host: required key is missing" in result.output
