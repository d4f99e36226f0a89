"""FHIR R4 search against the running API with two independent client libraries from PyPI (fhirpy and
fhirclient) and plain HTTP: every search parameter, paging through `next` (and back through `previous`) to the
exact count, identifier search by Norwegian number type, `_include`/`_revinclude`, strict handling errors as
OperationOutcome, and the duty-of-care gate (another team's patient is absent, not refused)."""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhirclient.models.capabilitystatement import CapabilityStatement as FcCapabilityStatement
from fhirclient.models.observation import Observation as FcObservation
from fhirclient.models.patient import Patient as FcPatient
from fhirclient.server import FHIRServer
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome as FhirpyOutcome
from psycopg import sql

from tests.integration.api.support import a_plan, audit_rows, headers_for, insert_alarm
from tests.stack_plugin import Tenant

pytestmark = pytest.mark.integration

OSLO = ZoneInfo("Europe/Oslo")
SPO2 = 37
FNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.1"
DNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.2"


@dataclass
class Home:
    tenant: Tenant
    other: Tenant
    patient: UUID
    d_patient: UUID
    fnr: str
    dnr: str
    t0: datetime
    spo2_times: list[datetime]
    ids: dict[str, UUID]
    headers: dict[str, str]
    total: int


def _copy_readings(db: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> None:
    with (
        db.cursor() as cur,
        cur.copy(
            "COPY readings (id, patient_id, gateway_id, kind, value, measured_at, received_at, device_address, "
            "device_type, device_model, grp, flags) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)
    # As ingest does: every stored reading's id is in reading_ids (a read by id takes the reading's time from it).
    with db.cursor() as cur, cur.copy("COPY reading_ids (id, measured_at) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((row[0], row[5]))


@pytest.fixture
def home(make_tenant: Any, db: psycopg.Connection[Any], api_url: str) -> Home:
    """One patient with a mixed home (oximeter, cuff, scale, glucose meter and CGM), a D-nummer patient in the
    same team, and another team's patient with readings of their own."""
    tenant: Tenant = make_tenant(patients=2)
    other: Tenant = make_tenant()
    pid, d_pid = tenant.patients
    gw = tenant.gateways[0].gateway_id
    fnr = f"{secrets.randbelow(28) + 1:02d}0{secrets.randbelow(9) + 1}{secrets.randbelow(10**7):07d}"
    dnr = f"4{secrets.randbelow(10)}0{secrets.randbelow(9) + 1}{secrets.randbelow(10**7):07d}"
    db.execute("UPDATE patients SET national_id = %s, birth_date = '1950-05-17' WHERE id = %s", (fnr, pid))
    db.execute("UPDATE patients SET national_id = %s WHERE id = %s", (dnr, d_pid))
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    ox, cuff, scale, meter = "A4:C1:38:00:00:01", "A4:C1:38:00:00:02", "A4:C1:38:00:00:03", "A4:C1:38:00:00:04"
    rows: list[tuple[Any, ...]] = []
    ids: dict[str, UUID] = {}

    def add(
        name: str,
        kind: str,
        value: float,
        at: datetime,
        device: str,
        dtype: str,
        grp: str | None = None,
        flags: tuple[str, ...] = (),
    ) -> UUID:
        rid = uuid.uuid4()
        ids[name] = rid
        rows.append((rid, pid, gw, kind, value, at, at + timedelta(seconds=5), device, dtype, "M-1", grp, list(flags)))
        return rid

    spo2_times = [t0 + timedelta(hours=i) for i in range(SPO2)]
    for i, at in enumerate(spo2_times):
        add(f"spo2-{i}", "spo2", 90.0 + i % 8, at, ox, "pulse_oximeter")
    for i in range(5):
        add(f"weight-{i}", "body_weight", 82.35 + i, t0 + timedelta(hours=i, minutes=10), scale, "weight_scale")
    for i in range(3):
        at, grp = t0 + timedelta(hours=i, minutes=20), f"g{i}"
        add(f"sys-{i}", "bp_systolic", 141.0 + i, at, cuff, "blood_pressure_monitor", grp)
        add(f"dia-{i}", "bp_diastolic", 88.0, at, cuff, "blood_pressure_monitor", grp)
        add(f"map-{i}", "bp_mean", 105.5, at, cuff, "blood_pressure_monitor", grp)
    for i in range(2):
        add(f"oxpulse-{i}", "pulse_rate", 71.0, t0 + timedelta(hours=i, minutes=1), ox, "pulse_oximeter")
        add(f"cuffpulse-{i}", "pulse_rate", 74.0, t0 + timedelta(hours=i, minutes=21), cuff, "blood_pressure_monitor")
    add(
        "glucose-cap",
        "glucose",
        6.1,
        t0 + timedelta(minutes=30),
        meter,
        "glucose_meter",
        flags=("sample_capillary_whole_blood", "site_finger"),
    )
    add(
        "glucose-isf",
        "glucose",
        7.4,
        t0 + timedelta(minutes=35),
        meter,
        "glucose_meter",
        flags=("sample_interstitial_fluid",),
    )
    _copy_readings(db, rows)
    ogw = other.gateways[0]
    _copy_readings(
        db, [(uuid.uuid4(), ogw.patient_id, ogw.gateway_id, "spo2", 95.0, t0, t0, ox, "pulse_oximeter", None, None, [])]
    )
    for gateway, devices in (
        (
            gw,
            (
                (ox, "pulse_oximeter"),
                (cuff, "blood_pressure_monitor"),
                (scale, "weight_scale"),
                (meter, "glucose_meter"),
            ),
        ),
        (ogw.gateway_id, ((ox, "pulse_oximeter"),)),
    ):
        for address, dtype in devices:
            db.execute(
                "INSERT INTO devices (gateway_id, address, type, model) VALUES (%s, %s, %s, 'M-1')",
                (gateway, address, dtype),
            )
    for day, (questionnaire, version, score, zone) in enumerate((("cat", 1, 0, "green"), ("cat", 2, 4, "red"))):
        db.execute(
            "INSERT INTO questionnaire_responses (id, patient_id, gateway_id, questionnaire, plan_version, "
            "answered_at, answers, reported_score, score, zone) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (uuid.uuid4(), pid, gw, questionnaire, version, t0 + timedelta(days=day), json.dumps({"breath": "worse"}),
             score, score, zone),
        )  # fmt: skip
    total = SPO2 + 5 + 3 + 4 + 2  # the BP panels count once each: diastolic and mean are components
    return Home(tenant, other, pid, d_pid, fnr, dnr, t0, spo2_times, ids, headers_for(api_url, tenant), total)


def _fhirpy(api_url: str, home: Home, **headers: str) -> SyncFHIRClient:
    return SyncFHIRClient(f"{api_url}/fhir", authorization=home.headers["Authorization"], extra_headers=headers)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def test_fhirpy_pages_through_next_links_to_the_exact_count(api_url: str, home: Home) -> None:
    client = _fhirpy(api_url, home)
    found = client.resources("Observation").search(patient=str(home.patient)).limit(7).fetch_all()
    assert len(found) == home.total
    assert len({o["id"] for o in found}) == home.total
    times = [datetime.fromisoformat(o["effectiveDateTime"]) for o in found]
    assert times == sorted(times, reverse=True)  # the default order is newest first
    assert all(o["subject"]["reference"] == f"Patient/{home.patient}" for o in found)
    assert client.resources("Observation").search(patient=str(home.patient)).count() == home.total
    by_subject = client.resources("Observation").search(subject=f"Patient/{home.patient}").limit(50).fetch_all()
    assert {o["id"] for o in by_subject} == {o["id"] for o in found}
    ascending = client.resources("Observation").search(patient=str(home.patient)).sort("date").limit(9).fetch_all()
    assert [o["id"] for o in ascending] == [o["id"] for o in reversed(found)]


CODE_SEARCHES = [
    ("http://loinc.org|29463-7", 5),
    ("29463-7", 5),
    ("http://loinc.org|", SPO2 + 5 + 3 + 4 + 2),
    ("urn:iso:std:iso:11073:10101|149530", 2),  # oximeter pulse
    ("urn:iso:std:iso:11073:10101|149546", 2),  # cuff pulse
    ("http://loinc.org|8867-4", 4),
    ("http://loinc.org|85354-9", 3),
    ("http://loinc.org|8480-6", 0),  # a component code is not Observation.code
    ("urn:iso:std:iso:11073:10101|160184", 1),  # capillary whole blood
    ("http://loinc.org|105272-9", 1),  # interstitial fluid (CGM)
    ("http://loinc.org|14743-9,http://loinc.org|105272-9", 2),
    ("http://snomed.info/sct|29463-7", 0),
    ("|29463-7", 0),
]


def test_code_token_search(api_url: str, home: Home) -> None:
    client = _fhirpy(api_url, home)
    for code, expected in CODE_SEARCHES:
        found = client.resources("Observation").search(patient=str(home.patient), code=code).limit(100).fetch_all()
        assert len(found) == expected, code


def test_category_id_and_last_updated(api_url: str, home: Home) -> None:
    client = _fhirpy(api_url, home)
    search = client.resources("Observation").search(patient=str(home.patient))
    assert len(search.search(category="vital-signs").limit(100).fetch_all()) == home.total - 2
    lab = search.search(category="http://terminology.hl7.org/CodeSystem/observation-category|laboratory").fetch_all()
    assert {o["code"]["coding"][0]["code"] for o in lab} == {"14743-9", "105272-9"}
    one = search.search(_id=str(home.ids["weight-0"])).fetch_all()
    assert [o["valueQuantity"]["value"] for o in one] == [82.35]  # at the device's resolution, not rounded
    received_after = _iso(home.spo2_times[30] + timedelta(seconds=5))
    recent = search.search(code="http://loinc.org|59408-5", _lastUpdated=f"gt{received_after}").fetch_all()
    assert len(recent) == SPO2 - 31


def _count(client: SyncFHIRClient, home: Home, *dates: str) -> int:
    search = client.resources("Observation").search(patient=str(home.patient), code="59408-5", date=list(dates))
    return len(search.limit(100).fetch_all())


def test_date_prefixes_and_partial_dates(api_url: str, home: Home) -> None:
    client = _fhirpy(api_url, home)
    t5 = _iso(home.spo2_times[5])
    assert _count(client, home, t5) == 1
    assert _count(client, home, f"eq{t5}") == 1
    assert _count(client, home, f"ne{t5}") == SPO2 - 1
    assert _count(client, home, f"gt{t5}") == SPO2 - 6
    assert _count(client, home, f"sa{t5}") == SPO2 - 6
    assert _count(client, home, f"ge{t5}") == SPO2 - 5
    assert _count(client, home, f"lt{t5}") == 5
    assert _count(client, home, f"eb{t5}") == 5
    assert _count(client, home, f"le{t5}") == 6
    assert _count(client, home, f"ge{t5}", f"lt{_iso(home.spo2_times[9])}") == 4
    # ap: within 10 % of the distance from now (about 6.7 h here) on either side
    gap = (datetime.now(UTC) - home.spo2_times[5]) * 0.1
    expected = sum(1 for t in home.spo2_times if home.spo2_times[5] - gap <= t < home.spo2_times[5] + gap)
    assert _count(client, home, f"ap{t5}") == expected
    # Partial dates are ranges in the server's zone (Europe/Oslo) when they carry none.
    day = home.spo2_times[20].astimezone(OSLO).date()
    on_day = sum(1 for t in home.spo2_times if t.astimezone(OSLO).date() == day)
    assert _count(client, home, day.isoformat()) == on_day
    assert _count(client, home, f"gt{day.isoformat()}") == sum(
        1 for t in home.spo2_times if t.astimezone(OSLO).date() > day
    )
    month = home.spo2_times[0].astimezone(OSLO).strftime("%Y-%m")
    assert _count(client, home, month) == sum(
        1 for t in home.spo2_times if t.astimezone(OSLO).strftime("%Y-%m") == month
    )
    year = str(home.spo2_times[0].astimezone(OSLO).year)
    assert _count(client, home, f"ge{year}") == SPO2
    minute = home.spo2_times[3].astimezone(OSLO).strftime("%Y-%m-%dT%H:%M")  # no zone: Oslo time
    assert _count(client, home, minute) == 1


def test_include_and_revinclude(api_url: str, home: Home, api: httpx.Client) -> None:
    response = api.get(
        "/fhir/Observation",
        params={"patient": str(home.patient), "code": "85354-9", "_include": "Observation:device"},
        headers=home.headers,
    )
    bundle = response.json()
    Bundle.model_validate(bundle)
    modes = [(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]]
    assert modes.count(("Observation", "match")) == 3 and ("Device", "include") in modes
    panel = bundle["entry"][0]["resource"]
    components = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in panel["component"]}
    assert components == {"8480-6": 143.0, "8462-4": 88.0, "8478-0": 105.5}  # MAP is a component of the panel

    client = _fhirpy(api_url, home)
    raw = client.resources("Observation").search(patient=str(home.patient)).include("Observation", "patient")
    page = raw.limit(5).fetch_raw()
    patients = [e for e in page["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert len(patients) == 1 and patients[0]["search"]["mode"] == "include"
    assert patients[0]["resource"]["name"][0]["family"]

    rev = api.get(
        "/fhir/Patient", params={"_id": str(home.patient), "_revinclude": "Device:patient"}, headers=home.headers
    ).json()
    types = [e["resource"]["resourceType"] for e in rev["entry"]]
    assert types.count("Patient") == 1 and types.count("Device") == 5  # the gateway and four measuring devices
    assert rev["total"] == 1


def test_questionnaire_responses(api_url: str, home: Home, api: httpx.Client) -> None:
    client = _fhirpy(api_url, home)
    answers = client.resources("QuestionnaireResponse").search(patient=str(home.patient)).fetch_all()
    assert [a["questionnaire"] for a in answers] == ["urn:varde:questionnaire:cat|2", "urn:varde:questionnaire:cat|1"]
    later = client.resources("QuestionnaireResponse").search(
        subject=f"Patient/{home.patient}", authored=f"ge{_iso(home.t0 + timedelta(hours=12))}"
    )
    assert [a["item"][-1]["answer"][0]["valueString"] for a in later.fetch_all()] == ["red"]
    by_version = client.resources("QuestionnaireResponse").search(questionnaire="urn:varde:questionnaire:cat|1")
    assert len(by_version.fetch_all()) == 1
    read = api.get(f"/fhir/QuestionnaireResponse/{answers[0]['id']}", headers=home.headers)
    assert read.status_code == 200
    Bundle.model_validate(api.get(f"/fhir/Patient/{home.patient}/QuestionnaireResponse", headers=home.headers).json())
    theirs = api.get(f"/fhir/QuestionnaireResponse?patient={home.other.patients[0]}", headers=home.headers).json()
    assert theirs["total"] == 0


def test_search_by_post_is_the_same_search(home: Home, api: httpx.Client) -> None:
    form = {"patient": str(home.patient), "code": "http://loinc.org|29463-7"}
    posted = api.post("/fhir/Observation/_search", data=form, headers=home.headers)
    assert posted.status_code == 200 and posted.headers["content-type"].startswith("application/fhir+json")
    got = api.get("/fhir/Observation", params=form, headers=home.headers).json()
    assert [e["resource"]["id"] for e in posted.json()["entry"]] == [e["resource"]["id"] for e in got["entry"]]
    assert posted.json()["total"] == 5


def test_previous_links_lead_back_to_the_same_pages(home: Home, api: httpx.Client) -> None:
    url = f"/fhir/Patient/{home.patient}/Observation?_count=10"
    pages, links = [], []
    while url:
        bundle = api.get(url, headers=home.headers).json()
        pages.append([e["resource"]["id"] for e in bundle["entry"]])
        links.append({link["relation"]: link["url"] for link in bundle["link"]})
        url = links[-1].get("next", "")
    assert sum(len(p) for p in pages) == home.total and bundle["total"] == home.total
    assert "previous" not in links[0] and "next" not in links[-1]
    back = api.get(links[2]["previous"], headers=home.headers).json()
    assert [e["resource"]["id"] for e in back["entry"]] == pages[1]
    assert urlsplit(links[0]["self"]).path == f"/fhir/Patient/{home.patient}/Observation"


def test_fhirclient_reads_the_capability_statement_and_searches_by_identifier(api_url: str, home: Home) -> None:
    server = FHIRServer(None, base_uri=f"{api_url}/fhir/")
    server.session.headers["Authorization"] = home.headers["Authorization"]
    capability: FcCapabilityStatement = server.capabilityStatement
    types = {r.type for r in capability.rest[0].resource}
    assert types == {
        "Patient",
        "Observation",
        "DetectedIssue",
        "CarePlan",
        "Device",
        "QuestionnaireResponse",
        "EpisodeOfCare",
        "Group",
    }
    by_type = {r.type: r for r in capability.rest[0].resource}
    assert by_type["Group"].interaction is None and [o.name for o in by_type["Group"].operation] == ["export"]
    assert {o.name for o in by_type["Patient"].operation} == {"everything", "export"}
    assert {p.name for p in by_type["Observation"].searchParam} == {
        "_id", "_lastUpdated", "patient", "subject", "code", "category", "date", "device"
    }  # fmt: skip

    found = list(FcPatient.where(struct={"identifier": f"{FNR_SYSTEM}|{home.fnr}"}).perform_resources_iter(server))
    assert [p.id for p in found] == [str(home.patient)]
    assert found[0].identifier[0].system == FNR_SYSTEM and found[0].name[0].family
    d_found = list(FcPatient.where(struct={"identifier": f"{DNR_SYSTEM}|{home.dnr}"}).perform_resources_iter(server))
    assert [p.id for p in d_found] == [str(home.d_patient)]
    assert d_found[0].identifier[0].system == DNR_SYSTEM
    wrong_system = FcPatient.where(struct={"identifier": f"{FNR_SYSTEM}|{home.dnr}"}).perform_resources_iter(server)
    assert list(wrong_system) == []
    any_system = list(FcPatient.where(struct={"identifier": home.dnr}).perform_resources_iter(server))
    assert [p.id for p in any_system] == [str(home.d_patient)]
    suffix = home.tenant.team.removeprefix("team-")  # the test patients are called "Pasient <suffix>-<i>"
    by_name = list(FcPatient.where(struct={"name": "Pasient", "family": suffix}).perform_resources_iter(server))
    assert {p.id for p in by_name} == {str(home.patient), str(home.d_patient)}

    observations = list(
        FcObservation.where(struct={"subject": f"Patient/{home.patient}", "_count": "8"}).perform_resources_iter(server)
    )
    assert len(observations) == home.total  # fhirclient follows the next links and parses every resource
    one = FcObservation.read(str(home.ids["oxpulse-0"]), server)
    assert {(c.system, c.code) for c in one.code.coding} >= {("urn:iso:std:iso:11073:10101", "149530")}
    assert one.performer[0].reference == f"Patient/{home.patient}"


def _cursor(*items: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(items)).encode()).decode().rstrip("=")


def test_strict_handling_refuses_unknown_parameters_with_an_operation_outcome(
    api_url: str, home: Home, api: httpx.Client
) -> None:
    strict = _fhirpy(api_url, home, Prefer="handling=strict")
    with pytest.raises(FhirpyOutcome) as refused:
        strict.resources("Observation").search(patient=str(home.patient), colour="blue").fetch()
    assert refused.value.resource["resourceType"] == "OperationOutcome"
    assert refused.value.resource["issue"][0]["code"] == "not-supported"
    lenient = api.get(f"/fhir/Observation?patient={home.patient}&colour=blue&_count=1", headers=home.headers)
    assert lenient.status_code == 200
    self_link = next(link["url"] for link in lenient.json()["link"] if link["relation"] == "self")
    assert "colour" not in dict(parse_qsl(urlsplit(self_link).query))
    for url, status in (
        (f"/fhir/Observation?patient={home.patient}&date=yesterday", 400),
        (f"/fhir/Observation?patient={home.patient}&code:below=8867-4", 400),
        ("/fhir/Medication", 404),
        (f"/fhir/Observation/{uuid.uuid4()}", 404),
        ("/fhir/Observation/not-a-uuid", 404),
        # hand-made cursors: refused when decoded, and (a device id where a patient's UUID belongs) by the database
        (f"/fhir/Observation?patient={home.patient}&_cursor={_cursor('next', 'x', 'y')}", 400),
        (f"/fhir/Observation?patient={home.patient}&_cursor={_cursor('next', '2026-01-01', str(uuid.uuid4()))}", 400),
        (f"/fhir/Patient?_cursor={_cursor('next', '', 'gw-not-a-patient')}", 400),
        # a chain or _has is refused even under lenient handling: ignored, it would return every patient's data
        (f"/fhir/Observation?patient.identifier={FNR_SYSTEM}|{home.fnr}", 400),
        (f"/fhir/Observation?subject:Patient.identifier={FNR_SYSTEM}|{home.fnr}", 400),
        ("/fhir/Patient?_has:Observation:patient:code=59408-5", 400),
    ):
        response = api.get(url, headers=home.headers)
        assert response.status_code == status, url
        assert response.headers["content-type"].startswith("application/fhir+json")
        assert response.json()["resourceType"] == "OperationOutcome"
    unauthenticated = api.get("/fhir/Observation")
    assert unauthenticated.status_code == 401 and unauthenticated.json()["resourceType"] == "OperationOutcome"


def test_another_teams_patient_is_absent_from_search_and_every_search_is_audited(
    home: Home, api: httpx.Client, db: psycopg.Connection[Any]
) -> None:
    theirs = home.other.patients[0]
    for url in (
        f"/fhir/Observation?patient={theirs}",
        f"/fhir/Observation?subject=Patient/{theirs}",
        f"/fhir/Patient?_id={theirs}",
        f"/fhir/Device?patient={theirs}",
    ):
        bundle = api.get(url, headers=home.headers).json()
        assert bundle["resourceType"] == "Bundle" and bundle["total"] == 0 and bundle["entry"] == [], url
    everyone = api.get("/fhir/Observation?_count=1000", headers=home.headers).json()
    subjects = {e["resource"]["subject"]["reference"] for e in everyone["entry"]}
    assert subjects == {f"Patient/{home.patient}"}
    assert not audit_rows(db, patient_id=theirs)
    searched = audit_rows(db, patient_id=home.patient, action="search")
    assert searched and searched[-1]["resource"] == "/fhir/Observation" and searched[-1]["outcome"] == "ok"


def test_every_returned_resource_is_valid_fhir(home: Home, api: httpx.Client) -> None:
    for url in (
        f"/fhir/Observation?patient={home.patient}&_count=100",
        f"/fhir/Patient?_id={home.patient}&_revinclude=Device:patient",
        f"/fhir/Device?patient={home.patient}",
    ):
        Bundle.model_validate(api.get(url, headers=home.headers).json())


class _Explaining:
    """A connection that also EXPLAINs the Observation page query it is given (on `execute` or a cursor's)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.plans: list[str] = []

    def _explain(self, query: str | sql.Composable, params: Any) -> None:
        text = query.as_string(self.conn) if isinstance(query, sql.Composable) else query
        if "CROSS JOIN LATERAL" in text:
            row = self.conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(sql.SQL(text)), params).fetchone()
            assert row is not None
            self.plans.append(json.dumps(row[0]))

    def execute(self, query: str | sql.Composable, params: Any = None) -> Any:
        self._explain(query, params)
        return self.conn.execute(query, params)

    @contextmanager
    def cursor(self, **kwargs: Any) -> Iterator[Any]:
        explaining = self

        with self.conn.cursor(**kwargs) as cur:

            class Cursor:
                def execute(self, query: str | sql.Composable, params: Any = None) -> Any:
                    explaining._explain(query, params)
                    return cur.execute(query, params)

            yield Cursor()


def test_a_date_bound_prunes_the_partitions_and_the_page_uses_the_index(
    home: Home, db: psycopg.Connection[Any]
) -> None:
    from clinician_api import fhir_query
    from clinician_api.fhir_search import parse_search

    low, high = home.spo2_times[5], home.spo2_times[9]
    search = parse_search(
        "Observation", [("date", f"ge{_iso(low)}"), ("date", f"lt{_iso(high)}"), ("_count", "3")], strict=True
    )
    explaining = _Explaining(db)
    page = fhir_query.search_observations(explaining, search, [home.patient], datetime.now(UTC))  # type: ignore[arg-type]
    assert len(page.matches) == 3 and page.next is not None
    (plan,) = explaining.plans
    scanned = set(re.findall(r'"Relation Name": "(readings_[a-z0-9_]+)"', plan))
    years = {f"readings_{p}{y}" for y in range(low.year, high.year + 1) for p in "yp"}  # yearly (pg_partman: p)
    assert scanned and scanned <= years | {"readings_default"}, scanned
    assert "Index Scan" in plan or "Index Only Scan" in plan


def test_every_other_search_parameter_served_is_honoured(
    api_url: str, home: Home, api: httpx.Client, db: psycopg.Connection[Any]
) -> None:
    """DetectedIssue, CarePlan, Device and the rest of Patient's parameters, the result parameters `_total` and
    `_summary=count`, and every `_include`/`_revinclude` value the docs list."""
    from clinician_api.fhir import device_id

    client = _fhirpy(api_url, home)
    now = datetime.now(UTC)
    missed = insert_alarm(db, home.patient, severity="missed", rule="missed.spo2", opened_minutes_ago=10)
    red = insert_alarm(db, home.patient, severity="red", rule="threshold.spo2.low", opened_minutes_ago=120)
    insert_alarm(db, home.other.patients[0], severity="missed", rule="missed.spo2")  # another team's: never found
    plans = {}
    for version, status in ((1, "retired"), (2, "active"), (3, "draft")):
        row = db.execute(
            "INSERT INTO self_management_plans (patient_id, version, status, body) VALUES (%s, %s, %s, %s) "
            "RETURNING id",
            (home.patient, version, status, psycopg.types.json.Jsonb(a_plan())),
        ).fetchone()
        assert row is not None
        plans[status] = str(row[0])
    h_patient = uuid.uuid4()
    h_number = f"{secrets.randbelow(28) + 1:02d}4{secrets.randbelow(9) + 1}{secrets.randbelow(10**7):07d}"
    suffix = secrets.token_hex(3)
    db.execute(
        "INSERT INTO patients (id, display_name, national_id, birth_date, team_id, protocol, active) "
        "VALUES (%s, %s, %s, '1950-05-18', %s, 'copd', false)",
        (h_patient, f"Hanne Hnummer{suffix}", h_number, home.tenant.team_id),
    )

    def ids(resource_type: str, **params: Any) -> set[str]:
        return {r["id"] for r in client.resources(resource_type).search(**params).limit(100).fetch_all()}

    # DetectedIssue: code (the alarm rule) and identified (when it opened)
    assert ids("DetectedIssue", code="urn:varde:alarm-rule|missed.spo2") == {str(missed)}
    assert ids("DetectedIssue", code="threshold.spo2.low") == {str(red)}
    assert ids("DetectedIssue", patient=str(home.patient)) == {str(missed), str(red)}
    assert ids("DetectedIssue", identified=f"ge{_iso(now - timedelta(minutes=60))}") == {str(missed)}
    assert ids("DetectedIssue", identified=f"lt{_iso(now - timedelta(minutes=60))}") == {str(red)}
    # CarePlan: status (a retired plan is revoked)
    assert ids("CarePlan", status="active") == {plans["active"]}
    assert ids("CarePlan", status="draft,revoked") == {plans["draft"], plans["retired"]}
    assert ids("CarePlan", subject=f"Patient/{home.patient}", status="http://hl7.org/fhir/request-status|active") == {
        plans["active"]
    }
    # Device: type (MDC specialization) and identifier (Bluetooth address); Observation: device
    oximeter = device_id(home.tenant.gateways[0].gateway_id, "A4:C1:38:00:00:01")
    assert ids("Device", type="urn:iso:std:iso:11073:10101|528388") == {oximeter}
    assert ids("Device", type="urn:iso:std:iso:11073:10101|528399") == {
        device_id(home.tenant.gateways[0].gateway_id, "A4:C1:38:00:00:03")
    }
    assert ids("Device", identifier="http://hl7.org/fhir/sid/eui-48/bluetooth|A4-C1-38-00-00-01") == {oximeter}
    observed = ids("Observation", device=f"Device/{oximeter}")
    assert observed == {str(home.ids[f"spo2-{i}"]) for i in range(SPO2)} | {
        str(home.ids[f"oxpulse-{i}"]) for i in range(2)
    }
    # Patient: given, birthdate, active, _lastUpdated, _sort=-_id, identifier with an H-nummer
    team = {str(home.patient), str(home.d_patient), str(h_patient)}
    assert ids("Patient", given="Pasient") == {str(home.patient), str(home.d_patient)}
    assert ids("Patient", given="Hanne", family=f"Hnummer{suffix}") == {str(h_patient)}
    assert ids("Patient", birthdate="1950-05-17") == {str(home.patient)}
    assert ids("Patient", birthdate="1950-05") == {str(home.patient), str(h_patient)}
    assert ids("Patient", active="false") == {str(h_patient)}
    assert ids("Patient", active="true") == {str(home.patient), str(home.d_patient)}
    updated = client.resources("Patient").search(_id=str(h_patient)).fetch_all()[0]["meta"]["lastUpdated"]
    assert str(h_patient) in ids("Patient", _lastUpdated=f"ge{updated}")
    assert str(h_patient) not in ids("Patient", _lastUpdated=f"lt{updated}")
    descending = [p["id"] for p in client.resources("Patient").sort("-_id").limit(2).fetch_all()]
    assert descending == sorted(team, reverse=True)
    h_found = ids("Patient", identifier=f"urn:oid:2.16.578.1.12.4.1.4.3|{h_number}")
    assert h_found == {str(h_patient)}
    assert ids("Patient", identifier=f"{FNR_SYSTEM}|{h_number}") == set()  # an H-nummer is no fødselsnummer
    # _total=none leaves the total out; _summary=count gives only the total
    assert "total" not in client.resources("Patient").search(_total="none").fetch_raw()
    counted = client.resources("Observation").search(patient=str(home.patient), _summary="count").fetch_raw()
    assert counted["total"] == home.total and not counted.get("entry")
    # every _include and _revinclude value the docs list
    for resource_type, include in (
        ("DetectedIssue", "DetectedIssue:patient"),
        ("CarePlan", "CarePlan:patient"),
        ("CarePlan", "CarePlan:subject"),
        ("Device", "Device:patient"),
        ("Observation", "Observation:subject"),
        ("QuestionnaireResponse", "QuestionnaireResponse:patient"),
        ("QuestionnaireResponse", "QuestionnaireResponse:subject"),
        ("EpisodeOfCare", "EpisodeOfCare:patient"),
    ):
        bundle = api.get(
            f"/fhir/{resource_type}",
            params={"patient": str(home.patient), "_include": include},
            headers={**home.headers, "Prefer": "handling=strict"},
        ).json()
        Bundle.model_validate(bundle)
        matches = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
        included = [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
        assert matches or resource_type == "EpisodeOfCare", include  # the home patient may have no episode
        assert included == ([str(home.patient)] if matches else []), include
    rev = api.get(
        "/fhir/Patient",
        params=[("_id", str(home.patient)), ("_revinclude", "CarePlan:patient"),
                ("_revinclude", "DetectedIssue:patient"), ("_revinclude", "CarePlan:subject")],
        headers={**home.headers, "Prefer": "handling=strict"},
    ).json()  # fmt: skip
    Bundle.model_validate(rev)
    found = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in rev["entry"]}
    assert found == {("Patient", str(home.patient)), ("DetectedIssue", str(missed)), ("DetectedIssue", str(red))} | {
        ("CarePlan", p) for p in plans.values()
    }
