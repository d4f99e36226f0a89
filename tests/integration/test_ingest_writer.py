"""The batch writer stores each reading once and hands the rules only what it stored: new readings by COPY, a batch
with readings stored before (redelivery, replay, an id twice in one batch) through the staging table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ingest_service.writer import StoredBatch, write_batch

pytestmark = pytest.mark.integration


def _rows(patient_id: uuid.UUID, gateway_id: str, values: list[float]) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC).replace(microsecond=0)
    return [
        (
            uuid.uuid4(),
            patient_id,
            gateway_id,
            "spo2",
            value,
            now - timedelta(minutes=len(values) - i),
            now,
            "A4:C1:38:00:00:01",
            "pulse_oximeter",
            "PO-60",
            None,
            ["irregular_pulse"] if i == 0 else [],
        )
        for i, value in enumerate(values)
    ]


class _Recorder:
    def __init__(self) -> None:
        self.batches: list[StoredBatch] = []

    def __call__(self, conn: Any, stored: StoredBatch) -> list[uuid.UUID]:
        self.batches.append(stored)
        return []


def _stored(db: psycopg.Connection[Any], gateway_id: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT id, value, measured_at, device_model, flags FROM readings WHERE gateway_id = %s ORDER BY measured_at",
        (gateway_id,),
    ).fetchall()


def test_new_readings_are_stored_with_every_column_and_all_go_to_the_rules(
    make_tenant: Any, settings: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant()
    patient_id, gateway_id = tenant.patients[0], tenant.gateways[0].gateway_id
    rows = _rows(patient_id, gateway_id, [95.0, 96.0, 97.0])
    rules = _Recorder()
    with psycopg.connect(settings.require_database_url()) as conn:
        result = write_batch(conn, rows, [], rules)
    assert (result.staged, result.stored, result.duplicates) == (3, 3, 0)
    assert _stored(db, gateway_id) == [(r[0], r[4], r[5], "PO-60", r[11]) for r in rows]
    assert [list(b.ids) for b in rules.batches] == [[r[0] for r in rows]]
    assert list(rules.batches[0].values) == [95.0, 96.0, 97.0]


def test_a_batch_mixing_stored_and_new_readings_stores_and_evaluates_only_the_new(
    make_tenant: Any, settings: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant()
    patient_id, gateway_id = tenant.patients[0], tenant.gateways[0].gateway_id
    first = _rows(patient_id, gateway_id, [95.0, 96.0])
    new = _rows(patient_id, gateway_id, [91.0])
    rules = _Recorder()
    with psycopg.connect(settings.require_database_url()) as conn:
        write_batch(conn, first, [], None)
        # redelivered envelope + a new reading, and the new reading's id twice (an envelope delivered twice in one
        # batch): the COPY fails on the key, the staging path stores the one new reading once
        result = write_batch(conn, [*first, *new, new[0]], [], rules)
    assert (result.staged, result.stored, result.duplicates) == (4, 1, 3)
    assert sorted(r[0] for r in _stored(db, gateway_id)) == sorted(r[0] for r in [*first, *new])
    assert [list(b.ids) for b in rules.batches] == [[new[0][0]]]
    assert list(rules.batches[0].values) == [91.0]


def test_a_fully_replayed_batch_stores_nothing_and_wakes_no_rules(
    make_tenant: Any, settings: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant()
    patient_id, gateway_id = tenant.patients[0], tenant.gateways[0].gateway_id
    rows = _rows(patient_id, gateway_id, [95.0, 96.0])
    rules = _Recorder()
    with psycopg.connect(settings.require_database_url()) as conn:
        write_batch(conn, rows, [], None)
        result = write_batch(conn, rows, [], rules)
    assert (result.stored, result.duplicates) == (0, 2)
    assert rules.batches == []
    assert len(_stored(db, gateway_id)) == 2
