"""The plain-PostgreSQL hourly rollup (`readings_hourly`, migration 0225) holds, for every patient, kind and UTC
hour, the min, max, sum and count of the readings stored: whichever statement wrote them (ingest's COPY, its
staging insert, a plain INSERT), and after readings are updated or deleted. The drift checker that says so must
report an hour the rollup gets wrong."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ingest_service.writer import write_batch
from store.readings import ReadingRow
from store.trends import hourly_drift, trend_rows

pytestmark = pytest.mark.integration

_START = datetime(2026, 3, 1, tzinfo=UTC)


def _rows(patient_id: uuid.UUID, gateway_id: str, kind: str, minutes: list[int], values: list[float]) -> list[Any]:
    return [
        ReadingRow(
            uuid.uuid4(),
            patient_id,
            gateway_id,
            kind,
            v,
            _START + timedelta(minutes=m, seconds=7),
            _START + timedelta(minutes=m, seconds=9),
            "A4:C1:38:00:00:01",
            "pulse_oximeter",
            "PO-60",
            None,
            [],
        )
        for m, v in zip(minutes, values, strict=True)
    ]


def _hours(db: psycopg.Connection[Any], patient_id: uuid.UUID) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT kind, bucket, min_value, max_value, sum_value, n FROM readings_hourly WHERE patient_id = %s "
        "ORDER BY kind, bucket",
        (patient_id,),
    ).fetchall()


def _window() -> tuple[datetime, datetime]:
    return _START - timedelta(days=1), _START + timedelta(days=2)


def test_rollup_matches_the_readings_through_copy_staging_insert_update_and_delete(
    make_tenant: Any, settings: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(patients=2)
    (p1, p2), gw = tenant.patients, tenant.gateways
    first = _rows(p1, gw[0].gateway_id, "spo2", [0, 10, 59, 60, 61, 200], [95.0, 91.5, 97.0, 88.0, 99.0, 93.0])
    other = _rows(p2, gw[1].gateway_id, "pulse_rate", [5, 65], [72.0, 130.0])
    with psycopg.connect(settings.require_database_url()) as conn:
        write_batch(conn, first + other, [], None)  # the COPY path
        # a redelivery with one new reading in an hour already rolled up: the staging path
        again = _rows(p1, gw[0].gateway_id, "spo2", [30], [85.0])
        write_batch(conn, [*first[:2], *again], [], None)
    start, end = _window()
    assert hourly_drift(db, [p1, p2], start, end) == []
    assert _hours(db, p1) == [
        ("spo2", _START, 85.0, 97.0, 95.0 + 91.5 + 97.0 + 85.0, 4),
        ("spo2", _START + timedelta(hours=1), 88.0, 99.0, 187.0, 2),
        ("spo2", _START + timedelta(hours=3), 93.0, 93.0, 93.0, 1),
    ]

    db.execute(
        "INSERT INTO readings (id, patient_id, gateway_id, kind, value, measured_at) "
        "VALUES (%s, %s, %s, 'spo2', 80, %s)",
        (uuid.uuid4(), p1, gw[0].gateway_id, _START + timedelta(hours=5)),
    )
    db.execute("UPDATE readings SET value = 100 WHERE id = %s", (first[2][0],))  # the hour's max changes
    db.execute(
        "UPDATE readings SET measured_at = measured_at + interval '2 hours' WHERE id = %s", (first[5][0],)
    )  # moves to another hour: the old hour empties
    db.execute("DELETE FROM readings WHERE id = %s", (first[3][0],))  # the hour's min goes
    db.execute("DELETE FROM readings WHERE patient_id = %s", (p2,))
    assert hourly_drift(db, [p1, p2], start, end) == []
    assert [(h[1], h[2], h[3], h[5]) for h in _hours(db, p1)] == [
        (_START, 85.0, 100.0, 4),
        (_START + timedelta(hours=1), 99.0, 99.0, 1),
        (_START + timedelta(hours=5), 80.0, 93.0, 2),
    ]
    assert _hours(db, p2) == []


def test_drift_checker_reports_an_hour_the_rollup_gets_wrong(
    make_tenant: Any, settings: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(patients=1)
    patient, gw = tenant.patients[0], tenant.gateways[0].gateway_id
    with psycopg.connect(settings.require_database_url()) as conn:
        write_batch(conn, _rows(patient, gw, "spo2", [0, 1, 70, 130], [95.0, 96.0, 90.0, 92.0]), [], None)
    start, end = _window()
    assert hourly_drift(db, [patient], start, end) == []

    db.execute("UPDATE readings_hourly SET n = n + 1 WHERE patient_id = %s AND bucket = %s", (patient, _START))
    db.execute(
        "UPDATE readings_hourly SET sum_value = sum_value + 0.5 WHERE patient_id = %s AND bucket = %s",
        (patient, _START + timedelta(hours=1)),
    )
    db.execute(
        "DELETE FROM readings_hourly WHERE patient_id = %s AND bucket = %s", (patient, _START + timedelta(hours=2))
    )
    db.execute(
        "INSERT INTO readings_hourly VALUES (%s, 'spo2', %s, 1, 1, 1, 1)", (patient, _START + timedelta(hours=9))
    )
    drift = hourly_drift(db, [patient], start, end)
    assert [(d.bucket - _START, d.readings, d.aggregate) for d in drift] == [
        (timedelta(0), (95.0, 96.0, 191.0, 2), (95.0, 96.0, 191.0, 3)),
        (timedelta(hours=1), (90.0, 90.0, 90.0, 1), (90.0, 90.0, 90.5, 1)),
        (timedelta(hours=2), (92.0, 92.0, 92.0, 1), None),
        (timedelta(hours=9), None, (1.0, 1.0, 1.0, 1)),
    ]


def test_trend_from_the_rollup_equals_the_trend_from_the_readings(
    make_tenant: Any, settings: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(patients=1)
    patient, gw = tenant.patients[0], tenant.gateways[0].gateway_id
    minutes = list(range(0, 3 * 24 * 60, 17))
    values = [90.0 + (m * 7919 % 100) / 10 for m in minutes]
    with psycopg.connect(settings.require_database_url()) as conn:
        write_batch(conn, _rows(patient, gw, "spo2", minutes, values), [], None)
    db.execute("UPDATE patients SET timezone = 'Europe/Oslo' WHERE id = %s", (patient,))
    start, end = _START + timedelta(minutes=23), _START + timedelta(days=3)
    for bucket in ("hour", "day"):
        raw = trend_rows(db, patient, "spo2", bucket, start, end, source="readings")
        rolled = trend_rows(db, patient, "spo2", bucket, start, end)
        assert rolled.source == "hourly_aggregate"
        assert [(r[0], r[1], r[3], r[4]) for r in rolled.rows] == [(r[0], r[1], r[3], r[4]) for r in raw.rows]
        assert [r[2] for r in rolled.rows] == pytest.approx([r[2] for r in raw.rows], rel=1e-12)
        assert sum(r[4] for r in raw.rows) == sum(1 for m in minutes if start <= _START + timedelta(minutes=m) < end)
