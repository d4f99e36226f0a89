"""Poison-message containment in the worker itself, against real PostgreSQL: a message whose judging or storing
raises is dead-lettered and the rest stored; a message that kills the worker outright is recognised when it is
redelivered and dead-lettered as `poison_message` — one message never stops ingest for all."""

from __future__ import annotations

import contextlib
import json
import socket as socket_mod
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import ingest_service.worker as worker_mod
from ingest_service.guard import message_key
from ingest_service.worker import Delivery, IngestWorker, WorkerConfig
from store.settings import Settings
from tests.stack_plugin import Tenant, wait_for
from vitals import readings_topic

pytestmark = pytest.mark.integration


class _WorkerDeath(BaseException):
    """Stands in for what no `except Exception` catches: the process killed in the middle of a message."""


def _envelope(gateway_id: str, marker: str | None = None) -> tuple[bytes, str]:
    reading_id = str(uuid.uuid4())
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    reading = {
        "id": reading_id,
        "kind": "body_weight",
        "value": 80.0,
        "unit": "kg",
        "measured_at": now,
        "device": {"address": "C4:7C:8D:00:00:07", "type": "weight_scale", "model": marker or "UC-352BLE"},
    }
    doc = {"schema": "varde.readings/1", "gateway_id": gateway_id, "sent_at": now, "readings": [reading]}
    return json.dumps(doc).encode(), reading_id


def _delivery(mid: int, gateway_id: str, payload: bytes, *, dup: bool) -> Delivery:
    return Delivery(mid, 1, readings_topic(gateway_id), payload, datetime.now(UTC), 0, dup)


@pytest.fixture
def worker(settings: Settings) -> Iterator[Any]:
    made: list[IngestWorker] = []

    def make() -> IngestWorker:
        w = IngestWorker(settings, WorkerConfig(worker_id=f"guard-{uuid.uuid4().hex[:6]}"), rules=None)
        made.append(w)
        return w

    yield make
    for w in made:
        w._registry.close()
        w._pool.close()


def _stored(db: psycopg.Connection[Any], reading_id: str) -> int:
    row = db.execute("SELECT count(*) FROM readings WHERE id = %s", (reading_id,)).fetchone()
    return int(row[0]) if row else 0


def _reasons(db: psycopg.Connection[Any], gateway_id: str) -> list[str]:
    rows = db.execute("SELECT reason FROM rejected_messages WHERE gateway_id = %s ORDER BY id", (gateway_id,))
    return [str(r[0]) for r in rows.fetchall()]


