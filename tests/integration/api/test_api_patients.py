"""Patients: the list with worst alarm and last measurement, the record with gateway and device status,
measurements raw and bucketed, and the threshold profile view and edit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from tests.integration.api.support import headers_for, insert_alarm, insert_readings
from tests.stack_plugin import Tenant

pytestmark = pytest.mark.integration


def test_patient_list_shows_worst_open_alarm_and_last_measurement(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(patients=3)
    p1, p2, _p3 = tenant.patients
    gw1 = tenant.gateways[0]
    last = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    insert_readings(db, p1, gw1.gateway_id, "spo2", [96, 95], [last - timedelta(days=1), last])
    insert_readings(db, p1, gw1.gateway_id, "pulse_rate", [70], [last - timedelta(hours=3)])
    insert_alarm(db, p1, severity="yellow")
    worst = insert_alarm(db, p1, severity="red", opened_minutes_ago=1)
    insert_alarm(db, p2, severity="red", state="resolved")
    headers = headers_for(api_url, tenant)
    page = api.get("/api/v1/patients", headers=headers, params={"team": str(tenant.team_id), "limit": 2}).json()
    assert len(page["items"]) == 2 and page["next"]
    rest = api.get(
        "/api/v1/patients", headers=headers, params={"team": str(tenant.team_id), "cursor": page["next"]}
    ).json()
    items = {i["id"]: i for i in page["items"] + rest["items"]}
    assert set(items) == {str(p) for p in tenant.patients}
    first = items[str(p1)]
    assert first["worst_alarm"]["id"] == str(worst) and first["open_alarms"] == 2
    assert datetime.fromisoformat(first["last_measured_at"]) == last
    assert items[str(p2)]["worst_alarm"] is None and items[str(p2)]["last_measured_at"] is None
    assert first["team_name"] == tenant.team and first["emergency_access"] is False
    other = make_tenant()
    everyone = api.get("/api/v1/patients", headers=headers, params={"limit": 200}).json()["items"]
    assert not {i["id"] for i in everyone} & {str(p) for p in other.patients}


def test_patient_record_has_gateway_and_device_status(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant()
    gw = tenant.gateways[0]
    insert_readings(db, gw.patient_id, gw.gateway_id, "spo2", [97], [datetime.now(UTC)])
    db.execute(
        "UPDATE gateways SET state = 'online', last_seen_at = now(), agent_version = '0.3.1', outbox_depth = 4 "
        "WHERE id = %s",
        (gw.gateway_id,),
    )
    record = api.get(f"/api/v1/patients/{gw.patient_id}", headers=headers_for(api_url, tenant)).json()
    (gateway,) = record["gateways"]
    assert gateway["id"] == gw.gateway_id and gateway["state"] == "online" and gateway["outbox_depth"] == 4
    assert gateway["agent_version"] == "0.3.1" and gateway["last_seen_at"]
    (device,) = gateway["devices"]
    assert device["battery_percent"] == 80 and device["type"] == "pulse_oximeter"
    assert record["timezone"] == "Europe/Oslo" and record["protocol"] == "heart_failure"


def test_measurements_raw_are_paged_newest_first(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant()
    gw = tenant.gateways[0]
    t0 = datetime(2026, 1, 10, tzinfo=UTC)
    ids = insert_readings(
        db,
        gw.patient_id,
        gw.gateway_id,
        "spo2",
        [90 + i % 8 for i in range(25)],
        [t0 + timedelta(hours=i) for i in range(25)],
    )
    insert_readings(db, gw.patient_id, gw.gateway_id, "pulse_rate", [70], [t0])
    headers = headers_for(api_url, tenant)
    url = f"/api/v1/patients/{gw.patient_id}/measurements"
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"kind": "spo2", "limit": 10}
    while True:
        page = api.get(url, headers=headers, params=params).json()
        seen += page["items"]
        if not page["next"]:
            break
        params["cursor"] = page["next"]
    assert [m["id"] for m in seen] == [str(i) for i in reversed(ids)]
    m = seen[0]
    assert m["unit"] == "%" and m["kind"] == "spo2" and m["device"]["address"] == "A4:C1:38:00:00:01"
    assert m["received_at"] and m["gateway_id"] == gw.gateway_id
    window = api.get(
        url,
        headers=headers,
        params={"from": (t0 + timedelta(hours=5)).isoformat(), "to": (t0 + timedelta(hours=7)).isoformat()},
    ).json()
    assert [x["value"] for x in window["items"]] == [96.0, 95.0]
    naive = api.get(url, headers=headers, params={"from": "2026-01-10T00:00:00"})
    assert naive.status_code == 422


def test_hourly_daily_and_weekly_buckets_aggregate_in_the_patients_time_zone(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant()
    gw = tenant.gateways[0]
    oslo = ZoneInfo("Europe/Oslo")
    # Three readings on 2 March (Oslo), two of them in the 08:00 hour; one at 23:30 Oslo = 22:30 UTC the same day.
    times = [
        datetime(2026, 3, 2, 8, 5, tzinfo=oslo),
        datetime(2026, 3, 2, 8, 55, tzinfo=oslo),
        datetime(2026, 3, 2, 23, 30, tzinfo=oslo),
        datetime(2026, 3, 10, 12, 0, tzinfo=oslo),
    ]
    insert_readings(db, gw.patient_id, gw.gateway_id, "body_weight", [80.0, 82.0, 81.0, 79.0], times)
    headers = headers_for(api_url, tenant)
    url = f"/api/v1/patients/{gw.patient_id}/measurements"
    span = {"from": "2026-03-01T00:00:00+01:00", "to": "2026-03-20T00:00:00+01:00", "kind": "body_weight"}
    hours = api.get(url, headers=headers, params={**span, "bucket": "hour"}).json()
    assert hours["unit"] == "kg" and hours["timezone"] == "Europe/Oslo"
    first = hours["items"][0]
    assert datetime.fromisoformat(first["start"]) == datetime(2026, 3, 2, 8, tzinfo=oslo)
    assert (first["min"], first["avg"], first["max"], first["count"]) == (80.0, 81.0, 82.0, 2)
    days = api.get(url, headers=headers, params={**span, "bucket": "day"}).json()["items"]
    assert [(datetime.fromisoformat(d["start"]), d["count"]) for d in days] == [
        (datetime(2026, 3, 2, tzinfo=oslo), 3),
        (datetime(2026, 3, 10, tzinfo=oslo), 1),
    ]
    weeks = api.get(url, headers=headers, params={**span, "bucket": "week"}).json()["items"]
    assert [datetime.fromisoformat(w["start"]) for w in weeks] == [
        datetime(2026, 3, 2, tzinfo=oslo),  # a Monday
        datetime(2026, 3, 9, tzinfo=oslo),
    ]
    assert api.get(url, headers=headers, params={"bucket": "day"}).status_code == 422
    too_many = api.get(url, headers=headers, params={"bucket": "hour", "kind": "spo2", "from": "2000-01-01T00:00:00Z"})
    assert too_many.status_code == 422


def test_threshold_profile_shows_sources_and_validates_edits(
    make_tenant: Any, api: httpx.Client, api_url: str, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(protocol="copd")
    patient = tenant.patients[0]
    headers = headers_for(api_url, tenant)
    url = f"/api/v1/patients/{patient}/thresholds"
    profile = api.get(url, headers=headers).json()
    spo2 = next(k for k in profile["kinds"] if k["kind"] == "spo2")
    assert spo2["red_low"] == {"value": 84.0, "source": "protocol", "condition": "copd"}
    assert spo2["red_high"] == {"value": None, "source": "none", "condition": None}

    edited = api.put(
        url,
        headers=headers,
        json={"limits": {"spo2": {"unit": "%", "red_low": 86, "yellow_low": 90, "red_high": None}}},
    )
    assert edited.status_code == 200, edited.text
    spo2 = next(k for k in edited.json()["kinds"] if k["kind"] == "spo2")
    assert spo2["red_low"] == {"value": 86.0, "source": "override", "condition": None}
    assert spo2["yellow_low"] == {"value": 90.0, "source": "override", "condition": None}
    row = db.execute(
        "SELECT red_low, yellow_low, yellow_high, red_high, source FROM threshold_overrides WHERE patient_id = %s",
        (patient,),
    ).fetchone()
    assert row == (86.0, 90.0, None, None, "manual")

    off = api.put(url, headers=headers, json={"limits": {"pulse_rate": {"unit": "/min", "red_low": "off"}}})
    pulse = next(k for k in off.json()["kinds"] if k["kind"] == "pulse_rate")
    assert pulse["red_low"] == {"value": None, "source": "override", "condition": None}

    disordered = api.put(
        url, headers=headers, json={"limits": {"spo2": {"unit": "%", "red_low": 93, "yellow_low": 90}}}
    )
    assert disordered.status_code == 422
    assert disordered.json()["errors"][0]["loc"] == ["body", "limits", "spo2", "yellow_low"]
    assert disordered.json()["errors"][0]["message_nb"]
    implausible = api.put(url, headers=headers, json={"limits": {"spo2": {"unit": "%", "red_low": 30}}})
    assert implausible.status_code == 422 and "plausible" in implausible.text
    wrong_unit = api.put(url, headers=headers, json={"limits": {"body_weight": {"unit": "lb", "red_high": 120}}})
    assert wrong_unit.status_code == 422 and wrong_unit.json()["errors"][0]["loc"][-1] == "unit"
    unknown = api.put(url, headers=headers, json={"limits": {"bogus": {"unit": "%", "red_low": 1}}})
    assert unknown.status_code == 422
    still = db.execute("SELECT red_low FROM threshold_overrides WHERE patient_id = %s AND kind = 'spo2'", (patient,))
    assert still.fetchone() == (86.0,)

    inherit = api.put(url, headers=headers, json={"limits": {"spo2": {"unit": "%"}}})
    spo2 = next(k for k in inherit.json()["kinds"] if k["kind"] == "spo2")
    assert spo2["red_low"]["source"] == "protocol"
