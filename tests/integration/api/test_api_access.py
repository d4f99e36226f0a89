"""Access by duty of care, break-the-glass and the audit trail, checked over every patient route the app has."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from clinician_api.app import create_app
from store.settings import Settings
from tests.integration.api.support import TwoTeams, a_plan, add_user, audit_rows, headers_for
from tests.stack_plugin import login

pytestmark = pytest.mark.integration

PATIENT_PARAMS = {"patient_id", "alarm_id", "observation_id"}
# The break-the-glass door must answer for patients outside the caller's teams: that is its purpose.
OUTSIDE_CARE_ALLOWED = {("POST", "/api/v1/patients/{patient_id}/emergency-access")}


def patient_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the app that names a patient, an alarm or a reading: found by walking the app, so a
    new route is covered the day it is added."""
    found = []
    for route in iter_route_contexts(create_app().routes):
        if not isinstance(route.original_route, APIRoute) or route.path is None:
            continue
        # Dashboard pages are the same empty frame for any id; their data comes through the routes checked here
        # (tests/browser/test_pages.py checks that a page reveals nothing about the patient it names).
        if route.path.startswith("/dashboard/"):
            continue
        # The patient app's routes answer to a patient's or relative's session, not to staff tokens; the same
        # walk over them, with patients, relatives and strangers, is in tests/citizen/test_access.py.
        if route.path.startswith("/api/v1/min/"):
            continue
        params = set(re.findall(r"{(\w+)}", route.path))
        if params & PATIENT_PARAMS:
            found += [(method, route.path) for method in sorted(route.methods or ())]
    return found


def fill(path: str, ids: dict[str, Any]) -> str:
    params = re.findall(r"{(\w+)}", path)
    unknown = [p for p in params if p not in ids]
    assert not unknown, f"{path}: no test value for {unknown}; add one so the route is covered"
    return path.format(**{p: ids[p] for p in params})


def test_route_walk_finds_the_patient_routes() -> None:
    paths = {p for _, p in patient_routes()}
    for expected in (
        "/api/v1/patients/{patient_id}",
        "/api/v1/patients/{patient_id}/measurements",
        "/api/v1/alarms/{alarm_id}/acknowledge",
        "/fhir/Patient/{patient_id}/$everything",
        "/fhir/Observation/{observation_id}",
    ):
        assert expected in paths
    assert len(paths) >= 20


def test_nurse_gets_404_on_every_route_of_another_teams_patient(
    two_teams: TwoTeams, api: httpx.Client, db: psycopg.Connection[Any]
) -> None:
    t = two_teams
    b_thread, b_proxy = _thread_and_proxy(db, t.b.patients[0])
    ids = {
        "patient_id": t.b.patients[0],
        "alarm_id": t.b_alarm,
        "observation_id": t.b_reading,
        "version": 1,
        "thread_id": b_thread,
        "proxy_id": b_proxy,
    }
    missing = {
        "patient_id": uuid.uuid4(),
        "alarm_id": uuid.uuid4(),
        "observation_id": uuid.uuid4(),
        "version": 1,
        "thread_id": uuid.uuid4(),
        "proxy_id": uuid.uuid4(),
    }
    checked = 0
    for method, path in patient_routes():
        if (method, path) in OUTSIDE_CARE_ALLOWED:
            continue
        body = {"limits": {"spo2": {"unit": "%"}}} if method in ("PUT", "POST") else None
        response = api.request(method, fill(path, ids), headers=t.a_headers, json=body)
        assert response.status_code == 404, f"{method} {path} → {response.status_code} {response.text[:200]}"
        expected_type = "application/fhir+json" if path.startswith("/fhir/") else "application/problem+json"
        assert response.headers["content-type"].startswith(expected_type)
        absent = api.request(method, fill(path, missing), headers=t.a_headers, json=body)
        assert absent.status_code == 404
        assert absent.json() == response.json(), f"{method} {path} tells an existing patient from a missing one"
        checked += 1
    assert checked >= 20
    # Nothing about team B's patient was written or shown; the attempts are in the audit log as denied.
    denied = audit_rows(db, patient_id=t.b.patients[0], outcome="denied")
    assert len(denied) >= checked - 5
    assert db.execute("SELECT count(*) FROM alarm_events WHERE alarm_id = %s", (t.b_alarm,)).fetchone() == (1,)
    state = db.execute("SELECT state FROM alarms WHERE id = %s", (t.b_alarm,)).fetchone()
    assert state == ("open",)