def test_a_message_whose_judging_raises_is_dead_lettered_and_its_batch_stored(
    make_tenant: Any, worker: Any, db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant: Tenant = make_tenant(patients=2, protocol="general")
    bad_gw, good_gw = (g.gateway_id for g in tenant.gateways)
    poison, _ = _envelope(bad_gw, marker="POISON")
    good, good_id = _envelope(good_gw)
    real_judge = worker_mod.judge

    def judge(topic: str, gateway_id: str, payload: bytes, *args: Any, **kwargs: Any) -> Any:
        if b"POISON" in payload:
            raise RecursionError("maximum recursion depth exceeded")
        return real_judge(topic, gateway_id, payload, *args, **kwargs)

    monkeypatch.setattr(worker_mod, "judge", judge)
    w = worker()
    w._handle([_delivery(1, bad_gw, poison, dup=False), _delivery(2, good_gw, good, dup=False)])
    assert _stored(db, good_id) == 1
    assert _reasons(db, bad_gw) == ["processing_error"]


def test_a_message_failing_in_the_database_is_split_out_and_dead_lettered(
    make_tenant: Any, settings: Settings, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(patients=2, protocol="general")
    bad_gw, good_gw = (g.gateway_id for g in tenant.gateways)
    bad, bad_id = _envelope(bad_gw)
    good, good_id = _envelope(good_gw)

    def rules(conn: Any, stored: Any) -> list[uuid.UUID]:
        if uuid.UUID(bad_id) in set(stored.ids):
            conn.execute("SELECT 1/0")
        return []

    w = IngestWorker(settings, WorkerConfig(worker_id=f"guard-{uuid.uuid4().hex[:6]}"), rules=rules)
    try:
        w._handle([_delivery(1, bad_gw, bad, dup=False), _delivery(2, good_gw, good, dup=False)])
    finally:
        w._registry.close()
        w._pool.close()
    assert (_stored(db, good_id), _stored(db, bad_id)) == (1, 0)
    assert _reasons(db, bad_gw) == ["processing_error"]


def test_a_message_that_kills_the_worker_is_dead_lettered_on_redelivery_and_its_neighbours_stored(
    make_tenant: Any, worker: Any, db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant: Tenant = make_tenant(patients=2, protocol="general")
    bad_gw, good_gw = (g.gateway_id for g in tenant.gateways)
    poison, _ = _envelope(bad_gw, marker="KILLER")
    good, good_id = _envelope(good_gw)
    real_judge = worker_mod.judge
    deaths = 0

    def judge(topic: str, gateway_id: str, payload: bytes, *args: Any, **kwargs: Any) -> Any:
        nonlocal deaths
        if b"KILLER" in payload:
            deaths += 1
            raise _WorkerDeath()
        return real_judge(topic, gateway_id, payload, *args, **kwargs)

    monkeypatch.setattr(worker_mod, "judge", judge)

    def deliver(dup: bool) -> None:
        # The poison message first, so the batch dies before its neighbour is stored.
        worker()._handle([_delivery(1, bad_gw, poison, dup=dup), _delivery(2, good_gw, good, dup=dup)])

    with pytest.raises(_WorkerDeath):
        deliver(dup=False)  # first delivery: the worker dies; the broker redelivers to the restarted worker
    with pytest.raises(_WorkerDeath):
        deliver(dup=True)  # redelivered in a batch: marked, dies again
    with pytest.raises(_WorkerDeath):
        deliver(dup=True)  # each suspect alone: the poison message kills the worker by itself
    deliver(dup=True)  # recognised: dead-lettered unread and acknowledged; the neighbour processed on its own
    assert deaths == 3
    assert _reasons(db, bad_gw) == ["poison_message"]
    assert _stored(db, good_id) == 1
    deliver(dup=True)  # a further redelivery (the acknowledgement lost) changes nothing
    assert deaths == 3 and _reasons(db, bad_gw) == ["poison_message"] and _stored(db, good_id) == 1
    marks = db.execute(
        "SELECT solo FROM ingest_suspects WHERE key = ANY(%s)",
        ([message_key(readings_topic(g), p) for g, p in ((bad_gw, poison), (good_gw, good))],),
    ).fetchall()
    assert marks == [(True,)], "only the poison message stays marked"


def test_a_worker_killing_message_is_dead_lettered_after_redeliveries_through_a_real_broker(
    make_tenant: Any, settings: Settings, db: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """The guard relies on the broker's DUP flag on redelivery to a resumed session (Mosquitto, shared subscription,
    persistent session): a private Mosquitto, real workers restarted under one worker id, the killer published once."""
    tenant: Tenant = make_tenant(patients=2, protocol="general")
    bad_gw, good_gw = (g.gateway_id for g in tenant.gateways)
    poison, _ = _envelope(bad_gw, marker="KILLER")
    good, good_id = _envelope(good_gw)
    with socket_mod.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "data").mkdir()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {tmp_path}/data/\n"
    )
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    real_judge = worker_mod.judge
    deaths: list[int] = []

    def judge(topic: str, gateway_id: str, payload: bytes, *args: Any, **kwargs: Any) -> Any:
        if b"KILLER" in payload:
            deaths.append(1)
            raise _WorkerDeath()
        return real_judge(topic, gateway_id, payload, *args, **kwargs)

    monkeypatch.setattr(worker_mod, "judge", judge)
    private = settings.model_copy(
        update={"mqtt_host": "127.0.0.1", "mqtt_port": port, "mqtt_ingest_username": None, "mqtt_tls_ca_file": None}
    )
    worker_id = f"guard-{uuid.uuid4().hex[:6]}"

    def run_worker() -> IngestWorker:
        w = IngestWorker(private, WorkerConfig(worker_id=worker_id), rules=None)
        threading.Thread(target=lambda: _run_until_death(w), daemon=True).start()
        # It may connect, take its redelivered messages and die before this looks: wait for the connection made.
        wait_for(lambda: w._generation >= 1, 15, what="the worker connected")
        return w

    try:
        wait_for(lambda: _accepts(port), 10, what="the private broker")
        first = run_worker()
        publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        publisher.connect("127.0.0.1", port)
        publisher.loop_start()
        time.sleep(0.3)  # the worker's subscription is in place
        publisher.publish(readings_topic(bad_gw), poison, qos=1).wait_for_publish(10)
        publisher.publish(readings_topic(good_gw), good, qos=1).wait_for_publish(10)
        wait_for(lambda: not first.health.mqtt_connected, 15, what="the first death")
        for _ in range(4):
            w = run_worker()
            wait_for(
                lambda w=w: w._stopping.is_set() or not w.health.mqtt_connected or _reasons(db, bad_gw),
                20,
                what="a death or the poison letter",
            )
            if _reasons(db, bad_gw):
                break
        wait_for(lambda: _stored(db, good_id) == 1, 15, what="the neighbour stored")
        assert _reasons(db, bad_gw) == ["poison_message"]
        assert 2 <= len(deaths) <= 3, deaths
        w.stop()
        publisher.disconnect()
        publisher.loop_stop()
    finally:
        broker.terminate()
        broker.wait(10)


def _accepts(port: int) -> bool:
    with socket_mod.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _run_until_death(w: IngestWorker) -> None:
    with contextlib.suppress(_WorkerDeath):
        w.run()
