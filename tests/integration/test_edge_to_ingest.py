"""The gateway's promise checked all the way into the database: through a 30 s broker outage while devices keep
measuring, and through SIGKILL with 10 000 readings in the outbox, every reading is stored exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from device_simulators.home import AgentRunner
from edge_agent.agent import Agent
from edge_agent.config import EdgeConfig
from edge_agent.outbox import Outbox
from store.settings import Settings, varde_home
from tests.stack_plugin import Gateway, Tenant, wait_for
from varde import stack
from vitals import DeviceRef, Reading

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
OXIMETER = DeviceRef(address="A4:C1:38:00:00:02", type="pulse_oximeter", model="PO-60")


def _config(tmp_path: Path, gateway: Gateway) -> EdgeConfig:
    return EdgeConfig.model_validate(
        {
            "gateway_id": gateway.gateway_id,
            "patient_timezone": "Europe/Oslo",
            "broker": {"host": gateway.host, "port": gateway.port, "password": gateway.password, "keepalive_s": 5},
            "outbox": {"path": str(tmp_path / "state" / "outbox.sqlite")},
            "publisher": {"batch_linger_ms": 20, "status_interval_s": 5},
            "ble": {"enabled": False},
            "devices": [{"address": OXIMETER.address, "type": "pulse_oximeter", "model": "PO-60"}],
        }
    )


def _write_config(tmp_path: Path, gateway: Gateway) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(
        f'gateway_id = "{gateway.gateway_id}"\npatient_timezone = "Europe/Oslo"\n'
        f'[broker]\nhost = "{gateway.host}"\nport = {gateway.port}\npassword = "{gateway.password}"\n'
        f'keepalive_s = 5\n[outbox]\npath = "{tmp_path / "state" / "outbox.sqlite"}"\n'
        "[publisher]\nwindow = 1\nbatch_max_readings = 10\nstatus_interval_s = 5\n[ble]\nenabled = false\n"
        f'[[devices]]\naddress = "{OXIMETER.address}"\ntype = "pulse_oximeter"\n'
    )
    return path


def _reading(at: datetime, value: float = 96.0) -> Reading:
    return Reading(id=uuid.uuid4(), kind="spo2", value=value, unit="%", measured_at=at, device=OXIMETER)


def _stored(settings: Settings, ids: list[uuid.UUID]) -> tuple[int, int]:
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT id) FROM readings WHERE id = ANY(%s)", (ids,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_broker_down_30s_while_devices_measure_every_reading_stored_once(
    tmp_path: Path, make_tenant: Any, settings: Settings
) -> None:
    tenant: Tenant = make_tenant(protocol="general")
    gateway = tenant.gateways[0]
    accepted: list[uuid.UUID] = []
    stop_measuring = threading.Event()

    async def oximeter(agent: Agent) -> None:
        """A 5 Hz stream of spot checks, accepted into the outbox whatever the broker does."""
        while not stop_measuring.is_set():
            reading = _reading(
                datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1) + timedelta(milliseconds=len(accepted))
            )
            if agent.accept([reading]).added:
                accepted.append(reading.id)
            await asyncio.sleep(0.2)

    runner = AgentRunner()
    runner.start()
    agent = runner.add(Agent(_config(tmp_path, gateway), radio_factory=None), [oximeter])
    try:
        time.sleep(3)
        stack.stop_broker(varde_home())
        time.sleep(30)
        during_outage = len(accepted)
        stack.start_broker(varde_home())
        time.sleep(5)
        stop_measuring.set()
        wait_for(lambda: agent.outbox.depth == 0, timeout=60, what="the outbox to empty after the outage")
    finally:
        runner.stop_agent(agent)
    rows, distinct = wait_for(
        lambda: (r := _stored(settings, accepted))[1] == len(accepted) and r,
        timeout=60,
        interval=0.5,
        what="every accepted reading stored",
    )
    print(
        f"\nbroker down 30 s: accepted={len(accepted)} (before restart {during_outage}) stored={distinct} rows={rows}"
    )
    assert rows == distinct == len(accepted)
    assert during_outage > 150


def test_agent_sigkilled_with_10000_readings_in_outbox_every_reading_stored_once(
    tmp_path: Path, make_tenant: Any, settings: Settings
) -> None:
    tenant: Tenant = make_tenant(protocol="general")
    gateway = tenant.gateways[0]
    config = _write_config(tmp_path, gateway)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    readings = [_reading(start + timedelta(seconds=i), 90.0 + i % 10) for i in range(10_000)]
    outbox_path = tmp_path / "state" / "outbox.sqlite"
    with Outbox(outbox_path) as outbox:
        for i in range(0, len(readings), 1000):
            outbox.put(readings[i : i + 1000])
        assert outbox.depth == 10_000
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = tmp_path / "agent.log"
    ids = [r.id for r in readings]

    def spawn() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    first = spawn()
    wait_for(lambda: _stored(settings, ids)[1] > 0, timeout=30, interval=0.01, what="the replay to start")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    with Outbox(outbox_path) as outbox:
        left = outbox.depth
    second = spawn()
    try:
        rows, distinct = wait_for(
            lambda: (r := _stored(settings, ids))[1] == len(ids) and r,
            timeout=120,
            interval=0.5,
            what="all 10 000 readings stored",
        )
    finally:
        second.terminate()
        second.wait(15)
    print(f"\nSIGKILL during replay: left in outbox at kill={left} stored={distinct} rows={rows}")
    assert 0 < left < 10_000, "the kill should interrupt the replay"
    assert rows == distinct == 10_000
