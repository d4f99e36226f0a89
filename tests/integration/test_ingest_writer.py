"""The batch writer stores each reading once and hands the rules only what it stored: new readings by COPY, a batch
with readings stored before (redelivery, replay, an id twice in one batch) through the staging table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ingest_service.writer import StoredBatch, write_batch
from store.readings import ReadingRow

pytestmark = pytest.mark.integration


def _rows(patient_id: uuid.UUID, gateway_id: str, values: list[float]) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC).replace(microsecond=0)
    return [
        ReadingRow(
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


def _letters(db: psycopg.Connection[Any], gateway_id: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT reason, reading_id, detail FROM rejected_messages WHERE gateway_id = %s ORDER BY id", (gateway_id,)
    ).fetchall()


def test_a_stored_id_resent_with_another_time_stays_one_reading_and_the_resend_is_dead_lettered(
    make_tenant: Any, settings: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant()
    patient_id, gateway_id = tenant.patients[0], tenant.gateways[0].gateway_id
    first = _rows(patient_id, gateway_id, [95.0, 96.0])
    # A later envelope: the first reading again with its time moved by the device's clock (in another year, so
    # another partition), the second reading again unchanged, and one new reading.
    moved = first[0]._replace(measured_at=first[0].measured_at - timedelta(days=400))
    new = _rows(patient_id, gateway_id, [97.0])
    rules = _Recorder()
    with psycopg.connect(settings.require_database_url()) as conn:
        write_batch(conn, first, [], None)
        result = write_batch(conn, [moved, first[1], *new], [], rules)
    assert (result.stored, result.dead_letter_rows) == (1, 1)
    assert _stored(db, gateway_id) == [(r[0], r[4], r[5], "PO-60", r[11]) for r in [*first, *new]]
    [(reason, reading_id, detail)] = _letters(db, gateway_id)
    assert (reason, reading_id) == ("id_conflict", first[0].id)
    assert first[0].measured_at.isoformat() in detail and moved.measured_at.isoformat() in detail
    assert [list(b.ids) for b in rules.batches] == [[new[0][0]]]


def test_an_id_twice_in_one_new_batch_with_two_times_is_stored_once(
    make_tenant: Any, settings: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant()
    patient_id, gateway_id = tenant.patients[0], tenant.gateways[0].gateway_id
    [row] = _rows(patient_id, gateway_id, [95.0])
    later = row._replace(measured_at=row.measured_at + timedelta(seconds=30))
    with psycopg.connect(settings.require_database_url()) as conn:
        result = write_batch(conn, [row, later, row], [], None)
        again = write_batch(conn, [later], [], None)
    assert (result.stored, result.dead_letter_rows, again.stored, again.dead_letter_rows) == (1, 1, 0, 0)
    assert [r[2] for r in _stored(db, gateway_id)] == [row[5]]
    assert [r[0] for r in _letters(db, gateway_id)] == ["id_conflict"]
