"""Two ingest workers evaluating readings of the same patient at the same moment still leave one open alarm."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from ingest_service.writer import write_batch
from rules_engine.runtime import evaluate_stored
from store.readings import ReadingRow

pytestmark = pytest.mark.integration


def _row(patient_id: uuid.UUID, gateway_id: str, value: float) -> tuple[Any, ...]:
    now = datetime.now(UTC)
    return ReadingRow(
        uuid.uuid4(),
        patient_id,
        gateway_id,
        "spo2",
        value,
        now,
        now,
        "A4:C1:38:00:00:01",
        "pulse_oximeter",
        None,
        None,
        [],
    )


def test_concurrent_batches_for_one_patient_keep_one_open_alarm(
    make_tenant: Any, settings: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(protocol="copd")
    patient_id, gateway_id = tenant.patients[0], tenant.gateways[0].gateway_id
    rounds, workers = 8, 2
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def worker(values: list[float]) -> None:
        try:
            with psycopg.connect(settings.require_database_url()) as conn:
                for value in values:
                    barrier.wait(timeout=30)
                    write_batch(conn, [_row(patient_id, gateway_id, value)], [], evaluate_stored)
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=([80.0 + w + r * 0.1 for r in range(rounds)],)) for w in range(workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    alarms = db.execute(
        "SELECT rule, count, state FROM alarms WHERE patient_id = %s AND rule = 'threshold.spo2.low'",
        (patient_id,),
    ).fetchall()
    assert len(alarms) == 1
    assert alarms[0][1] == rounds * workers
    events = db.execute(
        "SELECT event, count(*) FROM alarm_events e JOIN alarms a ON a.id = e.alarm_id "
        "WHERE a.patient_id = %s AND a.rule = 'threshold.spo2.low' GROUP BY event ORDER BY event",
        (patient_id,),
    ).fetchall()
    assert dict(events) == {"opened": 1, "updated": rounds * workers - 1}
