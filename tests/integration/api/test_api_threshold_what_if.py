"""The threshold editor's what-if against the real stack: 90 days of a patient's stored readings replayed with the
limits in force and with a proposed edit, counted exactly, and nothing written."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from rules_engine.whatif import MAX_READINGS
from tests.integration.api.support import audit_rows, headers_for, insert_readings
from tests.stack_plugin import Tenant

pytestmark = pytest.mark.integration

_PATIENT_TABLES = (
    "readings",
    "alarms",
    "threshold_overrides",
    "trend_overrides",
    "personal_limits",
    "repeat_requests",
    "self_management_plans",
    "patient_conditions",
)

# Diabetes glucose limits (mmol/L): red < 3.0, yellow < 3.9, yellow > 13.9, red > 16.7.
_USUAL = 6.0
_LOW_DAY = 4.5  # in range now; under a yellow lower limit of 5.0
_HIGH_DAY = 14.5  # yellow high
_RED_DAY = 17.2  # red high


def _glucose_days() -> dict[int, float]:
    """Days ago → the day's morning glucose: 90 days inside the window and two breaching days before it."""
    values = {d: _USUAL for d in range(1, 91)}
    for d in range(7, 91, 7):
        values[d] = _LOW_DAY
    values[10] = values[40] = _HIGH_DAY
    values[60] = _RED_DAY
    values[95], values[100] = _LOW_DAY, _HIGH_DAY  # warm-up only: replayed for history, not counted
    return values


def _expected(days: dict[int, float], yellow_low: float) -> dict[str, int]:
    """Alarms raised inside the window, from the readings alone: one per breaching day (the breaching days are
    more than a day apart, so each earlier alarm is resolved when the next comes)."""
    inside = {d: v for d, v in days.items() if d <= 90}
    return {
        "threshold.glucose.high": sum(1 for v in inside.values() if v > 13.9),
        "threshold.glucose.low": sum(1 for v in inside.values() if v < yellow_low),
    }


def _snapshot(db: psycopg.Connection[Any], patient: UUID) -> dict[str, str]:
    return {
        table: db.execute(
            f"SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
            f"FROM {table} t WHERE patient_id = %s",
            (patient,),
        ).fetchone()[0]  # type: ignore[index]
        for table in _PATIENT_TABLES
    }


def _seed(db: psycopg.Connection[Any], tenant: Tenant) -> dict[int, float]:
    gateway = tenant.gateways[0]
    days = _glucose_days()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    times = [now - timedelta(days=d) + timedelta(hours=1) for d in days]
    insert_readings(
        db, gateway.patient_id, gateway.gateway_id, "glucose", list(days.values()), times, device_type="glucose_meter"
    )
    return days


def _edit(yellow_low: float) -> dict[str, Any]:
    return {"limits": {"glucose": {"unit": "mmol/L", "yellow_low": yellow_low}}}


def test_what_if_counts_the_alarms_of_the_last_90_days_with_the_limits_in_force_and_with_the_proposal(
    make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str
) -> None:
    tenant = make_tenant(protocol="diabetes")
    patient = tenant.patients[0]
    days = _seed(db, tenant)
    headers = headers_for(api_url, tenant)
    before = _snapshot(db, patient)

    started = time.perf_counter()
    response = httpx.post(
        f"{api_url}/api/v1/patients/{patient}/thresholds/what-if", json=_edit(5.0), headers=headers, timeout=30
    )
    elapsed = time.perf_counter() - started
    print(f"what-if over 90 days of daily readings (plus warm-up): {elapsed * 1000:.0f} ms")
    assert response.status_code == 200, response.text
    body = response.json()

    now, proposed = _expected(days, 3.9), _expected(days, 5.0)
    assert now == {"threshold.glucose.high": 3, "threshold.glucose.low": 0}
    assert proposed == {"threshold.glucose.high": 3, "threshold.glucose.low": 12}
    assert body == {
        "days": 90,
        "readings": 90,
        "alarms_now": sum(now.values()),
        "alarms_proposed": sum(proposed.values()),
        "by_rule_now": now,
        "by_rule_proposed": proposed,
    }
    assert _snapshot(db, patient) == before
    reads = [r for r in audit_rows(db, patient_id=patient) if r["resource"].endswith("/thresholds/what-if")]
    assert [(r["action"], r["outcome"]) for r in reads] == [("read", "ok")]

    # The same proposal saved: the limits in force now give what the what-if predicted.
    saved = httpx.put(f"{api_url}/api/v1/patients/{patient}/thresholds", json=_edit(5.0), headers=headers)
    assert saved.status_code == 200, saved.text
    again = httpx.post(
        f"{api_url}/api/v1/patients/{patient}/thresholds/what-if", json=_edit(3.9), headers=headers, timeout=30
    ).json()
    assert (again["alarms_now"], again["alarms_proposed"]) == (sum(proposed.values()), sum(now.values()))


