"""Alarm burden per patient-week, per care team and per rule: figures, period, care-team scope and audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from tests.integration.api.support import audit_rows, headers_for, insert_alarm

pytestmark = pytest.mark.integration


def _cleared_repeat(db: psycopg.Connection[Any], patient: Any, rule: str, days_ago: float) -> None:
    at = datetime.now(UTC) - timedelta(days=days_ago)
    db.execute(
        "INSERT INTO repeat_requests (patient_id, rule, kind, value, measured_at, due_at, state, decided_at, "
        "candidate) VALUES (%s, %s, 'spo2', 93, %s, %s, 'cleared', %s, '{}')",
        (patient, rule, at, at + timedelta(minutes=30), at + timedelta(minutes=5)),
    )


def test_alarm_burden_per_patient_week_per_team_and_rule_for_the_callers_teams_only(
    api: httpx.Client, api_url: str, make_tenant: Any, db: psycopg.Connection[Any]
) -> None:
    tenant = make_tenant(patients=2)
    p1, p2 = tenant.patients
    db.execute("UPDATE patients SET created_at = now() - interval '60 days' WHERE id = ANY(%s)", ([p1, p2],))
    day = 24 * 60
    for patient, severity, days_ago in ((p1, "red", 1), (p1, "yellow", 3), (p2, "yellow", 10)):
        insert_alarm(
            db,
            patient,
            rule="threshold.spo2.low",
            severity=severity,
            state="resolved",
            opened_minutes_ago=days_ago * day,
        )
    insert_alarm(db, p2, rule="news2", kind=None, opened_minutes_ago=2 * day)
    insert_alarm(db, p1, rule="trend.weight_gain", kind="body_weight", state="resolved", opened_minutes_ago=40 * day)
    _cleared_repeat(db, p1, "threshold.pulse_rate.high", 2)
    headers = headers_for(api_url, tenant)

    response = api.get("/api/v1/alarm-burden", headers=headers)
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["days"] == 28
    [team] = doc["teams"]
    assert (team["team_id"], team["patients"], team["patient_weeks"]) == (str(tenant.team_id), 2, 8.0)
    assert (team["alarms"], team["per_patient_week"]) == (4, 0.5)
    rules = {r["rule"]: r for r in team["rules"]}
    assert [r["rule"] for r in team["rules"]][:2] == ["threshold.spo2.low", "news2"]  # the noisiest first
    spo2 = rules["threshold.spo2.low"]
    assert (spo2["alarms"], spo2["red"], spo2["per_patient_week"], spo2["share"]) == (3, 1, 0.375, 0.75)
    assert (spo2["label_nb"], spo2["label_en"]) == ("Oksygenmetning under grensen", "Oxygen saturation below the limit")
    assert rules["threshold.pulse_rate.high"]["alarms"] == 0
    assert rules["threshold.pulse_rate.high"]["repeats_cleared"] == 1
    assert "trend.weight_gain" not in rules  # opened before the period

    week = api.get("/api/v1/alarm-burden", headers=headers, params={"days": 7}).json()["teams"][0]
    assert (week["patient_weeks"], week["alarms"], week["per_patient_week"]) == (2.0, 3, 1.5)
    assert api.get("/api/v1/alarm-burden", headers=headers, params={"days": 0}).status_code == 422
    assert api.get("/api/v1/alarm-burden", headers=headers, params={"days": 366}).status_code == 422

    # A patient enrolled a week ago counts one week, not four.
    db.execute("UPDATE patients SET created_at = now() - interval '7 days' WHERE id = %s", (p2,))
    assert api.get("/api/v1/alarm-burden", headers=headers).json()["teams"][0]["patient_weeks"] == 5.0

    reads = audit_rows(db, team_id=tenant.team_id, resource="/api/v1/alarm-burden", action="read")
    assert len(reads) == 3 and {r["outcome"] for r in reads} == {"ok"}  # one per look that showed the team

    stranger = make_tenant()
    other = headers_for(api_url, stranger)
    theirs = api.get("/api/v1/alarm-burden", headers=other).json()["teams"]
    assert [(t["team_id"], t["alarms"]) for t in theirs] == [(str(stranger.team_id), 0)]
    named = api.get("/api/v1/alarm-burden", headers=other, params={"team": str(tenant.team_id)})
    assert named.status_code == 200 and named.json()["teams"] == []
    assert api.get("/api/v1/alarm-burden").status_code == 401
