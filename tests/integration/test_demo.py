"""`varde demo` against the live test stack: 25 patients in two teams with running gateways, the alarms their
scenarios call for, working logins, and a second run that reuses everything without storing anything twice."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from device_simulators.scenarios import SCENARIOS
from store.settings import varde_home
from tests.integration.conftest import login
from varde.demo import NURSE, PHYSICIAN, ROSTER, TEAMS, run_demo

pytestmark = pytest.mark.integration


def _readings_before(db: psycopg.Connection[Any], patient_ids: list[str], moment: datetime) -> int:
    row = db.execute(
        "SELECT count(*) FROM readings WHERE patient_id = ANY(%s::uuid[]) AND measured_at < %s", (patient_ids, moment)
    ).fetchone()
    return int(row[0]) if row else 0


def test_demo_sets_up_two_teams_of_patients_with_their_alarms_and_a_second_run_reuses_them(
    db: psycopg.Connection[Any], api_url: str
) -> None:
    first = run_demo(varde_home(), spot_check_minutes=0, fresh=True, keep_stack=True, exit_after_s=0)
    patients = first["patients"]
    assert len(patients) == len(ROSTER) == 25
    assert {p["team"] for p in patients} == set(TEAMS)
    for patient, entry in zip(patients, ROSTER, strict=True):
        spec = SCENARIOS[entry.scenario]
        raised = set(patient["alarms"])
        assert raised <= spec.allowed_rules, (entry.scenario, raised)
        if entry.onset is not None and entry.onset <= -2:
            assert spec.expected_rules <= raised, (entry.scenario, raised)
    ids = [p["patient_id"] for p in patients]
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