def test_what_if_of_a_patient_outside_the_callers_teams_is_404_and_writes_nothing(
    make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str
) -> None:
    ours, theirs = make_tenant(protocol="diabetes"), make_tenant(protocol="diabetes")
    patient = ours.patients[0]
    _seed(db, ours)
    before = _snapshot(db, patient)
    response = httpx.post(
        f"{api_url}/api/v1/patients/{patient}/thresholds/what-if",
        json=_edit(5.0),
        headers=headers_for(api_url, theirs),
        timeout=30,
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert _snapshot(db, patient) == before
    denied = [r for r in audit_rows(db, patient_id=patient) if r["resource"].endswith("/thresholds/what-if")]
    assert [r["outcome"] for r in denied] == ["denied"]


def test_what_if_refuses_a_profile_the_save_would_refuse(
    make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str
) -> None:
    tenant = make_tenant(protocol="diabetes")
    patient = tenant.patients[0]
    _seed(db, tenant)
    headers = headers_for(api_url, tenant)
    url = f"{api_url}/api/v1/patients/{patient}/thresholds/what-if"
    out_of_order = httpx.post(url, json=_edit(15.0), headers=headers, timeout=30)
    assert out_of_order.status_code == 422
    assert out_of_order.json()["errors"][0]["loc"][:3] == ["body", "limits", "glucose"]
    wrong_unit = httpx.post(
        url, json={"limits": {"glucose": {"unit": "mg/dL", "yellow_low": 90}}}, headers=headers, timeout=30
    )
    assert wrong_unit.status_code == 422
    assert wrong_unit.json()["errors"][0]["loc"] == ["body", "limits", "glucose", "unit"]


def test_what_if_of_an_unchanged_limit_equals_the_count_now_and_its_cost_is_printed(
    make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str
) -> None:
    """A heart-failure patient with four daily kinds (weight, SpO2, pulse, systolic) for 90 days and the warm-up:
    personal limits, trends, NEWS2 and the combined rule all run. The timings are printed for the report."""
    tenant = make_tenant(protocol="heart_failure")
    patient, gateway = tenant.patients[0], tenant.gateways[0]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    span = range(1, 91 + 35)
    times = [now - timedelta(days=d) + timedelta(hours=1) for d in span]
    daily = {
        "body_weight": [82.0 + (d % 5) * 0.3 + (1.5 if d in (20, 21, 22) else 0) for d in span],
        "spo2": [94.0 - (d % 3) - (4 if d % 17 == 0 else 0) for d in span],
        "pulse_rate": [72.0 + (d % 9) * 2 for d in span],
        "bp_systolic": [118.0 - (d % 7) * 3 for d in span],
    }
    for kind, values in daily.items():
        insert_readings(db, patient, gateway.gateway_id, kind, values, times)
    headers = headers_for(api_url, tenant)
    unchanged = {"limits": {"spo2": {"unit": "%", "yellow_low": None}}}
    url = f"{api_url}/api/v1/patients/{patient}/thresholds/what-if"
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        response = httpx.post(url, json=unchanged, headers=headers, timeout=30)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    body = response.json()
    timings.sort()
    print(
        f"what-if, 4 kinds × 90 days daily ({body['readings']} readings in the window, "
        f"{4 * len(span)} replayed): median {timings[2] * 1000:.0f} ms, max {timings[-1] * 1000:.0f} ms over 5 calls; "
        f"alarms {body['alarms_now']} by rule {body['by_rule_now']}"
    )
    assert body["readings"] == 4 * 90
    assert body["alarms_proposed"] == body["alarms_now"]
    assert body["by_rule_proposed"] == body["by_rule_now"]


def test_what_if_refuses_a_patient_with_more_readings_than_it_replays(
    make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str
) -> None:
    tenant = make_tenant(protocol="diabetes")
    patient, gateway = tenant.patients[0], tenant.gateways[0]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    n = MAX_READINGS + 1  # a continuous glucose monitor: one reading every 5 minutes
    times = [now - timedelta(minutes=5 * i + 1) for i in range(n)]
    insert_readings(db, patient, gateway.gateway_id, "glucose", [6.0] * n, times, device_type="glucose_meter")
    response = httpx.post(
        f"{api_url}/api/v1/patients/{patient}/thresholds/what-if",
        json=_edit(5.0),
        headers=headers_for(api_url, tenant),
        timeout=30,
    )
    assert response.status_code == 422
    assert f"more than {MAX_READINGS} readings" in response.json()["detail"]