def _thread_and_proxy(db: psycopg.Connection[Any], patient_id: Any) -> tuple[Any, Any]:
    """A message thread and a relative's proxy of the patient, for the routes that name them."""
    (thread_id,) = db.execute(
        "INSERT INTO message_threads (patient_id, subject) VALUES (%s, 'Hei') RETURNING id", (patient_id,)
    ).fetchone()
    nid = f"{uuid.uuid4().int % 10**11:011d}"
    (relative,) = db.execute(
        "INSERT INTO citizens (national_id, display_name) VALUES (%s, 'Pårørende') RETURNING id", (nid,)
    ).fetchone()
    (proxy_id,) = db.execute(
        "INSERT INTO proxies (patient_id, relative_id, relation, rights, valid_until, granted_by_citizen) "
        "VALUES (%s, %s, 'sønn', ARRAY['read_measurements'], now() + interval '1 day', %s) RETURNING id",
        (patient_id, relative, relative),
    ).fetchone()
    return thread_id, proxy_id


def _body_for(method: str, path: str) -> dict[str, Any] | None:
    if path.endswith("/thresholds") and method == "PUT":
        return {"limits": {"spo2": {"unit": "%", "red_low": 85, "yellow_low": 90}}}
    if path.endswith("/plans") and method == "POST":
        return a_plan()
    if path.endswith("/assign"):
        return {"assignee": "me"}
    if path.endswith("/notes"):
        return {"text": "Ringte pasienten."}
    if path.endswith("/resolve"):
        return {"resolution": "Pasienten har det bra."}
    if path.endswith("/emergency-access"):
        return {"reason": "Akutt innleggelse, trenger målingene"}
    return None


def test_every_patient_route_writes_an_audit_row_in_the_same_request(
    two_teams: TwoTeams, api: httpx.Client, db: psycopg.Connection[Any]
) -> None:
    t = two_teams
    own = t.a.patients[0]
    thread_id, proxy_id = _thread_and_proxy(db, own)
    ids = {
        "patient_id": own,
        "alarm_id": t.a_alarm,
        "observation_id": t.a_reading,
        "version": 1,
        "thread_id": thread_id,
        "proxy_id": proxy_id,
    }
    for method, path in patient_routes():
        url = fill(path, ids)
        before = len(audit_rows(db, patient_id=own))
        response = api.request(method, url, headers=t.a_headers, json=_body_for(method, path))
        assert response.status_code < 500, f"{method} {path} → {response.status_code} {response.text[:300]}"
        assert response.status_code != 404, f"{method} {path} refused the caller's own patient"
        rows = audit_rows(db, patient_id=own)[before:]
        mine = [r for r in rows if r["resource"] == url and r["username"] == t.a.nurse]
        assert mine, f"{method} {path} wrote no audit row"
        assert mine[-1]["role"] == "nurse" and mine[-1]["team_id"] == t.a.team_id and mine[-1]["client_addr"]
        expected = "ok" if response.status_code < 400 else f"refused:{response.status_code}"
        assert mine[-1]["outcome"] == expected, f"{method} {path}: {mine[-1]['outcome']} for {response.status_code}"


def test_list_routes_audit_each_patient_they_show(
    two_teams: TwoTeams, api: httpx.Client, db: psycopg.Connection[Any]
) -> None:
    t = two_teams
    assert api.get("/api/v1/alarms", headers=t.a_headers).status_code == 200
    assert api.get("/api/v1/patients", headers=t.a_headers).status_code == 200
    rows = audit_rows(db, patient_id=t.a.patients[0], action="list")
    assert {r["resource"] for r in rows} == {"/api/v1/alarms", "/api/v1/patients"}
    assert not audit_rows(db, patient_id=t.b.patients[0], action="list")


