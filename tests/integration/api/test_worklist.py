"""The nurse's worklist and the population overview over the real stack: every item type of the team, most urgent
first; only the nurse's own teams; who works on what; the configurable limits; zones, trends, adherence and alarm
burden; the audited CSV export."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from clinician_api import worklist
from clinician_api.access import Principal
from store.settings import Settings
from tests.integration.api.support import a_plan, add_user, audit_rows, headers_for, insert_alarm, insert_readings
from tests.integration.api.work_items import Seeded, seed_handover, seed_work
from tests.stack_plugin import Tenant

pytestmark = pytest.mark.integration


@pytest.fixture
def seeded(make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any]) -> Seeded:
    return seed_work(db, make_tenant(patients=2))


def test_worklist_holds_every_item_type_of_the_team_most_urgent_first_and_is_audited(
    seeded: Seeded, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str
) -> None:
    other = make_tenant()
    other_alarm = insert_alarm(db, other.patients[0], severity="red")
    headers = headers_for(api_url, seeded.tenant)
    answer = httpx.get(f"{api_url}/api/v1/worklist", headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    keys = [(i["type"], i["key"]) for i in body["items"]]
    print("worklist order:", [(i["type"], i["sla"], i["overdue"]) for i in body["items"]])
    assert keys[0] == ("alarm", str(seeded.red)), "a red alarm comes first"
    assert set(keys) == {
        ("alarm", str(seeded.red)),
        ("alarm", str(seeded.yellow)),
        ("missed_measurement", str(seeded.missed)),
        ("message", str(seeded.thread)),
        ("plan_review", str(seeded.plan)),
        ("inactive_patient", str(seeded.inactive)),
    }
    assert ("alarm", str(other_alarm)) not in keys
    by_key = {i["key"]: i for i in body["items"]}
    # Yellow alarm opened 300 min ago with a 4 h SLA: overdue; the message (3 h of 24 h) is not.
    assert by_key[str(seeded.yellow)]["overdue"] is True and by_key[str(seeded.yellow)]["sla"] == "alarm.yellow"
    assert by_key[str(seeded.thread)]["overdue"] is False and by_key[str(seeded.thread)]["sla_minutes"] == 24 * 60
    # Inactive since day 3 after enrolment (default 3 days), so overdue by the 24 h SLA; plan review since day 90.
    assert by_key[str(seeded.inactive)]["overdue"] is True
    assert body["inactive_days"] == 3 and body["plan_review_days"] == 90
    assert {c["type"]: c["count"] for c in body["counts"]}["alarm"] == 2
    rows = audit_rows(db, resource="/api/v1/worklist", action="list")
    assert {r["patient_id"] for r in rows if r["username"] == seeded.tenant.nurse} == set(seeded.tenant.patients)

    only = httpx.get(
        f"{api_url}/api/v1/worklist", headers=headers, params={"type": ["message", "inactive_patient"]}
    ).json()
    assert {i["type"] for i in only["items"]} == {"message", "inactive_patient"}
    refused = httpx.get(f"{api_url}/api/v1/worklist", headers=headers, params={"team": str(other.team_id)})
    assert refused.status_code == 403


def test_taking_and_releasing_an_item_shows_who_works_on_it_and_stays_in_the_team(
    seeded: Seeded, settings: Settings, make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str
) -> None:
    tenant = seeded.tenant
    headers = headers_for(api_url, tenant)
    taken = httpx.post(
        f"{api_url}/api/v1/worklist/assign",
        headers=headers,
        json={"type": "message", "key": str(seeded.thread), "assignee": "me"},
    )
    assert taken.status_code == 200, taken.text
    mine = httpx.get(f"{api_url}/api/v1/worklist", headers=headers, params={"mine": "true"}).json()["items"]
    assert [(i["type"], i["assignee_name"]) for i in mine] == [("message", tenant.nurse)]

    _, _, outsider_id = add_user(settings, "nurse", [make_tenant().team])
    wrong = httpx.post(
        f"{api_url}/api/v1/worklist/assign",
        headers=headers,
        json={"type": "plan_review", "key": str(seeded.plan), "assignee": str(outsider_id)},
    )
    assert wrong.status_code == 422
    other = make_tenant()
    thread = db.execute(
        "INSERT INTO message_threads (patient_id, subject, awaiting_team_since) VALUES (%s, 'x', now()) RETURNING id",
        (other.patients[0],),
    ).fetchone()
    assert thread is not None
    denied = httpx.post(
        f"{api_url}/api/v1/worklist/assign",
        headers=headers,
        json={"type": "message", "key": str(thread[0]), "assignee": "me"},
    )
    assert denied.status_code == 404
    assert audit_rows(db, resource="/api/v1/worklist/assign", outcome="denied", patient_id=other.patients[0])

    released = httpx.post(
        f"{api_url}/api/v1/worklist/assign",
        headers=headers,
        json={"type": "message", "key": str(seeded.thread), "assignee": None},
    )
    assert released.json()["assignee_id"] is None
    assert httpx.get(f"{api_url}/api/v1/worklist", headers=headers, params={"mine": "true"}).json()["items"] == []
    assert len(audit_rows(db, resource="/api/v1/worklist/assign", outcome="ok", patient_id=tenant.patients[0])) == 2


def test_inactive_and_plan_review_limits_decide_the_items(seeded: Seeded, db: psycopg.Connection[Any]) -> None:
    principal = Principal(uuid.uuid4(), "n", "nurse", (seeded.tenant.team_id,))
    now = datetime.now(UTC)

    def found(inactive: int, review: int) -> set[str]:
        query = worklist.WorklistQuery(principal, (seeded.tenant.team_id,), now, "en", inactive, review)
        return {i.type for i in worklist.collect(db, query, ["inactive_patient", "plan_review"])}

    assert found(3, 90) == {"inactive_patient", "plan_review"}
    assert found(11, 101) == set()
    assert found(9, 99) == {"inactive_patient", "plan_review"}


def test_population_overview_counts_zones_trends_adherence_and_alarm_burden_and_exports_csv(
    make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str
) -> None:
    tenant = make_tenant(patients=3, protocol="copd")
    worse, better, steady = tenant.patients
    now = datetime.now(UTC)
    # worse: red now, nothing the week before. better: yellow 10 days ago (resolved 9 days ago), nothing since.
    insert_alarm(db, worse, severity="red", opened_minutes_ago=30)
    old = insert_alarm(db, better, severity="yellow", opened_minutes_ago=10 * 24 * 60, state="resolved")
    db.execute("UPDATE alarms SET resolved_at = now() - interval '9 days' WHERE id = %s", (old,))
    # steady: a daily 23:59 spo2 measurement planned, taken on 5 of the last 7 days before today.
    every_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    body = a_plan(schedule=[{"kind": "spo2", "deadline": "23:59", "weekdays": every_day}], timezone="UTC")
    db.execute(
        "INSERT INTO self_management_plans (patient_id, version, status, body, activated_at) "
        "VALUES (%s, 1, 'active', %s, now() - interval '30 days')",
        (steady, Jsonb(body)),
    )
    days = [now.replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=d) for d in (1, 2, 4, 5, 6)]
    insert_readings(db, steady, tenant.gateways[2].gateway_id, "spo2", [95.0] * 5, days)
    headers = headers_for(api_url, tenant)

    answer = httpx.get(f"{api_url}/api/v1/population", headers=headers, params={"days": 7})
    assert answer.status_code == 200, answer.text
    overview = answer.json()
    lines = {p["patient_id"]: p for p in overview["patients"]}
    print("population:", {k[:8]: (v["zone"], v["trend"], v["adherence"]) for k, v in lines.items()})
    assert (lines[str(worse)]["zone"], lines[str(worse)]["trend"]) == ("red", "worse")
    assert (lines[str(better)]["zone"], lines[str(better)]["trend"]) == ("green", "improving")
    assert (lines[str(steady)]["zone"], lines[str(steady)]["trend"]) == ("green", "stable")
    assert lines[str(steady)]["planned"] == 7 and lines[str(steady)]["taken"] == 5
    assert lines[str(steady)]["adherence"] == pytest.approx(71.4)
    (team,) = overview["teams"]
    assert team["zones"] == {"red": 1, "yellow": 0, "green": 2}
    assert team["zone_trends"]["red"]["worse"] == 1 and team["zone_trends"]["green"]["improving"] == 1
    # One alarm opened in the 7 days (the red one) over 3 patient-weeks.
    assert team["alarms"] == 1 and team["alarms_per_patient_week"] == pytest.approx(0.33)

    exported = httpx.get(f"{api_url}/api/v1/population/export.csv", headers=headers, params={"days": 7})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert {r["patient"] for r in rows} == {f"Pasient {tenant.team.removeprefix('team-')}-{i}" for i in range(3)}
    assert {r["zone"] for r in rows} == {"red", "green"}
    exports = audit_rows(db, resource="/api/v1/population/export.csv", action="export", username=tenant.nurse)
    assert {r["patient_id"] for r in exports} == set(tenant.patients)


def test_handover_waiting_for_acceptance_is_work_of_the_receiving_team(
    make_tenant: Callable[..., Tenant], db: psycopg.Connection[Any], api_url: str
) -> None:
    hospital, municipality = make_tenant(), make_tenant()
    patient = hospital.patients[0]
    handover = seed_handover(db, hospital, municipality, hours_ago=25)
    items = httpx.get(f"{api_url}/api/v1/worklist", headers=headers_for(api_url, municipality)).json()["items"]
    (found,) = [i for i in items if i["type"] == "handover"]
    assert found["key"] == str(handover) and found["overdue"] is True and found["assignable"] is False
    (row,) = audit_rows(db, resource="/api/v1/worklist", patient_id=patient, username=municipality.nurse)
    assert row["emergency"] is False and row["team_id"] == municipality.team_id
    sender = httpx.get(f"{api_url}/api/v1/worklist", headers=headers_for(api_url, hospital)).json()["items"]
    assert [i for i in sender if i["type"] == "handover"] == []


def test_worklist_and_population_pages_are_frames_in_both_languages(api_url: str) -> None:
    for path, nb, en in (
        ("/dashboard/worklist", "<h1>Arbeidsliste</h1>", "<h1>Worklist</h1>"),
        ("/dashboard/population", "<h1>Populasjonsoversikt</h1>", "<h1>Population overview</h1>"),
    ):
        page = httpx.get(f"{api_url}{path}")
        assert page.status_code == 200 and nb in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert en in httpx.get(f"{api_url}{path}", cookies={"varde_lang": "en"}).text
