"""FHIR Bulk Data `$export` against the running API: 1 000 patients with 90 days of readings (written straight into
the tables with COPY, once for the module), some of them with gateways, devices, plans and alarms (a missed
measurement among them), kick-off → status polling → manifest → NDJSON files whose every line parses and whose every
distinct shape (plus a fixed-seed sample) validates with fhir.resources; the pseudonymised variant of every type holds
no national id, name, Varde id, free text or true date in any format; only the data_export role may export, and it
cannot read patients' records."""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from rules_engine.missed import explain_missed
from store.settings import Settings
from tests.fhir_dates import TrueDates, true_dates_in
from tests.fhir_shapes import lines_to_validate, validate
from tests.integration.api.support import a_plan, add_user, audit_rows
from tests.stack_plugin import Tenant, login, wait_for
from vitals import Kind

pytestmark = pytest.mark.integration

PATIENTS = 1000
DAYS = 90
BP_EVERY = 7
EQUIPPED = 12
"""The first patients also have a gateway with two devices, an active plan and alarms (one a missed measurement)."""
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
    truth: TrueDates
    """Every true day and instant of the cohort's data, which the pseudonymised export must not reveal."""
    free_texts: list[str]


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
                    gw = f"gw-export-{suffix}-{i}"
                    second = timedelta(seconds=i * 3 + 1)  # up to 50 minutes past 07:00, one per patient
                    offsets[(i * 3 + 1)] = pid
                    for day in range(DAYS):
                        # The microseconds tell the day: a reading shifted by whole days never lands on a true one.
                        at = start + timedelta(days=day, microseconds=(day + 1) * 1000) + second
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
        free_texts, moments = _equip(conn, patients[:EQUIPPED], start, suffix)
        conn.commit()
    truth = TrueDates()
    for moment in [*births, *(t for ts in times.values() for t in ts)]:
        truth.add(moment)
    for moment in moments:
        truth.add(moment)
    loaded = time.monotonic() - started
    return Cohort(team, team_id, patients, national_ids, names, births, offsets, dict(times),
                  login(api_url, username, password), observations, loaded, username, truth, free_texts)  # fmt: skip


def _equip(
    conn: psycopg.Connection[Any], patients: list[UUID], start: datetime, suffix: str
) -> tuple[list[str], list[datetime | date]]:
    """A gateway with the two devices the readings came from, an active plan whose diagnosis is free text with a
    date in it, a resolved red alarm with a resolution naming a nurse and an open missed-measurement alarm whose
    text carries the missed day; returns the free texts and every moment written. Each moment has microseconds of
    its own, so no reading shifted by whole days can land on one."""
    texts = [f"Ringte Sykepleier{suffix}", f"KOLS{suffix}, innlagt 14.03.2025"]
    moments: list[datetime | date] = [date(2025, 3, 14)]
    for n, pid in enumerate(patients):
        at = start + timedelta(days=40 + n, hours=6, seconds=n, microseconds=500_000 + n)
        conn.execute(
            "INSERT INTO gateways (id, patient_id, secret_hash, agent_version, state) "
            "VALUES (%s, %s, 'x', %s, 'online')",
            (f"gw-export-{suffix}-{n}", pid, f"9.{n}.7"),
        )
        for address, dtype in (
            ("A4:C1:38:00:00:01", "pulse_oximeter"),
            ("A4:C1:38:00:00:02", "blood_pressure_monitor"),
        ):
            conn.execute(
                "INSERT INTO devices (gateway_id, address, type, model, first_seen_at, last_seen_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (f"gw-export-{suffix}-{n}", address, dtype, f"Model-{suffix}", at, at),
            )
        conn.execute(
            "INSERT INTO self_management_plans (patient_id, version, status, body, created_at, activated_at) "
            "VALUES (%s, 1, 'active', %s, %s, %s)",
            (pid, psycopg.types.json.Jsonb(a_plan(diagnosis=texts[1])), at, at + timedelta(minutes=3)),
        )
        missed_day = (at + timedelta(days=2)).date()
        nb, en = explain_missed(Kind.SPO2, "10:00", missed_day)
        conn.execute(
            "INSERT INTO alarms (patient_id, rule, kind, severity, state, opened_at, updated_at, explanation_nb, "
            "explanation_en, details) VALUES (%s, 'missed.spo2', 'spo2', 'missed', 'open', %s, %s, %s, %s, %s)",
            (pid, at + timedelta(days=2, hours=2), at + timedelta(days=2, hours=2), nb, en,
             psycopg.types.json.Jsonb({"last_missed_day": missed_day.isoformat()})),
        )  # fmt: skip
        conn.execute(
            "INSERT INTO alarms (patient_id, rule, kind, severity, state, opened_at, updated_at, first_value, "
            "last_value, limit_value, explanation_nb, explanation_en, acknowledged_at, resolved_at, resolution) "
            "VALUES (%s, 'threshold.spo2.low', 'spo2', 'red', 'resolved', %s, %s, 85, 85, 86, %s, %s, %s, %s, %s)",
            (pid, at + timedelta(days=5), at + timedelta(days=5, hours=1), f"SpO2 85 % målt {at:%d.%m.%Y}",
             f"SpO2 85 % on {at:%Y-%m-%d}", at + timedelta(days=5, minutes=20), at + timedelta(days=5, hours=1),
             texts[0]),
        )  # fmt: skip
        moments += [at, at + timedelta(minutes=3), missed_day, at + timedelta(days=2, hours=2)]
        moments += [at + timedelta(days=5), at + timedelta(days=5, hours=1), at + timedelta(days=5, minutes=20)]
    return texts, moments


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