def test_break_the_glass_opens_the_record_for_a_limited_time_and_is_audited(
    two_teams: TwoTeams, api: httpx.Client, db: psycopg.Connection[Any], settings: Settings
) -> None:
    t = two_teams
    other = t.b.patients[0]
    assert api.get(f"/api/v1/patients/{other}", headers=t.a_headers).status_code == 404
    short = api.post(f"/api/v1/patients/{other}/emergency-access", headers=t.a_headers, json={"reason": "akutt"})
    assert short.status_code == 422
    reason = "Pasienten er innlagt akutt hos oss, trenger målingene"
    granted = api.post(f"/api/v1/patients/{other}/emergency-access", headers=t.a_headers, json={"reason": reason})
    assert granted.status_code == 201, granted.text
    expires = datetime.fromisoformat(granted.json()["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(minutes=60)

    record = api.get(f"/api/v1/patients/{other}", headers=t.a_headers)
    assert record.status_code == 200 and record.json()["emergency_access"] is True
    assert api.get(f"/api/v1/patients/{other}/measurements", headers=t.a_headers).status_code == 200
    queue = api.get("/api/v1/alarms", headers=t.a_headers).json()["items"]
    assert str(t.b_alarm) in {a["id"] for a in queue}
    me = api.get("/api/v1/me", headers=t.a_headers).json()
    assert [g["patient_id"] for g in me["emergency_access"]] == [str(other)]

    rows = [r for r in audit_rows(db, patient_id=other) if r["username"] == t.a.nurse and r["outcome"] == "ok"]
    assert {r["action"] for r in rows} >= {"emergency_access", "read", "list"}
    assert all(r["emergency"] and r["reason"] == reason for r in rows)

    # The owning team sees the emergency access in the patient's access log (innsynslogg).
    log = api.get(f"/api/v1/patients/{other}/access-log", headers=headers_for(str(api.base_url), t.b)).json()
    assert any(e["username"] == t.a.nurse and e["emergency"] and e["reason"] == reason for e in log["items"])

    db.execute("UPDATE emergency_access SET expires_at = now() - interval '1 second' WHERE patient_id = %s", (other,))
    assert api.get(f"/api/v1/patients/{other}", headers=t.a_headers).status_code == 404
    assert str(t.b_alarm) not in {a["id"] for a in api.get("/api/v1/alarms", headers=t.a_headers).json()["items"]}


def test_administrators_cannot_break_the_glass_and_nurses_cannot_read_the_audit_log(
    two_teams: TwoTeams, api: httpx.Client, settings: Settings
) -> None:
    t = two_teams
    admin, password, _ = add_user(settings, "admin", [])
    admin_headers = login(str(api.base_url), admin, password)
    refused = api.post(
        f"/api/v1/patients/{t.b.patients[0]}/emergency-access",
        headers=admin_headers,
        json={"reason": "Vil bare se litt på journalen"},
    )
    assert refused.status_code == 403
    assert api.get("/api/v1/audit", headers=t.a_headers).status_code == 403


def test_admin_audit_log_filters_and_pages(two_teams: TwoTeams, api: httpx.Client, settings: Settings) -> None:
    t = two_teams
    own = t.a.patients[0]
    for _ in range(3):
        api.get(f"/api/v1/patients/{own}", headers=t.a_headers)
    admin, password, _ = add_user(settings, "admin", [])
    headers = login(str(api.base_url), admin, password)
    first = api.get("/api/v1/audit", headers=headers, params={"patient_id": str(own), "limit": 2})
    assert first.status_code == 200
    page = first.json()
    assert len(page["items"]) == 2 and page["next"]
    rest = api.get(
        "/api/v1/audit", headers=headers, params={"patient_id": str(own), "limit": 100, "cursor": page["next"]}
    ).json()
    items = page["items"] + rest["items"]
    assert len({i["id"] for i in items}) == len(items) >= 3
    assert all(i["patient_id"] == str(own) for i in items)
    assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)
    denied = api.get("/api/v1/audit", headers=headers, params={"outcome": "denied", "user_id": str(uuid.uuid4())})
    assert denied.json()["items"] == []
    bad = api.get("/api/v1/audit", headers=headers, params={"cursor": "bm90LWEtY3Vyc29y"})
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")


def test_audit_log_refuses_updates_and_deletes(db: psycopg.Connection[Any], two_teams: TwoTeams) -> None:
    with pytest.raises(psycopg.errors.RaiseException):
        db.execute("UPDATE audit_log SET outcome = 'ok' WHERE outcome = 'denied'")
    with pytest.raises(psycopg.errors.RaiseException):
        db.execute("DELETE FROM audit_log")
