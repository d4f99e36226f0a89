"""FHIR Bulk Data `$export` against the running API: 1 000 patients with 90 days of readings (written straight into
the tables with COPY), kick-off → status polling → manifest → NDJSON files that validate line by line with
fhir.resources; the pseudonymised variant holds no national id, name, Varde id or true date; only the data_export
role may export, and it cannot read patients' records."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from store.settings import Settings
from tests.integration.api.conftest import add_user, audit_rows
from tests.integration.conftest import Tenant, login, wait_for

pytestmark = pytest.mark.integration

PATIENTS = 1000
DAYS = 90
BP_EVERY = 7
ASYNC = {"Prefer": "respond-async"}


@dataclass
class Cohort:
    team: str
    team_id: UUID
    patients: list[UUID]
    national_ids: list[str]
    names: list[str]
    birth_dates: list[date]
    offsets: dict[int, UUID]
    """seconds past the hour → patient: every patient measures at a second of its own."""
    times: dict[UUID, list[datetime]]
    headers: dict[str, str]
    observations: int
    seconds_to_load: float
    username: str


@pytest.fixture(scope="module")
def cohort(api_url: str) -> Cohort:
    from varde.admin import add_team

    settings = Settings()
    started = time.monotonic()
    suffix = secrets.token_hex(4)
    team = f"export-{suffix}"
    team_id = add_team(settings, team)
    username, password, _ = add_user(settings, "data_export", [team])
    patients = [uuid.uuid4() for _ in range(PATIENTS)]
    run_year, run = secrets.randbelow(100), secrets.randbelow(100)  # unique across runs on a kept database
    national_ids = [f"{i % 28 + 1:02d}{i // 28 % 12 + 1:02d}{run_year:02d}{i:03d}{run:02d}" for i in range(PATIENTS)]
    names = [f"Eksport{i:04d} Testesen{suffix}" for i in range(PATIENTS)]
    births = [date(1930 + i % 60, i % 12 + 1, i % 28 + 1) for i in range(PATIENTS)]
    start = datetime.now(UTC).replace(hour=7, minute=0, second=0, microsecond=0) - timedelta(days=DAYS)
    offsets: dict[int, UUID] = {}
    times: dict[UUID, list[datetime]] = defaultdict(list)
    observations = 0
    with psycopg.connect(settings.require_database_url()) as conn:
        with conn.cursor() as cur:
            with cur.copy(
                "COPY patients (id, display_name, national_id, birth_date, team_id, protocol) FROM STDIN"
            ) as cp:
                for pid, name, nid, born in zip(patients, names, national_ids, births, strict=True):
                    cp.write_row((pid, name, nid, born, team_id, "heart_failure"))
            with cur.copy(
                "COPY readings (id, patient_id, gateway_id, kind, value, measured_at, received_at, device_address, "
                "device_type, device_model, grp, flags) FROM STDIN"
            ) as cp:
                for i, pid in enumerate(patients):
                    gw = f"gw-export-{i}"
                    second = timedelta(seconds=i * 3 + 1)  # up to 50 minutes past 07:00, one per patient
                    offsets[(i * 3 + 1)] = pid
                    for day in range(DAYS):
                        at = start + timedelta(days=day) + second
                        times[pid].append(at)
                        cp.write_row((uuid.uuid4(), pid, gw, "spo2", 90.0 + (i + day) % 9, at, at, "A4:C1:38:00:00:01",
                                      "pulse_oximeter", "PO-60", None, []))  # fmt: skip
                        observations += 1
                        if day % BP_EVERY == 0:
                            bp_at = at + timedelta(minutes=5)
                            times[pid].append(bp_at)
                            grp = uuid.uuid4().hex
                            for kind, value in (("bp_systolic", 140.0), ("bp_diastolic", 85.5), ("bp_mean", 103.7)):
                                cp.write_row((uuid.uuid4(), pid, gw, kind, value, bp_at, bp_at, "A4:C1:38:00:00:02",
                                              "blood_pressure_monitor", "UA-651", grp, []))  # fmt: skip
                            observations += 1
        conn.commit()
    loaded = time.monotonic() - started
    return Cohort(team, team_id, patients, national_ids, names, births, offsets, dict(times),
                  login(api_url, username, password), observations, loaded, username)  # fmt: skip


def _run(api: httpx.Client, cohort: Cohort, url: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    kick = api.get(url, headers={**cohort.headers, **ASYNC})
    assert kick.status_code == 202, kick.text
    status_url = kick.headers["content-location"]
    seen_progress: list[str] = []

    def done() -> httpx.Response | None:
        response = api.get(status_url, headers=cohort.headers)
        if response.status_code == 202:
            seen_progress.append(response.headers["x-progress"])
            assert int(response.headers["retry-after"]) >= 1
            return None
        return response

    final = wait_for(done, timeout=600, interval=1.0, what="the export to finish")
    assert final.status_code == 200, final.text
    return final.json(), time.monotonic() - started


def _lines(api: httpx.Client, cohort: Cohort, manifest: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for item in manifest["output"]:
        response = api.get(item["url"], headers=cohort.headers)
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/fhir+ndjson")
        lines = response.text.splitlines()
        assert len(lines) == item["count"]
        out[item["type"]] += lines
    return out


def _validate(chunk: list[str]) -> int:
    from fhir.resources.R4B import get_fhir_model_class

    for line in chunk:
        resource_type = json.loads(line)["resourceType"]
        get_fhir_model_class(resource_type).model_validate_json(line)
    return len(chunk)


def _validate_all(lines: list[str]) -> int:
    chunks = [lines[i : i + 5000] for i in range(0, len(lines), 5000)]
    with ProcessPoolExecutor(max_workers=2) as pool:
        return sum(pool.map(_validate, chunks))


def test_export_of_a_thousand_patients_validates_line_by_line(
    cohort: Cohort, api: httpx.Client, db: psycopg.Connection[Any]
) -> None:
    manifest, seconds = _run(api, cohort, "/fhir/Patient/$export?_type=Patient,Observation")
    load = cohort.seconds_to_load
    print(
        f"\nexport: {PATIENTS} patients, {cohort.observations} observations, "
        f"loaded {load:.1f} s, exported {seconds:.1f} s"
    )
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    files = _lines(api, cohort, manifest)
    assert len(files["Patient"]) == PATIENTS and len(files["Observation"]) == cohort.observations
    # Every line is JSON of its file's type, and fhir.resources validates every line (about 70 s for 104 000 lines
    # on two loaded cores; VARDE_EXPORT_VALIDATE_EVERY=10 checks every tenth Observation while developing).
    for rtype, lines in files.items():
        assert all(json.loads(line)["resourceType"] == rtype for line in lines)
    step = int(os.environ.get("VARDE_EXPORT_VALIDATE_EVERY", "1"))
    sample = files["Patient"] + files["Observation"][::step]
    started = time.monotonic()
    assert _validate_all(sample) == len(sample)
    print(f"validated {len(sample)} lines with fhir.resources in {time.monotonic() - started:.1f} s")
    patients = {json.loads(line)["id"] for line in files["Patient"]}
    assert patients == {str(p) for p in cohort.patients}
    panels = [o for o in map(json.loads, files["Observation"]) if o["code"]["coding"][0]["code"] == "85354-9"]
    assert len(panels) == PATIENTS * len(range(0, DAYS, BP_EVERY))
    assert [c["valueQuantity"]["value"] for c in panels[0]["component"]] == [140.0, 85.5, 103.7]
    rows = audit_rows(db, action="export", resource="/fhir/Patient/$export", username=cohort.username)
    mine = [r for r in rows if r["patient_id"] is None and f"of {PATIENTS} patients" in (r["reason"] or "")]
    assert len(mine) == 1 and mine[0]["role"] == "data_export" and mine[0]["reason"].startswith("identified")
    per_patient = audit_rows(db, action="export", patient_id=cohort.patients[0])
    assert per_patient  # an identified export is in every exported patient's audit trail


def test_pseudonymised_export_has_no_direct_identifier_and_no_true_date(cohort: Cohort, api: httpx.Client) -> None:
    url = f"/fhir/Group/{cohort.team_id}/$export?_type=Patient,Observation&pseudonymised=true"
    manifest, _ = _run(api, cohort, url)
    files = _lines(api, cohort, manifest)
    text = "\n".join(files["Patient"] + files["Observation"])
    assert not set(re.findall(r"(?<!\d)\d{11}(?!\d)", text)) & set(cohort.national_ids)
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text)  # no Varde id at all
    for word in ("Eksport", "Testesen", cohort.team, "urn:oid:2.16.578.1.12.4.1.4", "gw-export", "A4:C1"):
        assert word not in text
    patients = [json.loads(line) for line in files["Patient"]]
    assert len(patients) == PATIENTS
    assert all(set(p) <= {"resourceType", "id", "meta", "active", "birthDate"} for p in patients)
    assert all(len(p["birthDate"]) == 4 for p in patients)  # the shifted year only
    _validate(files["Patient"] + files["Observation"][:2000])
    # Every patient's readings are shifted by one constant of at least 30 days: the order and spacing of the
    # measurements stay, their true dates do not. The second past the hour tells which patient a series is.
    by_subject: dict[str, list[datetime]] = defaultdict(list)
    for line in files["Observation"]:
        obs = json.loads(line)
        by_subject[obs["subject"]["reference"]].append(datetime.fromisoformat(obs["effectiveDateTime"]))
    assert len(by_subject) == PATIENTS
    shifts = set()
    for exported in by_subject.values():
        exported.sort()
        second = exported[0].minute * 60 + exported[0].second
        original = sorted(cohort.times[cohort.offsets[second]])
        deltas = {e - o for e, o in zip(exported, original, strict=True)}
        assert len(deltas) == 1
        (delta,) = deltas
        assert abs(delta) >= timedelta(days=30) and delta % timedelta(days=1) == timedelta(0)
        shifts.add(delta)
    assert len(shifts) > 10  # shifted per patient, not all alike
    again, _ = _run(api, cohort, f"/fhir/Group/{cohort.team_id}/$export?_type=Patient&pseudonymised=true")
    other_ids = {json.loads(line)["id"] for line in _lines(api, cohort, again)["Patient"]}
    assert len(other_ids) == PATIENTS and not other_ids & {p["id"] for p in patients}  # unlinkable across exports


def test_only_the_export_role_may_export_and_it_cannot_read_records(
    cohort: Cohort, api: httpx.Client, make_tenant: Callable[..., Tenant], api_url: str
) -> None:
    tenant = make_tenant()
    nurse = login(api_url, tenant.nurse, tenant.nurse_password)
    refused = api.get("/fhir/Patient/$export", headers={**nurse, **ASYNC})
    assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome"
    assert api.get(f"/fhir/Patient/{cohort.patients[0]}", headers=cohort.headers).status_code == 404
    assert api.get(f"/fhir/Observation?patient={cohort.patients[0]}", headers=cohort.headers).json()["total"] == 0
    listed = api.get("/api/v1/patients", headers=cohort.headers)
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []
    assert api.get(f"/fhir/Group/{tenant.team_id}/$export", headers={**cohort.headers, **ASYNC}).status_code == 404
    no_async = api.get("/fhir/Patient/$export", headers=cohort.headers)
    assert no_async.status_code == 400 and no_async.json()["resourceType"] == "OperationOutcome"
    unknown = api.get("/fhir/Patient/$export?_typeFilter=x", headers={**cohort.headers, **ASYNC})
    assert unknown.status_code == 400


def test_a_deleted_export_is_gone(cohort: Cohort, api: httpx.Client) -> None:
    kick = api.get(f"/fhir/Group/{cohort.team_id}/$export?_type=Patient", headers={**cohort.headers, **ASYNC})
    status_url = kick.headers["content-location"]
    assert api.delete(status_url, headers=cohort.headers).status_code == 202
    assert api.get(status_url, headers=cohort.headers).status_code == 404
