"""Ingest under load through real faults: every acknowledged reading is stored exactly once (or dead-lettered)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from store.settings import Settings, varde_home
from tests.integration.load import Load
from tests.stack_plugin import Tenant, instance_logins, publish, publish_all, wait_for
from varde import stack
from vitals import DeviceRef, Envelope, Reading, readings_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_OXIMETER = DeviceRef(address="A4:C1:38:00:00:02", type="pulse_oximeter", model="PO-60")
_POOL_GAVE_UP = re.compile(r"db_write_failed stage=(?:judge|status) attempt=\d+ error=PoolTimeout")
"""The ingest worker's log line when its connection pool stopped waiting for the database with a message in hand."""


def _stored(settings: Settings, ids: set[uuid.UUID]) -> tuple[int, int]:
    """(rows, distinct ids) among `ids` in the readings table, read with a fresh connection."""
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT id) FROM readings WHERE id = ANY(%s)", (list(ids),)
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _dead(settings: Settings, gateway_ids: list[str]) -> int:
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(reading_count), 0) FROM rejected_messages WHERE gateway_id = ANY(%s)",
            (gateway_ids,),
        ).fetchone()
    return int(row[0]) if row else 0


def _settle_and_check(load: Load, settings: Settings, tenant: Tenant, label: str) -> None:
    counts = load.counts
    acked, published = counts.acked, counts.published
    gateway_ids = [g.gateway_id for g in tenant.gateways]

    def all_acked_stored() -> bool:
        return _stored(settings, acked)[1] == len(acked)

    wait_for(all_acked_stored, timeout=90, interval=0.5, what=f"{label}: every acknowledged reading stored")
    rows, distinct = _stored(settings, published)
    dead = _dead(settings, gateway_ids)
    print(
        f"\n{label}: published={len(published)} acked={len(acked)} stored={distinct} rows={rows} "
        f"dead_lettered={dead} refused_envelopes={counts.refused} unrouted_envelopes={counts.unrouted}"
    )
    assert rows == distinct, "a reading was stored twice"
    assert distinct + dead >= len(acked), "an acknowledged reading was lost"
    assert distinct <= len(published)
    assert dead == 0
    assert len(acked) > 1000, "the load was too small to mean anything"


@pytest.fixture
def loaded_tenant(make_tenant: Any, stack: Any) -> Tenant:
    tenant: Tenant = make_tenant(patients=4, protocol="general")
    return tenant


def test_ingest_killed_with_sigkill_mid_batch_loses_and_doubles_nothing(
    loaded_tenant: Tenant, settings: Settings
) -> None:
    home = varde_home()
    with Load(loaded_tenant.gateways, per_envelope=20, envelopes_per_s=40) as load:
        time.sleep(2.5)
        assert stack.kill_service(home, "ingest", signal.SIGKILL) is not None
        time.sleep(2.0)
        stack.start_service(home, "ingest")
        time.sleep(2.5)
    _settle_and_check(load, settings, loaded_tenant, "ingest SIGKILL")


def test_postgres_restarted_under_load_loses_and_doubles_nothing(loaded_tenant: Tenant, settings: Settings) -> None:
    home = varde_home()
    with Load(loaded_tenant.gateways, per_envelope=20, envelopes_per_s=40) as load:
        time.sleep(2.5)
        stack.restart_postgres(home)
        time.sleep(3.0)
    _settle_and_check(load, settings, loaded_tenant, "PostgreSQL restart")


def test_broker_restarted_under_load_loses_and_doubles_nothing(loaded_tenant: Tenant, settings: Settings) -> None:
    home = varde_home()
    with Load(loaded_tenant.gateways, per_envelope=20, envelopes_per_s=40) as load:
        time.sleep(2.5)
        stack.restart_broker(home)
        time.sleep(4.0)
    _settle_and_check(load, settings, loaded_tenant, "broker restart")


