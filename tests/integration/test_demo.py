"""`varde demo` against the live test stack: 25 patients in two teams with running gateways, the alarms their
scenarios call for, working logins, readings that went through the virtual devices' GATT bytes and the edge's own
device handlers, and a second run that reuses everything without storing anything twice."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from device_simulators.home import DEVICE_MODELS
from device_simulators.scenarios import SCENARIOS
from edge_agent.devices import DEVICE_CLOCK_RESET
from store.settings import varde_home
from tests.stack_plugin import login, wait_for
from varde.demo import NURSE, PATIENT_LOGIN, PHYSICIAN, RELATIVE_LOGIN, ROSTER, TEAMS, run_demo

pytestmark = pytest.mark.integration


def _readings_before(db: psycopg.Connection[Any], patient_ids: list[str], moment: datetime) -> int:
    row = db.execute(
        "SELECT count(*) FROM readings WHERE patient_id = ANY(%s::uuid[]) AND measured_at < %s", (patient_ids, moment)
    ).fetchone()
    return int(row[0]) if row else 0


def test_demo_sets_up_two_teams_of_patients_with_their_alarms_and_a_second_run_reuses_them(
    db: psycopg.Connection[Any], api_url: str
) -> None:
    first = run_demo(
        varde_home(),
        spot_check_minutes=0,
        fresh=True,
        keep_stack=True,
        exit_after_s=0,
        on_ready=lambda summary: _assert_the_whole_product_while_running(db, api_url, summary),
    )
    patients = first["patients"]
    assert len(patients) == len(ROSTER) == 25
    assert {p["team"] for p in patients} == set(TEAMS)
    for patient, entry in zip(patients, ROSTER, strict=True):
        spec = SCENARIOS[entry.scenario]
        raised = set(patient["alarms"])
        assert raised <= spec.allowed_rules, (entry.scenario, raised)
        if entry.onset is not None and entry.onset <= -2:
            assert not spec.missing(raised), (entry.scenario, raised)
    ids = [p["patient_id"] for p in patients]
    enrolled = db.execute(
        "SELECT count(*) FROM care_episodes WHERE patient_id = ANY(%s::uuid[]) AND status = 'active'", (ids,)
    ).fetchone()
    assert enrolled == (len(ids),)  # every demo patient is in an episode of follow-up
    _assert_read_through_devices(db, patients)
    moment = datetime.now(UTC)
    stored = _readings_before(db, ids, moment)
    assert stored > 2000

    for username in (NURSE, PHYSICIAN):
        headers = login(api_url, username, first["logins"][username])
        items = httpx.get(f"{api_url}/api/v1/alarms", headers=headers, params={"limit": 500}).json()["items"]
        assert {a["patient_id"] for a in items} <= set(ids)
        assert len({a["patient_id"] for a in items}) >= 5

    second = run_demo(varde_home(), spot_check_minutes=0, keep_stack=True, exit_after_s=0)
    assert [p["patient_id"] for p in second["patients"]] == ids
    assert [p["gateway_id"] for p in second["patients"]] == [p["gateway_id"] for p in patients]
    assert second["logins"][NURSE] != first["logins"][NURSE]
    assert _readings_before(db, ids, moment) == stored
    login(api_url, NURSE, second["logins"][NURSE])

    # The patient app's local demo sign-in: the first patient sees their own measurements, the relative theirs too.
    app = second["patient_app"]  # fresh passwords each run
    for username in (PATIENT_LOGIN, RELATIVE_LOGIN):
        client = httpx.Client(base_url=api_url, timeout=30)
        signed = client.post("/api/v1/min/session", json={"username": username, "password": app["logins"][username]})
        assert signed.status_code == 204
        acting = client.get("/api/v1/min/me").json()["patients"]
        assert [p["patient_id"] for p in acting] == [patients[0]["patient_id"]]
        assert client.get(f"/api/v1/min/patients/{ids[0]}/measurements").json()["kinds"]


def _assert_the_whole_product_while_running(db: psycopg.Connection[Any], api_url: str, summary: dict[str, Any]) -> None:
    """What the demo promises beyond the queue, checked while it runs (its loopback receivers are up): a plan for
    every patient, a missed measurement raised, the silent gateway and the device clock for the nurse, the record
    system receiving documents, and an on-call target for each team."""
    patients = {p["scenario"]: p for p in summary["patients"]}
    ids = [p["patient_id"] for p in summary["patients"]]
    planned = db.execute(
        "SELECT count(DISTINCT patient_id) FROM self_management_plans "
        "WHERE patient_id = ANY(%s::uuid[]) AND status = 'active'",
        (ids,),
    ).fetchone()
    assert planned == (len(ids),)

    # The patient who is away measures nothing: the weighing their plan has due just after the demo starts is in
    # the nurse's queue within a few minutes (the deadline, then the rules service's next run).
    missing = patients["missed_measurements"]["patient_id"]
    nurse = login(api_url, NURSE, summary["logins"][NURSE])
    (deadline,) = db.execute(
        "SELECT s->>'deadline' FROM self_management_plans pl, jsonb_array_elements(pl.body->'schedule') s "
        "WHERE pl.patient_id = %s AND pl.status = 'active' AND s->>'kind' = 'body_weight'",
        (missing,),
    ).fetchone()

    def missed_in_queue() -> dict[str, Any] | None:
        queue = httpx.get(f"{api_url}/api/v1/alarms", headers=nurse, params={"limit": 500}, timeout=30).json()
        found = [a for a in queue["items"] if a["patient_id"] == missing and a["rule"] == "missed.body_weight"]
        return found[0] if found else None

    waited = time.monotonic()
    alarm = wait_for(missed_in_queue, timeout=240, interval=5, what="the missed weighing in the nurse's queue")
    print(f"\nmissed weighing (due {deadline}) in the queue {time.monotonic() - waited:.0f} s after the demo was ready")
    today = datetime.now(ZoneInfo("Europe/Oslo"))
    assert alarm["severity"] == "missed"
    assert alarm["explanation_nb"].startswith(f"Ingen måling av vekt {today:%d.%m.} før kl. {deadline}")
    assert alarm["explanation_en"].startswith(f"No body weight measurement on {today:%Y-%m-%d} by {deadline}")
    other = [
        a["patient_id"]
        for a in httpx.get(f"{api_url}/api/v1/alarms", headers=nurse, params={"limit": 500}, timeout=30).json()["items"]
        if a["rule"].startswith("missed.") and a["patient_id"] != missing
    ]
    # Everyone else measured by their deadlines since their plans began (the offline home's gateway may not have).
    assert set(other) <= {patients["gateway_offline"]["patient_id"]}, other

    headers = login(api_url, NURSE, summary["logins"][NURSE])
    items = httpx.get(f"{api_url}/api/v1/attention", headers=headers, timeout=30).json()["items"]
    seen = {(i["kind"], str(i["patient_id"])) for i in items}
    assert ("silent_gateway", patients["gateway_offline"]["patient_id"]) in seen, items
    assert ("device_clock", patients["device_clock_wrong"]["patient_id"]) in seen, items

    def delivered() -> int:
        row = db.execute(
            "SELECT count(*) FROM journal_outbox o JOIN record_endpoints e ON e.id = o.endpoint_id "
            "WHERE e.name = 'demo-ehr' AND o.state = 'delivered' AND o.patient_ids && %s::uuid[]",
            (ids,),
        ).fetchone()
        return int(row[0]) if row else 0

    wait_for(delivered, timeout=30, what="record documents delivered to the demo's loopback record system")

    targets = db.execute(
        "SELECT t.name, count(e.id) FILTER (WHERE e.active) FROM care_teams t "
        "LEFT JOIN escalation_targets e ON e.team_id = t.id WHERE t.name = ANY(%s) GROUP BY t.name",
        (list(TEAMS),),
    ).fetchall()
    assert sorted(targets) == sorted((team, 1) for team in TEAMS), targets


def _assert_read_through_devices(db: psycopg.Connection[Any], patients: list[dict[str, Any]]) -> None:
    """What only the GATT path can produce: models from Device Information, values decoded from a scale in pounds
    and a thermometer in °F, and records stamped before a device's clock reset."""
    ids = [p["patient_id"] for p in patients]
    models = db.execute(
        "SELECT DISTINCT device_type, device_model FROM readings WHERE patient_id = ANY(%s::uuid[])", (ids,)
    ).fetchall()
    assert dict(models) == {t: DEVICE_MODELS[t] for t, _ in models}  # type: ignore[index]
    # The gateways were configured without a model: each read it from the device and remembered it.
    for patient in patients:
        state = json.loads((varde_home() / "demo" / "gateways" / patient["gateway_id"] / "devices.json").read_text())
        assert {d["model"] for d in state["devices"].values()} <= set(DEVICE_MODELS.values())

    def values(index: int, kind: str) -> list[float]:
        rows = db.execute(
            "SELECT value FROM readings WHERE patient_id = %s AND kind = %s", (patients[index]["patient_id"], kind)
        ).fetchall()
        assert rows, (index, kind)
        return [float(r[0]) for r in rows]

    pounds = [i for i, e in enumerate(ROSTER) if e.imperial and SCENARIOS[e.scenario].protocol == "heart_failure"]
    fahrenheit = [i for i, e in enumerate(ROSTER) if e.imperial and SCENARIOS[e.scenario].protocol == "general"]
    assert pounds and fahrenheit
    for kg in values(pounds[0], "body_weight"):  # 0.01 lb steps × 0.45359237 kg/lb, never a whole 0.1 kg
        assert abs(kg * 10 - round(kg * 10)) > 1e-6
        assert round(kg / 0.45359237, 2) * 0.45359237 == pytest.approx(kg, abs=1e-9)
    for cel in values(fahrenheit[0], "body_temperature"):  # 0.1 °F steps, converted by the gateway
        assert round(cel * 9 / 5 + 32, 1) == pytest.approx(cel * 9 / 5 + 32, abs=1e-9)
    assert any(abs(c * 10 - round(c * 10)) > 1e-6 for c in values(fahrenheit[0], "body_temperature"))

    clock = next(p for p in patients if p["scenario"] == "device_clock_wrong")
    flags = db.execute(
        "SELECT DISTINCT unnest(flags) FROM readings WHERE patient_id = %s AND device_type = 'blood_pressure_monitor'",
        (clock["patient_id"],),
    ).fetchall()
    assert {DEVICE_CLOCK_RESET, "device_clock_corrected"} <= {f[0] for f in flags}
