"""Work items of every type in a tenant's team, written straight into the database (the worklist's tests, API and
browser)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from tests.integration.api.support import a_plan, insert_alarm, insert_readings
from tests.stack_plugin import Tenant


@dataclass
class Seeded:
    tenant: Tenant
    red: UUID
    yellow: UUID
    missed: UUID
    thread: UUID
    plan: UUID
    inactive: UUID


def seed_work(db: psycopg.Connection[Any], tenant: Tenant) -> Seeded:
    """One item of every type in the tenant's team: patient 0 has alarms, a message and an old plan; patient 1
    was enrolled ten days ago and never measured."""
    p0, p1 = tenant.patients[0], tenant.patients[1]
    insert_readings(db, p0, tenant.gateways[0].gateway_id, "spo2", [95.0], [datetime.now(UTC) - timedelta(hours=1)])
    red = insert_alarm(db, p0, severity="red", opened_minutes_ago=2, value=84)
    yellow = insert_alarm(db, p0, severity="yellow", opened_minutes_ago=300, value=91)
    missed = insert_alarm(db, p0, severity="missed", opened_minutes_ago=60, value=0)
    row = db.execute(
        "INSERT INTO message_threads (patient_id, subject, awaiting_team_since) VALUES (%s, 'Hoven ankel', "
        "now() - interval '3 hours') RETURNING id",
        (p0,),
    ).fetchone()
    assert row is not None
    # The old plan schedules nothing: the live missed-measurement rule would otherwise open a missed alarm of its
    # own for a deadline of the last 48 h (a_plan()'s Monday, Wednesday and Friday 10:00), and the items would
    # depend on the day and the hour.
    plan = db.execute(
        "INSERT INTO self_management_plans (patient_id, version, status, body, activated_at) "
        "VALUES (%s, 1, 'active', %s, now() - interval '100 days') RETURNING id",
        (p0, Jsonb(a_plan(schedule=[]))),
    ).fetchone()
    assert plan is not None
    db.execute("UPDATE patients SET created_at = now() - interval '10 days' WHERE id = %s", (p1,))
    return Seeded(tenant, red, yellow, missed, row[0], plan[0], p1)


def seed_handover(db: psycopg.Connection[Any], sender: Tenant, receiver: Tenant, hours_ago: float = 25) -> UUID:
    """The sender's first patient proposed for hand-over to the receiver's team `hours_ago` (not yet answered)."""
    patient = sender.patients[0]
    episode = (
        db.execute("SELECT id FROM care_episodes WHERE patient_id = %s AND status = 'active'", (patient,)).fetchone()
        or db.execute(
            "INSERT INTO care_episodes (patient_id, team_id, reason) VALUES (%s, %s, 'Hjertesvikt') RETURNING id",
            (patient, sender.team_id),
        ).fetchone()
    )
    assert episode is not None
    nurse = db.execute("SELECT id FROM users WHERE username = %s", (sender.nurse,)).fetchone()
    assert nurse is not None
    row = db.execute(
        "INSERT INTO care_handovers (episode_id, patient_id, from_team_id, to_team_id, situation, plan, watch, "
        "proposed_by, proposed_at) VALUES (%s, %s, %s, %s, 'Stabil', 'Daglig vekt', 'Vekt', %s, "
        "now() - %s * interval '1 hour') RETURNING id",
        (episode[0], patient, sender.team_id, receiver.team_id, nurse[0], hours_ago),
    ).fetchone()
    assert row is not None
    return UUID(str(row[0]))