def test_export_of_a_thousand_patients_parses_line_by_line_and_validates_every_shape(
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
    # Every line is parsed as JSON of its file's type with an id of its own, and the patients' ids are the
    # cohort's. fhir.resources validates every Patient, one Observation of every distinct shape (tests/fhir_shapes.py:
    # the text with ids and digits masked) and a fixed-seed sample of the rest: validating all 103 000
    # Observations took 62-99 s on two loaded cores, and lines of one shape differ only in their ids and digits.
    parsed = {rtype: [json.loads(line) for line in lines] for rtype, lines in files.items()}
    for rtype, resources in parsed.items():
        assert all(r["resourceType"] == rtype for r in resources)
        assert len({r["id"] for r in resources}) == len(resources), f"an id repeated among the {rtype} lines"
    observations, shapes = lines_to_validate(files["Observation"], sample=2000, seed=20261207)
    started = time.monotonic()
    assert validate(files["Patient"] + observations) == PATIENTS + len(observations)
    print(
        f"validated {PATIENTS} Patients and {len(observations)} of {cohort.observations} Observations "
        f"({shapes} distinct shapes) with fhir.resources in {time.monotonic() - started:.1f} s"
    )
    patients = {r["id"] for r in parsed["Patient"]}
    assert patients == {str(p) for p in cohort.patients}
    panels = [o for o in parsed["Observation"] if o["code"]["coding"][0]["code"] == "85354-9"]
    assert len(panels) == PATIENTS * len(range(0, DAYS, BP_EVERY))
    assert [c["valueQuantity"]["value"] for c in panels[0]["component"]] == [140.0, 85.5, 103.7]
    rows = audit_rows(db, action="export", resource="/fhir/Patient/$export", username=cohort.username)
    mine = [r for r in rows if r["patient_id"] is None and f"of {PATIENTS} patients" in (r["reason"] or "")]
    assert len(mine) == 1 and mine[0]["role"] == "data_export" and mine[0]["reason"].startswith("identified")
    per_patient = audit_rows(db, action="export", patient_id=cohort.patients[0])
    assert per_patient  # an identified export is in every exported patient's audit trail


def test_pseudonymised_export_has_no_direct_identifier_and_no_true_date(cohort: Cohort, api: httpx.Client) -> None:
    manifest, _ = _run(api, cohort, f"/fhir/Group/{cohort.team_id}/$export?pseudonymised=true")  # every type
    files = _lines(api, cohort, manifest)
    assert set(files) == {"Patient", "Observation", "Device", "CarePlan", "DetectedIssue"}
    assert (len(files["Device"]), len(files["CarePlan"]), len(files["DetectedIssue"])) == (
        3 * EQUIPPED, EQUIPPED, 2 * EQUIPPED)  # fmt: skip
    text = "\n".join(line for lines in files.values() for line in lines)
    assert not set(re.findall(r"(?<!\d)\d{11}(?!\d)", text)) & set(cohort.national_ids)
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text)  # no Varde id at all
    for word in ("Eksport", "Testesen", cohort.team, "urn:oid:2.16.578.1.12.4.1.4", "gw-export", "A4:C1", "A4-C1",
                 "Model-", "Ingen måling", "planen", "målt", *cohort.free_texts):  # fmt: skip
        assert word not in text
    # Every string of every line, scanned for every true day and instant of the cohort in every common format.
    assert true_dates_in(text, cohort.truth) == []
    patients = [json.loads(line) for line in files["Patient"]]
    assert len(patients) == PATIENTS
    assert all(set(p) <= {"resourceType", "id", "meta", "active", "birthDate"} for p in patients)
    assert all(len(p["birthDate"]) == 4 for p in patients)  # the shifted year only
    others = files["Device"] + files["CarePlan"] + files["DetectedIssue"]
    validate(files["Patient"] + files["Observation"][:2000] + others)
    issues = [json.loads(line) for line in files["DetectedIssue"]]
    codes = sorted(i["code"]["coding"][0]["code"] for i in issues)
    assert codes == sorted(["missed.spo2", "threshold.spo2.low"] * EQUIPPED)
    assert all("detail" not in i for i in issues)
    # Every patient's readings are shifted by one constant of at least 30 days: the order and spacing of the
    # measurements stay, their true dates do not. The second past the hour tells which patient a series is.
    by_subject: dict[str, list[datetime]] = defaultdict(list)
    for line in files["Observation"]:
        obs = json.loads(line)
        by_subject[obs["subject"]["reference"]].append(datetime.fromisoformat(obs["effectiveDateTime"]))
    assert len(by_subject) == PATIENTS
    shifts: dict[str, timedelta] = {}
    for subject, exported in by_subject.items():
        exported.sort()
        second = exported[0].minute * 60 + exported[0].second
        original = sorted(cohort.times[cohort.offsets[second]])
        deltas = {e - o for e, o in zip(exported, original, strict=True)}
        assert len(deltas) == 1
        (delta,) = deltas
        assert abs(delta) >= timedelta(days=30) and delta % timedelta(days=1) == timedelta(0)
        shifts[subject] = delta
    assert len(set(shifts.values())) > 10  # shifted per patient, not all alike
    # A patient's alarms and plan are shifted by the same constant as their readings.
    for issue in issues:
        assert issue["patient"]["reference"] in shifts
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