def test_the_same_envelopes_replayed_twice_are_stored_once(loaded_tenant: Tenant, settings: Settings) -> None:
    with Load(loaded_tenant.gateways, per_envelope=20, envelopes_per_s=40, keep_envelopes=True) as load:
        time.sleep(3.0)
    _settle_and_check(load, settings, loaded_tenant, "first pass")
    by_gateway: dict[str, list[bytes]] = {}
    for payload in load.envelopes:
        by_gateway.setdefault(json.loads(payload)["gateway_id"], []).append(payload)
    # Each gateway sends its envelopes twice more over one connection, then a new reading as a barrier: ingest takes
    # a gateway's messages in order, so once the barrier is stored every replay before it has been judged.
    barriers: set[uuid.UUID] = set()
    for gateway in loaded_tenant.gateways:
        barrier = _fresh_envelope(gateway.gateway_id)
        barriers.add(barrier[1])
        envelopes = [*by_gateway.get(gateway.gateway_id, []) * 2, barrier[0]]
        assert all(code < 128 for code in publish_all(gateway, readings_topic(gateway.gateway_id), envelopes))
    wait_for(lambda: _stored(settings, barriers)[1] == len(barriers), timeout=60, what="the barrier readings stored")
    rows, distinct = _stored(settings, load.counts.published)
    print(f"\nreplayed twice: envelopes={len(load.envelopes)} rows={rows} distinct={distinct}")
    assert rows == distinct == len(load.counts.published)


def _fresh_envelope(gateway_id: str) -> tuple[bytes, uuid.UUID]:
    now = datetime.now(UTC).replace(microsecond=0)
    reading = Reading(id=uuid.uuid4(), kind="spo2", value=97.0, unit="%", measured_at=now, device=_OXIMETER)
    return Envelope(gateway_id=gateway_id, sent_at=now, readings=(reading,)).to_json(), reading.id


def test_two_workers_split_one_stream_with_nothing_lost_or_doubled(loaded_tenant: Tenant, settings: Settings) -> None:
    home = varde_home()
    env = {
        **os.environ,
        "VARDE_HOME": str(home),
        "VARDE_INGEST_WORKER_ID": "second-worker",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    log = open(home / "logs" / "ingest-second.log", "ab")  # noqa: SIM115 - handed to the child
    with instance_logins(ingest=["second-worker"]):
        second = subprocess.Popen(
            [sys.executable, "-m", "varde", "ingest", "run", "--metrics-port", "0"],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            time.sleep(2.0)
            with Load(loaded_tenant.gateways, per_envelope=20, envelopes_per_s=40) as load:
                time.sleep(5.0)
            _settle_and_check(load, settings, loaded_tenant, "two workers")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
            log.close()
    text = (home / "logs" / "ingest-second.log").read_text()
    assert "ingest_started worker=second-worker" in text


def test_a_status_message_during_a_database_outage_is_stored_when_the_database_returns(
    make_tenant: Any, settings: Settings, api_url: str
) -> None:
    from vitals import status_topic

    tenant: Tenant = make_tenant(protocol="general")
    gateway = tenant.gateways[0]
    home = varde_home()
    state = stack.load_state(stack.StackPaths(home))
    worker = state["services"]["ingest"]["pid"]
    ingest_log = Path(state["services"]["ingest"]["log"])
    logged_before = ingest_log.stat().st_size
    version = f"outage-{uuid.uuid4().hex[:8]}"
    stack.stop_postgres(home)
    try:
        payload = f'{{"state": "online", "agent_version": "{version}", "outbox_depth": 3}}'.encode()
        assert publish(gateway, status_topic(gateway.gateway_id), payload) < 128
        # The worker meets the outage with the status in hand for longer than its pool waits for a connection
        # (30 s): a failover-length outage, not a blip the pool hides. The database stays away until the worker
        # logs that its pool gave up (a fixed 35 s sleep did not know whether it had, on a loaded machine).
        wait_for(
            lambda: _POOL_GAVE_UP.search(ingest_log.read_bytes()[logged_before:].decode(errors="replace")),
            timeout=120,
            interval=0.5,
            what="the ingest worker's pool to give up waiting for the stopped database",
        )
    finally:
        stack.start_postgres(home)
    returned = time.monotonic()

    # The API's pool lost its connections in the same outage: it serves again within seconds of the database's
    # return (psycopg_pool's uncapped back-off left it without a connection ~30 s longer: every sign-in a 500).
    response = httpx.post(
        f"{api_url}/api/v1/auth/token",
        data={"username": tenant.nurse, "password": tenant.nurse_password},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert time.monotonic() - returned < 12, f"the API served {time.monotonic() - returned:.0f} s after the return"

    def stored() -> bool:
        try:
            with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
                row = conn.execute("SELECT agent_version FROM gateways WHERE id = %s", (gateway.gateway_id,)).fetchone()
        except psycopg.OperationalError:
            return False
        return row == (version,)

    wait_for(stored, timeout=60, interval=0.5, what="the status stored after the outage")
    assert stack.pid_alive(worker), "the ingest worker ended on the outage"
    assert stack.load_state(stack.StackPaths(home))["services"]["ingest"]["pid"] == worker
