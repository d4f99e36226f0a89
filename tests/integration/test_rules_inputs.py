"""What the rules read inside the ingest transaction: the batch is never its own history, and the active plan's
home oxygen and SpO2 scale reach NEWS2 (through the writer ingest uses, on the real database)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ingest_service.writer import StoredBatch, write_batch
from rules_engine.runtime import evaluate_stored, history_params, load_history
from store.readings import ReadingRow
from store.rules_inputs import HISTORY_SQL

pytestmark = pytest.mark.integration


def _row(patient_id: uuid.UUID, gateway_id: str, kind: str, value: float, at: datetime) -> ReadingRow:
    device = ("A4:C1:38:00:00:01", "pulse_oximeter", None)
    return ReadingRow(uuid.uuid4(), patient_id, gateway_id, kind, value, at, at, *device, None, [])


def _alarms(db: psycopg.Connection[Any], patient_id: uuid.UUID) -> dict[str, tuple[Any, ...]]:
    rows = db.execute(
        "SELECT rule, severity, last_value, explanation_en FROM alarms WHERE patient_id = %s", (patient_id,)
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_a_batch_is_not_read_back_as_its_own_history(
    make_tenant: Any, settings: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(protocol="copd")
    patient_id, gateway_id = tenant.patients[0], tenant.gateways[0].gateway_id
    now = datetime.now(UTC).replace(microsecond=0)
    # Five readings in one batch and no history: the SpO2 baseline needs five readings *before* the latest, so it
    # must stay silent. Read back as history, the batch doubles to a ten-reading baseline and 89 % "drops" 6 points.
    values = [95.0, 95.0, 95.0, 95.0, 89.0]
    rows = [_row(patient_id, gateway_id, "spo2", v, now - timedelta(minutes=5 - i)) for i, v in enumerate(values)]
    seen: list[int] = []

    def rules(conn: psycopg.Connection[Any], stored: StoredBatch) -> list[uuid.UUID]:
        earliest = int(min(m.timestamp() for m in stored.measured_at))
        seen.append(len(conn.execute(HISTORY_SQL, history_params([patient_id], earliest, stored.ids)).fetchall()))
        return evaluate_stored(conn, stored)

    with psycopg.connect(settings.require_database_url()) as conn:
        write_batch(conn, rows, [], rules)
    assert seen == [0]
    assert "trend.spo2_baseline" not in _alarms(db, patient_id)


def test_history_read_by_binary_copy_is_the_query_s_rows(
    make_tenant: Any, settings: Any, db: psycopg.Connection[Any]
) -> None:
    """`load_history` reads the history query through binary COPY into numpy: the same rows as the query itself,
    with the patient rows, kinds, epoch seconds and values in place (two patients, several kinds, the batch left
    out)."""
    tenant = make_tenant(patients=2, protocol="heart_failure")
    now = datetime.now(UTC).replace(microsecond=700_000)  # a fraction: whole seconds floored, as the batch's
    rows = [
        _row(patient, gateway.gateway_id, kind, value + day, now - timedelta(days=day, minutes=n))
        for n, (patient, gateway) in enumerate(zip(tenant.patients, tenant.gateways, strict=True))
        for day in range(4)
        for kind, value in (("spo2", 93.0), ("pulse_rate", 71.0), ("body_weight", 80.4))
    ]
    with psycopg.connect(settings.require_database_url()) as conn:
        write_batch(conn, rows[:-2], [], None)
        batch_ids = [r[0] for r in rows[:2]]
        earliest = int(now.timestamp())
        expected = sorted(
            (int(r[0]) - 1, int(r[1]), int(r[2].timestamp()), float(r[3]))
            for r in conn.execute(HISTORY_SQL, history_params(tenant.patients, earliest, batch_ids)).fetchall()
        )
        history = load_history(conn, list(tenant.patients), earliest, batch_ids)
    got = sorted(
        zip(
            history.patient_row.tolist(),
            history.kind_idx.tolist(),
            history.measured_at.tolist(),
            history.value.tolist(),
            strict=True,
        )
    )
    assert len(expected) == 2 * 4 * 3 - 2 - 2
    assert got == expected
    assert {row for row, *_ in got} == {0, 1}


_FETCHED = (
    "SELECT (SELECT coalesce(sum(pg_stat_get_xact_tuples_fetched(x.indexrelid)), 0) FROM pg_inherits i "
    "JOIN pg_index x ON x.indrelid = i.inhrelid WHERE i.inhparent = 'readings'::regclass) "
    "+ (SELECT coalesce(sum(pg_stat_get_xact_tuples_fetched(i.inhrelid)), 0) FROM pg_inherits i "
    "WHERE i.inhparent = 'readings'::regclass)"
)
"""Rows the current transaction has fetched from the readings partitions: through an index scan (counted on the
index) or a bitmap heap scan (counted on the partition)."""


def test_history_of_a_patient_who_measures_every_minute_reads_only_its_limit(
    make_tenant: Any, settings: Any, db: psycopg.Connection[Any]
) -> None:
    """A patient on continuous oximetry: the history keeps the newest readings per kind and the scan stops there,
    newest first through the index, instead of reading and sorting the whole 14-day window (3 000 rows here)."""
    from rules_engine.evaluation import HISTORY_PER_KIND

    tenant = make_tenant(protocol="copd")
    patient_id, gateway_id = tenant.patients[0], tenant.gateways[0].gateway_id
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [_row(patient_id, gateway_id, "spo2", 95.0, now - timedelta(minutes=m)) for m in range(1, 3001)]
    with psycopg.connect(settings.require_database_url()) as conn:
        write_batch(conn, rows, [], None)
        conn.execute("ANALYZE readings")
        conn.commit()
        before = conn.execute(_FETCHED).fetchone()
        history = load_history(conn, [patient_id], int(now.timestamp()), [])
        after = conn.execute(_FETCHED).fetchone()
        setting = conn.execute("SHOW enable_bitmapscan").fetchone()
    assert len(history) == HISTORY_PER_KIND
    assert history.measured_at.min() == int((now - timedelta(minutes=HISTORY_PER_KIND)).timestamp())
    assert before is not None and after is not None
    read = int(after[0]) - int(before[0])
    assert 0 < read <= 2 * HISTORY_PER_KIND, f"the history read {read} rows for {HISTORY_PER_KIND} kept"
    assert setting == ("on",)  # the planner setting the history query needs ends with it


def _activate_plan(db: psycopg.Connection[Any], patient_id: uuid.UUID, **fields: Any) -> None:
    """An active plan written straight into the table (the rules read its NEWS2 fields there)."""
    from tests.integration.api.support import a_plan
    from vitals import PlanContent

    body = PlanContent.model_validate(a_plan(zones=[], **fields))
    db.execute(
        "INSERT INTO self_management_plans (patient_id, version, body, status, activated_at) "
        "VALUES (%s, 1, %s, 'active', now())",
        (patient_id, body.model_dump_json()),
    )


def test_home_oxygen_and_scale_2_from_the_active_plan_score_news2(
    make_tenant: Any, settings: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(patients=2, protocol="copd")
    on_oxygen, on_air = tenant.patients
    _activate_plan(db, on_oxygen, oxygen={"litres_per_minute": 2.0}, spo2_scale=2)
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [
        _row(patient, gateway.gateway_id, kind, value, now)
        for patient, gateway in zip(tenant.patients, tenant.gateways, strict=True)
        for kind, value in (("spo2", 97.0), ("pulse_rate", 72.0), ("resp_rate", 18.0))
    ]
    with psycopg.connect(settings.require_database_url()) as conn:
        write_batch(conn, rows, [], evaluate_stored)
    # RCP 2017: supplemental oxygen scores 2; on scale 2, SpO2 ≥ 97 % on oxygen scores 3.
    news2 = _alarms(db, on_oxygen)["news2"]
    assert news2[:2] == ("yellow", 5.0)
    assert "supplemental oxygen (2)" in news2[2] and "scale 2 97%" in news2[2]
    assert "news2" not in _alarms(db, on_air)
