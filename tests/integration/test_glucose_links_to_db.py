"""Acceptance into PostgreSQL: one gateway's glucose meter with 500 stored records, read by the whole `Agent` over
the Python link and again (fresh gateway state, so it fetches everything anew) over the Bumble link: each first fetch
takes all 500, each reconnect only the 20 new ones, and the database holds the 520 readings once — the same ids
whichever link read them."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from device_simulators.bumble_air import BumbleAir
from device_simulators.link import Air, WallClock
from device_simulators.peripherals import GlucoseMeter
from edge_agent.agent import Agent
from edge_agent.config import EdgeConfig
from edge_agent.link import Radio
from edge_agent.links.bumble_link import BumbleRadio
from store.settings import Settings
from tests.stack_plugin import Gateway, Tenant, wait_for

pytestmark = pytest.mark.integration
METER = "A4:C1:38:00:00:05"
PASSKEY = "246810"
TZ = "Europe/Oslo"


def _config(tmp_path: Path, gateway: Gateway) -> EdgeConfig:
    return EdgeConfig.model_validate(
        {
            "gateway_id": gateway.gateway_id,
            "patient_timezone": TZ,
            "broker": {"host": gateway.host, "port": gateway.port, "password": gateway.password, "keepalive_s": 5},
            "outbox": {"path": str(tmp_path / "state" / "outbox.sqlite")},
            "publisher": {"batch_linger_ms": 20},
            "patient_screen": {"enabled": False},
            "devices": [{"address": METER, "type": "glucose_meter", "bond": True, "passkey": PASSKEY}],
        }
    )


def _fill(meter: GlucoseMeter, first: datetime, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        meter.measure(4.0 + (i * 7 % 90) / 10, at=first + timedelta(minutes=20 * i))


async def _until(check: Any, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _read_with_agent(
    tmp_path: Path, gateway: Gateway, link: str, first: datetime, new: int
) -> tuple[list[str], list[int]]:
    """Run the agent over `link` through both fetches; returns the glucose reading ids it accepted, and the RACP
    sequence numbers it asked from (None for "all")."""
    accepted: list[str] = []
    asked: list[int] = []

    async def main() -> None:
        air: Air = BumbleAir(WallClock()) if link == "bumble" else Air(WallClock())
        radio: Radio = BumbleRadio(air.dongle().open) if isinstance(air, BumbleAir) else air.radio()
        meter = GlucoseMeter(air, METER, passkey=PASSKEY, capacity=1000)
        agent = Agent(_config(tmp_path / link, gateway), radio_factory=lambda _ble: radio)
        accept = agent.accept

        def counting(readings: Any) -> Any:
            accepted.extend(str(r.id) for r in readings if r.kind == "glucose")
            return accept(readings)

        agent.accept = counting  # type: ignore[method-assign]

        async def scenario(a: Agent) -> None:
            await _until(lambda: a.devices is not None and a.devices.radio is not None, "scanning")
            assert a.devices is not None
            runtime = a.devices.devices[METER]
            _fill(meter, first, 500)
            await _until(lambda: runtime.state.last_sequence == 500 and not runtime.busy, "the first fetch")
            runtime.not_before = 0.0  # skip the quiet time the manager keeps after a transfer
            _fill(meter, first, new, start=500)
            await _until(lambda: runtime.state.last_sequence == 500 + new and not runtime.busy, "the second fetch")
            await _until(lambda: a.outbox.depth == 0, "the outbox to drain")
            asked.extend(q.min_sequence or 0 for q in meter.requests if q.opcode == 0x01)
            a.request_stop()

        assert await asyncio.wait_for(agent.run([scenario]), 180) == 0

    asyncio.run(main())
    return accepted, asked


def _stored(settings: Settings, ids: list[str]) -> tuple[int, int]:
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT id) FROM readings WHERE id = ANY(%s::uuid[])", (ids,)
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_500_glucose_records_over_either_link_are_the_same_520_rows(
    tmp_path: Path, make_tenant: Any, settings: Settings
) -> None:
    tenant: Tenant = make_tenant(protocol="general")
    gateway = tenant.gateways[0]
    now = datetime.now(ZoneInfo(TZ)).replace(tzinfo=None, microsecond=0, second=0)
    first = now - timedelta(minutes=20 * 530)

    python_ids, python_asked = _read_with_agent(tmp_path, gateway, "python", first, 20)
    assert python_asked == [0, 501] and len(python_ids) == len(set(python_ids)) == 520
    wait_for(lambda: _stored(settings, python_ids) == (520, 520), 60, 0.5, "520 readings in PostgreSQL")

    # The Bumble run's meter holds one record more: once that one is in the database, ingest has seen the rest.
    bumble_ids, bumble_asked = _read_with_agent(tmp_path, gateway, "bumble", first, 21)
    assert bumble_asked == [0, 501] and len(bumble_ids) == 521
    assert set(bumble_ids[:520]) == set(python_ids), "the same reading ids over both links"
    wait_for(lambda: _stored(settings, bumble_ids[520:]) == (1, 1), 60, 0.5, "the Bumble run's newest reading")
    assert _stored(settings, bumble_ids) == (521, 521), "the 520 read twice are stored once"
