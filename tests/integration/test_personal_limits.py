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

from tests.stack_plugin import Gateway, Tenant, login, publish, wait_for
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
    # 21 days of run-in: a stable heart-failure patient who lives at 94 % (the protocol's yellow limit is 92 %),
    # and yesterday 90 %.
    for day in range(21, 0, -1):
        value = 90.0 if day == 1 else 94.0 if day % 3 else 93.0
        db.execute(
            "INSERT INTO readings (id, patient_id, gateway_id, kind, value, measured_at) "
            "VALUES (%s, %s, %s, 'spo2', %s, %s)",
            (uuid.uuid4(), patient, gateway.gateway_id, value, now - timedelta(days=day)),
        )

    # Before the recompute the protocol's limit is the warning limit: 91 % is under the yellow limit 92 %, and with
    # yesterday's 90 % that is two of the last three measurement days (a second 91 % updates the alarm).
    _publish_spo2(gateway, 91.0)
    wait_for(lambda: _stored_spo2(db, patient, 91.0), what="the first 91 % stored")
    first = datetime.now(UTC).replace(microsecond=0)
    wait_for(lambda: datetime.now(UTC).replace(microsecond=0) > first, what="the next second (a later repeat)")
    _publish_spo2(gateway, 91.0)
    severity, limit, nb, _en, details = wait_for(lambda: _alarm(db, patient), what="the protocol-limit alarm")
    assert (severity, limit) == ("yellow", 92.0)
    assert nb.startswith("Oksygenmetning 91 %, under gul grense 92 %")
    assert details["limit_source"] == "protocol"

    done = subprocess.run(
        [sys.executable, "-m", "varde", "rules", "personal-limits"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "new version" in done.stdout
    version = db.execute(
        "SELECT version, centre, yellow_low FROM personal_limits WHERE patient_id = %s AND kind = 'spo2'", (patient,)
    ).fetchall()
    assert [(v, c, y) for v, c, y in version] == [(1, 94.0, 91.0)]

    headers = login(api_url, tenant.nurse, tenant.nurse_password)
    profile = httpx.get(f"{api_url}/api/v1/patients/{patient}/thresholds", headers=headers, timeout=30).json()
    spo2 = next(k for k in profile["kinds"] if k["kind"] == "spo2")
    assert spo2["yellow_low"] == {"value": 91.0, "source": "personal", "condition": None}
    assert spo2["red_low"]["value"] == 85.0 and spo2["red_low"]["source"] == "hard_floor"  # red is the floor now
    assert spo2["personal"]["centre"] == 94.0

    # After it the limit has moved: the same 91 % is the patient's usual range, back in range ...
    _publish_spo2(gateway, 91.0)
    wait_for(
        lambda: db.execute(
            "SELECT back_in_range FROM alarms WHERE patient_id = %s AND rule = 'threshold.spo2.low'", (patient,)
        ).fetchone()[0],
        what="91 % back in range under the personal limit",
    )
    # ... and 90 % is under the personal limit (inside its action limit 94 − 7 = 87: the warning zone); with
    # yesterday's 90 % it is persistent, explained against the usual value.
    _publish_spo2(gateway, 90.0)

    def personal_alarm() -> tuple[Any, ...] | None:
        alarm = _alarm(db, patient)
        return alarm if alarm and alarm[4].get("limit_source") == "personal" else None

    severity, limit, nb, en, details = wait_for(personal_alarm, what="the personal-limit alarm")
    assert (severity, limit) == ("yellow", 91.0)
    assert nb == (
        "Oksygenmetning 90 %, under pasientens vanlige 94 % ± 0,0 (personlig gul grense 91 %). "
        "Utenfor grensen 2 av de siste 3 måledagene."
    )
    assert en == (
        "Oxygen saturation 90%, below the patient's usual 94% ± 0.0 (personal yellow limit 91%). "
        "Beyond the limit on 2 of the last 3 measurement days."
    )
    assert details["persistence"] == {"days_beyond": 2, "of_days": 3, "action_limit": 87.0}
    assert details["personal"]["version"] == 1
