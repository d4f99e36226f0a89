"""Helpers for the clinician API tests: API clients, and rows written straight into the database (readings,
alarms) so a test controls exactly what the API has to show."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from store.settings import Settings
from tests.stack_plugin import Tenant, login

pytestmark = pytest.mark.integration


@pytest.fixture
def api(api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=30) as client:
        yield client


def headers_for(api_url: str, tenant: Tenant) -> dict[str, str]:
    return login(api_url, tenant.nurse, tenant.nurse_password)


def add_user(settings: Settings, role: str, teams: Sequence[str]) -> tuple[str, str, UUID]:
    from varde.admin import add_user as admin_add_user

    username, password = f"{role}-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    user_id = admin_add_user(settings, username, role, list(teams), password)
    return username, password, user_id


def insert_readings(
    db: psycopg.Connection[Any],
    patient_id: UUID,
    gateway_id: str,
    kind: str,
    values: Sequence[float],
    times: Sequence[datetime],
    *,
    device: str = "A4:C1:38:00:00:01",
    device_type: str = "pulse_oximeter",
    groups: Sequence[str | None] | None = None,
) -> list[UUID]:
    ids = [uuid.uuid4() for _ in values]
    groups = groups or [None] * len(values)
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (id, patient_id, gateway_id, kind, value, measured_at, received_at, device_address, "
            "device_type, device_model, grp) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'M-1', %s)",
            [
                (i, patient_id, gateway_id, kind, v, t, t + timedelta(seconds=5), device, device_type, g)
                for i, v, t, g in zip(ids, values, times, groups, strict=True)
            ],
        )
        # As ingest does: every stored reading's id is in reading_ids (id lookups take the reading's time from it).
        cur.executemany("INSERT INTO reading_ids (id, measured_at) VALUES (%s, %s)", list(zip(ids, times, strict=True)))
    db.execute(
        "INSERT INTO devices (gateway_id, address, type, model, battery_percent, last_seen_at) "
        "VALUES (%s, %s, %s, 'M-1', 80, now()) ON CONFLICT DO NOTHING",
        (gateway_id, device, device_type),
    )
    return ids


def insert_alarm(
    db: psycopg.Connection[Any],
    patient_id: UUID,
    *,
    severity: str = "yellow",
    rule: str | None = None,
    kind: str | None = "spo2",
    opened_minutes_ago: float = 10,
    state: str = "open",
    value: float = 91.0,
) -> UUID:
    rule = rule or f"test.{severity}.{secrets.token_hex(3)}"
    opened = datetime.now(UTC) - timedelta(minutes=opened_minutes_ago)
    row = db.execute(
        "INSERT INTO alarms (patient_id, rule, kind, severity, state, opened_at, updated_at, first_value, last_value, "
        "limit_value, explanation_nb, explanation_en) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 92, %s, %s) "
        "RETURNING id",
        (patient_id, rule, kind, severity, state, opened, opened, value, value, f"Verdi {value}", f"Value {value}"),
    ).fetchone()
    assert row is not None
    db.execute("INSERT INTO alarm_events (alarm_id, event, data) VALUES (%s, 'opened', '{}')", (row[0],))
    return UUID(str(row[0]))


def audit_rows(db: psycopg.Connection[Any], **where: Any) -> list[dict[str, Any]]:
    clauses = " AND ".join(f"{k} = %s" for k in where) or "true"
    cur = db.execute(f"SELECT * FROM audit_log WHERE {clauses} ORDER BY id", list(where.values()))
    names = [c.name for c in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def a_plan(**overrides: Any) -> dict[str, Any]:
    """A valid plan body (COPD, SpO2 zones tighter than the protocol's)."""
    plan: dict[str, Any] = {
        "protocol": "copd",
        "diagnosis": "J44.1",
        "timezone": "Europe/Oslo",
        "schedule": [
            {"kind": "spo2", "deadline": "10:00", "weekdays": ["mon", "wed", "fri"], "reminder_minutes_before": 30}
        ],
        "zones": [{"kind": "spo2", "unit": "%", "red_low": 86, "yellow_low": 90}],
        "advice": [
            {"zone": "green", "nb": "Fortsett som før.", "en": "Carry on as before."},
            {
                "zone": "yellow",
                "nb": "Ta medisin etter planen og mål igjen om to timer.",
                "en": "Take the rescue medication in your plan and measure again in two hours.",
            },
            {"zone": "red", "nb": "Ring sykepleier nå.", "en": "Call the nurse now."},
            {
                "zone": "red",
                "kind": "spo2",
                "nb": "Lav oksygenmetning: ring 113 ved pustebesvær.",
                "en": "Low oxygen saturation: call 113 if short of breath.",
            },
        ],
        "contacts": [{"name": "Lungepoliklinikken", "role": "sykepleier", "phone": "+47 22 11 80 80"}],
        "questionnaires": [
            {
                "id": "cat",
                "title_nb": "Daglige spørsmål",
                "title_en": "Daily questions",
                "questions": [
                    {
                        "id": "breath",
                        "nb": "Hvor tung er pusten i dag?",
                        "en": "How breathless are you today?",
                        "options": [
                            {"id": "as-usual", "nb": "Som vanlig", "en": "As usual", "score": 0},
                            {"id": "worse", "nb": "Verre", "en": "Worse", "score": 2},
                            {"id": "much-worse", "nb": "Mye verre", "en": "Much worse", "score": 4},
                        ],
                    }
                ],
                "yellow_from": 2,
                "red_from": 4,
            }
        ],
    }
    plan.update(overrides)
    return plan


@dataclass
class TwoTeams:
    """Team A (the caller's) and team B (someone else's), each with a patient, readings, an alarm and a plan."""

    a: Tenant
    b: Tenant
    a_headers: dict[str, str]
    b_alarm: UUID
    a_alarm: UUID
    b_reading: UUID
    a_reading: UUID


@pytest.fixture
def two_teams(make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str) -> TwoTeams:
    a, b = make_tenant(), make_tenant()
    now = datetime.now(UTC)
    ids = {}
    for t in (a, b):
        gw = t.gateways[0]
        ids[t.team] = insert_readings(
            db, gw.patient_id, gw.gateway_id, "spo2", [95, 93], [now - timedelta(hours=2), now]
        )
        db.execute(
            "INSERT INTO self_management_plans (patient_id, version, body) VALUES (%s, 1, %s)",
            (gw.patient_id, psycopg.types.json.Jsonb(a_plan())),
        )
    return TwoTeams(
        a=a,
        b=b,
        a_headers=headers_for(api_url, a),
        b_alarm=insert_alarm(db, b.patients[0]),
        a_alarm=insert_alarm(db, a.patients[0]),
        b_reading=ids[b.team][0],
        a_reading=ids[a.team][0],
    )
