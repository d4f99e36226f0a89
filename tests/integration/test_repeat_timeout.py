"""`VARDE_REPEAT_TIMEOUT_MINUTES` decides how long a single yellow reading waits for its repeat (0: not at all): read
into the settings ingest starts with, and handed to its rules hook (`rules_engine.runtime.rules_hook`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ingest_service.writer import write_batch
from rules_engine.runtime import rules_hook
from store.readings import ReadingRow
from store.settings import Settings, get_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def timeout_setting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def set_to(minutes: int) -> None:
        monkeypatch.setenv("VARDE_REPEAT_TIMEOUT_MINUTES", str(minutes))
        get_settings.cache_clear()

    yield set_to
    monkeypatch.delenv("VARDE_REPEAT_TIMEOUT_MINUTES")
    get_settings.cache_clear()


def _spo2(patient_id: uuid.UUID, gateway_id: str, value: float) -> ReadingRow:
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


@pytest.mark.parametrize(("minutes", "waits"), [(45, True), (0, False)])
def test_repeat_timeout_setting_sets_the_wait_of_a_single_yellow_reading(
    minutes: int, waits: bool, timeout_setting: Any, make_tenant: Any, settings: Any, db: psycopg.Connection[Any]
) -> None:
    timeout_setting(minutes)
    tenant = make_tenant(protocol="general")
    patient_id, gateway_id = tenant.patients[0], tenant.gateways[0].gateway_id
    with psycopg.connect(settings.require_database_url()) as conn:
        write_batch(conn, [_spo2(patient_id, gateway_id, 93.0)], [], rules_hook(Settings()))
    requests = db.execute(
        "SELECT state, due_at - measured_at FROM repeat_requests WHERE patient_id = %s", (patient_id,)
    ).fetchall()
    alarms = db.execute("SELECT rule FROM alarms WHERE patient_id = %s", (patient_id,)).fetchall()
    if waits:
        assert requests == [("requested", timedelta(minutes=minutes))] and alarms == []
    else:
        assert requests == [] and alarms == [("threshold.spo2.low",)]
