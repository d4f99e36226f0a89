"""Personal limits end to end: after a run-in, the recompute job moves a patient's SpO2 limit, the threshold API
says which limits are personal, and the next alarm that arrives over MQTT is explained against the usual value."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from tests.integration.conftest import Gateway, Tenant, login, publish, wait_for
from vitals import readings_topic

pytestmark = pytest.mark.integration


def _publish_spo2(gateway: Gateway, value: float) -> None:
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    reading = {
        "id": str(uuid.uuid4()),
        "kind": "spo2",
        "value": value,
        "unit": "%",
        "measured_at": now,
        "device": {"address": "A4:C1:38:00:00:02", "type": "pulse_oximeter", "model": "PO-60"},
    }
    doc = {"schema": "varde.readings/1", "gateway_id": gateway.gateway_id, "sent_at": now, "readings": [reading]}
    assert publish(gateway, readings_topic(gateway.gateway_id), json.dumps(doc).encode()) == 0


def _stored_spo2(db: psycopg.Connection[Any], patient_id: uuid.UUID, value: float) -> bool:
    row = db.execute(
        "SELECT count(*) FROM readings WHERE patient_id = %s AND kind = 'spo2' AND value = %s "
        "AND measured_at > now() - interval '10 minutes'",
        (patient_id, value),
    ).fetchone()
    return bool(row and row[0])


def _alarm(db: psycopg.Connection[Any], patient_id: uuid.UUID) -> tuple[Any, ...] | None:
    return db.execute(
        "SELECT severity, limit_value, explanation_nb, explanation_en, details FROM alarms "
        "WHERE patient_id = %s AND rule = 'threshold.spo2.low'",
        (patient_id,),
    ).fetchone()


def test_personal_limit_moves_after_the_run_in_and_the_alarm_says_so(
    make_tenant: Any, db: psycopg.Connection[Any], api_url: str
) -> None:
    tenant: Tenant = make_tenant(protocol="heart_failure")
    patient, gateway = tenant.patients[0], tenant.gateways[0]
    now = datetime.now(UTC)
    # 21 days of run-in: SpO2 98 % every morning (a very stable patient).
    for day in range(21, 0, -1):
        db.execute(
            "INSERT INTO readings (id, patient_id, gateway_id, kind, value, measured_at) "
            "VALUES (%s, %s, %s, 'spo2', %s, %s)",
            (uuid.uuid4(), patient, gateway.gateway_id, 98.0 if day % 3 else 97.0, now - timedelta(days=day)),
        )

    # Before the recompute: the protocol's yellow limit 92 % holds, 94 % raises nothing.
    _publish_spo2(gateway, 94.0)
    wait_for(lambda: _stored_spo2(db, patient, 94.0), what="the first reading stored")
    assert _alarm(db, patient) is None

    done = subprocess.run(
        [sys.executable, "-m", "varde", "rules", "personal-limits"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "new version" in done.stdout
    version = db.execute(
        "SELECT version, centre, yellow_low FROM personal_limits WHERE patient_id = %s AND kind = 'spo2'", (patient,)
    ).fetchall()
    assert [(v, c, y) for v, c, y in version] == [(1, 98.0, 95.0)]

    headers = login(api_url, tenant.nurse, tenant.nurse_password)
    profile = httpx.get(f"{api_url}/api/v1/patients/{patient}/thresholds", headers=headers, timeout=30).json()
    spo2 = next(k for k in profile["kinds"] if k["kind"] == "spo2")
    assert spo2["yellow_low"] == {"value": 95.0, "source": "personal"}
    assert spo2["red_low"]["source"] == "protocol"
    assert spo2["personal"]["centre"] == 98.0

    # After it: the same 94 % is under the patient's own yellow limit, and the explanation says whose.
    _publish_spo2(gateway, 94.0)
    alarm = wait_for(lambda: _alarm(db, patient), what="the personal-limit alarm")
    severity, limit, nb, en, details = alarm
    assert (severity, limit) == ("yellow", 95.0)
    assert nb.startswith("Oksygenmetning 94 %, under pasientens vanlige 98 % ± ")
    assert en.startswith("Oxygen saturation 94%, below the patient's usual 98% ± ")
    assert details["limit_source"] == "personal"
    assert details["personal"]["version"] == 1
