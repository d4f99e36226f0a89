"""Poison-message containment in the worker itself, against real PostgreSQL: a message whose judging or storing
raises is dead-lettered and the rest stored; a message that kills the worker outright is recognised when it is
redelivered and dead-lettered as `poison_message` — one message never stops ingest for all."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

import ingest_service.worker as worker_mod
from ingest_service.guard import message_key
from ingest_service.worker import Delivery, IngestWorker, WorkerConfig
from store.settings import Settings
from tests.integration.conftest import Tenant
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

    def judge(topic: str, payload: bytes, *args: Any, **kwargs: Any) -> Any:
        if b"POISON" in payload:
            raise RecursionError("maximum recursion depth exceeded")
        return real_judge(topic, payload, *args, **kwargs)

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

    def judge(topic: str, payload: bytes, *args: Any, **kwargs: Any) -> Any:
        nonlocal deaths
        if b"KILLER" in payload:
            deaths += 1
            raise _WorkerDeath()
        return real_judge(topic, payload, *args, **kwargs)

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
