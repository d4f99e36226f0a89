"""Coding and search-value rules of the FHIR view, as tables: the MDC and LOINC code of every kind by device and
sample type, the identifier system of every Norwegian number type, FHIR date ranges and prefixes, tokens and the
Prefer header; every resource builder's output through fhir.resources (R4B) and the vital-signs profile rules
(vs-1, vs-2, vs-3, the code patterns of each profile including SpO2's 2708-6, and the required unit bindings)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from clinician_api import fhir, fhir_coding
from clinician_api.fhir_search import (
    FhirError,
    Token,
    date_test,
    handling_strict,
    parse_date,
    parse_search,
    parse_token,
)
from store.episodes import Episode
from store.fhir_search import (
    Before,
    Between,
    DateTest,
    DeviceRow,
    From,
    GatewayRow,
    IssueRow,
    Outside,
    PatientRow,
    ResponseRow,
)
from store.journal_documents import Organisation, Practitioner
from store.plans import PlanRow

MDC = "urn:iso:std:iso:11073:10101"
LOINC = "http://loinc.org"
PATIENT = uuid.UUID("0b7f3c4e-5d1a-4b7e-9a51-0c2f4e8d9a10")
T = datetime(2026, 11, 21, 9, 0, 12, tzinfo=UTC)


def _reading(
    kind: str, value: float, device_type: str | None = "pulse_oximeter", flags: tuple[str, ...] = (), group: str = "g"
) -> fhir.ReadingRow:
    return fhir.ReadingRow(
        uuid.uuid4(), PATIENT, "gw-test-1", kind, value, T, T + timedelta(seconds=3), "A4:C1:38:00:00:01",
        device_type, "M-1", group, flags,
    )  # fmt: skip


def _codes(resource: dict[str, Any], system: str) -> list[str]:
    return [c["code"] for c in resource["code"]["coding"] if c["system"] == system]


@pytest.mark.parametrize(
    ("kind", "device_type", "flags", "loinc", "mdc"),
    [
        ("pulse_rate", "pulse_oximeter", (), "8867-4", "149530"),
        ("pulse_rate", "blood_pressure_monitor", (), "8867-4", "149546"),
        ("pulse_rate", None, (), "8867-4", None),
        ("heart_rate", "heart_rate_monitor", (), "8867-4", "147842"),
        ("spo2", "pulse_oximeter", (), "59408-5", "150456"),
        ("body_temperature", "thermometer", (), "8310-5", "150364"),
        ("body_weight", "weight_scale", (), "29463-7", "188736"),
        ("resp_rate", None, (), "9279-1", "151562"),
        ("glucose", "glucose_meter", ("sample_capillary_whole_blood",), "14743-9", "160184"),
        ("glucose", "glucose_meter", ("sample_capillary_plasma",), "14749-6", "160188"),
        ("glucose", "glucose_meter", ("sample_venous_whole_blood",), "15074-8", "160192"),
        ("glucose", "glucose_meter", ("sample_venous_plasma",), "14749-6", "160196"),
        ("glucose", "glucose_meter", ("sample_arterial_whole_blood",), "15074-8", "160200"),
        ("glucose", "glucose_meter", ("sample_arterial_plasma",), "14749-6", "160204"),
        ("glucose", "glucose_meter", ("sample_undetermined_whole_blood",), "15074-8", "160364"),
        ("glucose", "glucose_meter", ("sample_undetermined_plasma",), "14749-6", "160368"),
        ("glucose", "glucose_meter", ("meal_fasting", "sample_interstitial_fluid"), "105272-9", "160212"),
        ("glucose", "glucose_meter", (), "15074-8", None),
        ("bp_systolic", "blood_pressure_monitor", (), "85354-9", "150020"),
    ],
)
def test_observation_code_by_kind_device_and_sample_type(
    kind: str, device_type: str | None, flags: tuple[str, ...], loinc: str, mdc: str | None
) -> None:
    resource = fhir.observation(_reading(kind, 70.0 if "glucose" not in kind else 6.1, device_type, flags))
    assert _codes(resource, LOINC)[0] == loinc
    assert _codes(resource, MDC) == ([mdc] if mdc else [])
    Observation.model_validate(resource)


@pytest.mark.parametrize(
    ("number", "system"),
    [
        ("01017012345", "urn:oid:2.16.578.1.12.4.1.4.1"),  # fødselsnummer
        ("31129912345", "urn:oid:2.16.578.1.12.4.1.4.1"),
        ("41017012345", "urn:oid:2.16.578.1.12.4.1.4.2"),  # D-nummer: first digit + 4
        ("71129912345", "urn:oid:2.16.578.1.12.4.1.4.2"),
        ("01417012345", "urn:oid:2.16.578.1.12.4.1.4.3"),  # H-nummer: third digit + 4
        ("01527012345", "urn:oid:2.16.578.1.12.4.1.4.3"),
        ("01817012345", "urn:oid:2.16.578.1.12.4.1.4.1"),  # synthetic test number (month + 80)
    ],
)
def test_identifier_system_is_chosen_by_the_number(number: str, system: str) -> None:
    assert fhir_coding.national_id_system(number) == system
    patient = fhir.patient(PatientRow(PATIENT, "Kari Nordmann", number, date(1970, 1, 1), True))
    assert patient["identifier"][0]["system"] == system
    Patient.model_validate(patient)


def test_patient_claims_no_basis_and_has_family_and_given() -> None:
    patient = fhir.patient(PatientRow(PATIENT, "Kari Anne Nordmann", "01017012345", None, True, T))
    assert patient["meta"] == {"lastUpdated": T.isoformat(), "profile": [fhir_coding.NO_BASIS_PATIENT]}
    assert patient["name"] == [
        {"use": "official", "text": "Kari Anne Nordmann", "family": "Nordmann", "given": ["Kari", "Anne"]}
    ]


def test_values_leave_at_the_devices_resolution() -> None:
    assert fhir.observation(_reading("body_weight", 82.35, "weight_scale"))["valueQuantity"]["value"] == 82.35
    assert (
        fhir.observation(_reading("body_temperature", 36.99999999999999, "thermometer"))["valueQuantity"]["value"]
        == 37.0
    )
    glucose = fhir.observation(_reading("glucose", 100 / 18, "glucose_meter", ("sample_capillary_whole_blood",)))
    assert glucose["valueQuantity"]["value"] == pytest.approx(5.5555555556, abs=1e-10)


def test_blood_pressure_mean_is_a_component_of_the_panel() -> None:
    parts = [_reading(k, v, "blood_pressure_monitor") for k, v in (("bp_systolic", 141), ("bp_diastolic", 88),
                                                                      ("bp_mean", 105.5))]  # fmt: skip
    (panel,) = fhir.observations(parts)
    assert panel["id"] == str(parts[0].id)
    assert [c["code"]["coding"][0]["code"] for c in panel["component"]] == ["8480-6", "8462-4", "8478-0"]
    assert [c["valueQuantity"]["value"] for c in panel["component"]] == [141, 88, 105.5]
    assert _vital_signs_violations(panel) == []


def test_measuring_device_has_the_phd_identifiers_and_specialization() -> None:
    device = fhir.measuring_device(DeviceRow("gw-test-1", "a4:c1:38:00:00:01", "pulse_oximeter", "PO-60"), PATIENT)
    Device.model_validate(device)
    assert device["identifier"][0]["system"] == "http://hl7.org/fhir/sid/eui-48/bluetooth"
    assert device["identifier"][0]["value"] == "A4-C1-38-00-00-01"
    assert device["identifier"][0]["type"]["coding"][0]["code"] == "BTMAC"
    assert device["type"]["coding"][0]["code"] == "65573"
    assert device["specialization"][0]["systemType"]["coding"][0]["code"] == "528388"


def test_detected_issue_is_in_bokmal_with_english_as_translation() -> None:
    row = (uuid.uuid4(), PATIENT, "threshold.spo2.low", "red", "open", T, "SpO2 85 % below 86 %", None, None, None,
           None, "spo2")  # fmt: skip
    issue = fhir.detected_issue(IssueRow(*row), explanation_nb="SpO2 85 % under 86 %", updated_at=T)
    DetectedIssue.model_validate(issue)
    assert issue["detail"] == "SpO2 85 % under 86 %" and issue["language"] == "nb"
    assert issue["_detail"]["extension"][0]["extension"][1] == {"url": "content", "valueString": "SpO2 85 % below 86 %"}


def test_care_plan_carries_its_limits_as_goals() -> None:
    body = {
        "protocol": "copd",
        "schedule": [{"kind": "spo2", "deadline": "10:00", "weekdays": ["mon"]}],
        "zones": [{"kind": "spo2", "unit": "%", "red_low": 86, "yellow_low": 90}],
        "advice": [
            {"zone": "green", "nb": "Fortsett som før.", "en": "Carry on as before."},
            {"zone": "yellow", "nb": "Mål igjen om to timer.", "en": "Measure again in two hours."},
            {"zone": "red", "nb": "Ring sykepleier nå.", "en": "Call the nurse now."},
        ],
        "contacts": [{"name": "Lungepoliklinikken", "role": "sykepleier", "phone": "+47 22 11 80 80"}],
    }
    plan = fhir.care_plan(PlanRow(uuid.uuid4(), PATIENT, 2, "active", T, None, T, None, body))
    CarePlan.model_validate(plan)
    (goal,) = plan["contained"]
    assert plan["goal"] == [{"reference": "#goal-spo2"}]
    assert goal["target"][0]["detailRange"] == {
        "low": {"value": 90, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
    }
    assert "rød under 86" in goal["note"][0]["text"] and "gul under 90" in goal["note"][0]["text"]
    assert plan["activity"][0]["detail"]["goal"] == [{"reference": "#goal-spo2"}]


def test_operation_outcome_is_valid() -> None:
    OperationOutcome.model_validate(fhir.operation_outcome(400, "bad date"))


# --- the vital-signs profile rules --------------------------------------------------------------------------------

_VS_UNITS = {"%", "/min", "Cel", "[degF]", "kg", "g", "[lb_av]", "mm[Hg]", "cm", "[in_i]", "kg/m2"}
_PATTERNS = {
    "http://hl7.org/fhir/StructureDefinition/oxygensat": ("2708-6", {"%"}),
    "http://hl7.org/fhir/StructureDefinition/heartrate": ("8867-4", {"/min"}),
    "http://hl7.org/fhir/StructureDefinition/bodytemp": ("8310-5", {"Cel", "[degF]"}),
    "http://hl7.org/fhir/StructureDefinition/bodyweight": ("29463-7", {"kg", "g", "[lb_av]"}),
    "http://hl7.org/fhir/StructureDefinition/resprate": ("9279-1", {"/min"}),
    "http://hl7.org/fhir/StructureDefinition/bp": ("85354-9", set()),
}


def _vital_signs_violations(obs: dict[str, Any]) -> list[str]:
    """The vital-signs profile's rules that fhir.resources does not check (R4 vitalsigns, bp and the others)."""
    out = []
    profile = obs.get("meta", {}).get("profile", [None])[0]
    if profile is None:
        return ["no profile claimed"]
    if obs["status"] not in ("registered", "preliminary", "final", "amended", "corrected", "cancelled"):
        out.append("status outside the required binding")
    if not any(c["code"] == "vital-signs" for cat in obs["category"] for c in cat["coding"]):
        out.append("category vital-signs missing")
    if not re.match(r"^\d{4}-\d{2}-\d{2}", obs.get("effectiveDateTime", "")):
        out.append("vs-1: effectiveDateTime not precise to the day")
    if "component" not in obs and "valueQuantity" not in obs and "dataAbsentReason" not in obs:
        out.append("vs-2: no value and no dataAbsentReason")
    for component in obs.get("component", []):
        if "valueQuantity" not in component and "dataAbsentReason" not in component:
            out.append("vs-3: component without value or dataAbsentReason")
        if "valueQuantity" in component and component["valueQuantity"]["code"] not in _VS_UNITS:
            out.append("component unit outside the vital-signs units")
    quantity = obs.get("valueQuantity")
    if quantity is not None and (
        quantity["system"] != "http://unitsofmeasure.org" or quantity["code"] not in _VS_UNITS
    ):
        out.append("value unit outside the required vital-signs units binding")
    pattern, units = _PATTERNS.get(profile, (None, set()))
    if pattern and not any(c["system"] == LOINC and c["code"] == pattern for c in obs["code"]["coding"]):
        out.append(f"code pattern {pattern} missing")
    if quantity is not None and units and quantity["code"] not in units:
        out.append(f"unit {quantity['code']} not allowed by {profile}")
    if profile.endswith("/bp"):
        codes = {c["code"]["coding"][0]["code"] for c in obs["component"]}
        if not {"8480-6", "8462-4"} <= codes:
            out.append("bp: systolic and diastolic components required")
    return out


@pytest.mark.parametrize(
    ("kind", "device_type", "value"),
    [
        ("spo2", "pulse_oximeter", 93.0),
        ("pulse_rate", "pulse_oximeter", 71.0),
        ("pulse_rate", "blood_pressure_monitor", 74.0),
        ("heart_rate", "heart_rate_monitor", 64.0),
        ("body_temperature", "thermometer", 37.2),
        ("body_weight", "weight_scale", 82.35),
        ("resp_rate", None, 16.0),
        ("bp_systolic", "blood_pressure_monitor", 141.0),
        ("bp_diastolic", "blood_pressure_monitor", 88.0),
    ],
)
def test_vital_sign_observations_meet_the_profile_they_claim(kind: str, device_type: str | None, value: float) -> None:
    obs = fhir.observation(_reading(kind, value, device_type))
    Observation.model_validate(obs)
    assert _vital_signs_violations(obs) == []


def test_the_profile_checker_catches_a_broken_observation() -> None:
    obs = fhir.observation(_reading("spo2", 93.0))
    obs["code"]["coding"] = [c for c in obs["code"]["coding"] if c["code"] != "2708-6"]
    obs["valueQuantity"]["code"] = "percent"
    del obs["effectiveDateTime"]
    problems = _vital_signs_violations(obs)
    assert "code pattern 2708-6 missing" in problems and any("vs-1" in p for p in problems)
    assert any("binding" in p for p in problems)


# --- search values ------------------------------------------------------------------------------------------------

OSLO_WINTER = 1  # hours ahead of UTC in November


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026", datetime(2025, 12, 31, 23, tzinfo=UTC), datetime(2026, 12, 31, 23, tzinfo=UTC)),
        ("2026-11", datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 30, 23, tzinfo=UTC)),
        ("2026-11-21", datetime(2026, 11, 20, 23, tzinfo=UTC), datetime(2026, 11, 21, 23, tzinfo=UTC)),
        ("2026-03-29", datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC)),  # 23-hour day
        ("2026-11-21T10:00Z", datetime(2026, 11, 21, 10, tzinfo=UTC), datetime(2026, 11, 21, 10, 1, tzinfo=UTC)),
        ("2026-11-21T10:00:00Z", datetime(2026, 11, 21, 10, tzinfo=UTC), datetime(2026, 11, 21, 10, 0, 1, tzinfo=UTC)),
        (
            "2026-11-21T10:00:00.5+02:00",
            datetime(2026, 11, 21, 8, 0, 0, 500000, tzinfo=UTC),
            datetime(2026, 11, 21, 8, 0, 0, 600000, tzinfo=UTC),
        ),
        ("2026-11-21T10:00:00", datetime(2026, 11, 21, 9, tzinfo=UTC), datetime(2026, 11, 21, 9, 0, 1, tzinfo=UTC)),
    ],
)
def test_a_search_date_is_the_range_its_precision_implies(text: str, start: datetime, end: datetime) -> None:
    prefix, rng = parse_date(text)
    assert prefix == "eq" and (rng.start, rng.end) == (start, end)


@pytest.mark.parametrize(
    ("prefix", "test", "bounds"),
    [
        ("eq", Between, ["start", "end"]),
        ("ne", Outside, ["start", "end"]),
        ("gt", From, ["end"]),
        ("sa", From, ["end"]),
        ("ge", From, ["start"]),
        ("lt", Before, ["start"]),
        ("eb", Before, ["start"]),
        ("le", Before, ["end"]),
    ],
)
def test_date_prefixes(prefix: str, test: type[DateTest], bounds: list[str]) -> None:
    _, rng = parse_date(f"{prefix}2026-11-21")
    assert date_test(prefix, rng, T) == test(*[getattr(rng, b) for b in bounds])


def test_ap_is_ten_percent_of_the_distance_from_now() -> None:
    _, rng = parse_date("ap2026-11-11T09:00:12Z")
    assert date_test("ap", rng, T) == Between(rng.start - timedelta(days=1), rng.end + timedelta(days=1))


@pytest.mark.parametrize("bad", ["2026-13", "yesterday", "2026-11-21T25:00Z", "xx2026", "2026-02-30"])
def test_malformed_dates_are_refused(bad: str) -> None:
    with pytest.raises(FhirError) as refused:
        parse_date(bad)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("http://loinc.org|8867-4", Token("http://loinc.org", "8867-4")),
        ("8867-4", Token(None, "8867-4")),
        ("|8867-4", Token("", "8867-4")),
        ("http://loinc.org|", Token("http://loinc.org", None)),
    ],
)
def test_tokens(text: str, token: Token) -> None:
    assert parse_token(text) == token


def test_prefer_handling_and_unknown_parameters() -> None:
    assert handling_strict("handling=strict") and handling_strict('return=minimal; handling="strict"')
    assert not handling_strict("handling=lenient") and not handling_strict(None)
    lenient = parse_search("Observation", [("colour", "blue"), ("_sort", "-date")], strict=False)
    assert lenient.ignored == ["search parameter 'colour'"] and lenient.sort == "-date"
    with pytest.raises(FhirError) as refused:
        parse_search("Observation", [("colour", "blue")], strict=True)
    assert (refused.value.status, refused.value.code) == (400, "not-supported")
    with pytest.raises(FhirError):
        parse_search("Observation", [("code:below", "8867-4")], strict=False)  # an unknown modifier is never ignored


def test_every_sample_type_the_edge_decodes_has_its_own_code() -> None:
    from edge_agent.gatt.glucose import SAMPLE_TYPES

    assert set(SAMPLE_TYPES.values()) - {"control_solution"} == set(fhir_coding.GLUCOSE_SAMPLE_TYPES)


def test_a_cgm_reading_decoded_at_the_edge_is_coded_as_interstitial_fluid() -> None:
    from edge_agent.gatt.glucose import decode_glucose_measurement

    # flags 0x02 (concentration in kg/L, type and location), sequence 7, 2026-11-21 09:00:00,
    # 100 mg/dL = 100e-5 kg/L (SFLOAT 0xB064), type 9 (interstitial fluid), location 15 (not available)
    data = bytes.fromhex("02 0700 ea07 0b 15 09 00 00 64b0 f9")
    (measurement,) = decode_glucose_measurement(data).measurements
    assert "sample_interstitial_fluid" in measurement.flags
    resource = fhir.observation(_reading("glucose", measurement.value, "glucose_meter", tuple(measurement.flags)))
    assert _codes(resource, LOINC) == ["105272-9"] and _codes(resource, MDC) == ["160212"]


def test_pseudonymised_resources_stay_valid_and_lose_identity() -> None:
    import json

    from fhir.resources.R4B import get_fhir_model_class

    from clinician_api.fhir_export import Pseudonymiser
    from rules_engine.missed import explain_missed
    from tests.fhir_dates import TrueDates, true_dates_in
    from vitals import Kind

    p = Pseudonymiser(b"k" * 32)
    pid = str(PATIENT)
    missed_day = date(2026, 11, 19)
    missed_nb, missed_en = explain_missed(Kind.SPO2, "10:00", missed_day)
    alarm = (uuid.uuid4(), PATIENT, "threshold.spo2.low", "red", "resolved", T, "SpO2 85 %", None, T, T,
             "Ringte Kari Nordmann", "spo2")  # fmt: skip
    missed = (uuid.uuid4(), PATIENT, "missed.spo2", "missed", "open", T, missed_en, None, None, None, None, "spo2")
    body = {
        "protocol": "copd",
        "diagnosis": "KOLS, sist innlagt 02.10.2026",
        "zones": [{"kind": "spo2", "unit": "%", "red_low": 86, "yellow_low": 90}],
        "schedule": [{"kind": "spo2", "deadline": "10:00", "weekdays": ["mon", "wed"]}],
        "advice": [{"zone": z, "nb": "Råd.", "en": "Advice."} for z in ("green", "yellow", "red")],
        "contacts": [{"name": "Lungepoliklinikken", "role": "sykepleier", "phone": "+47 22 11 80 80"}],
    }
    resources = [
        fhir.patient(PatientRow(PATIENT, "Kari Nordmann", "01017012345", date(1950, 5, 17), True, T)),
        fhir.observation(_reading("spo2", 93.0)),
        fhir.bp_panel({Kind(k): _reading(k, v) for k, v in (("bp_systolic", 141), ("bp_mean", 99))}),
        fhir.gateway_device(GatewayRow("gw-test-1", PATIENT, True, "0.3.0", "online")),
        fhir.measuring_device(DeviceRow("gw-test-1", "A4:C1:38:00:00:01", "pulse_oximeter", "PO-60"), PATIENT),
        fhir.care_plan(PlanRow(uuid.uuid4(), PATIENT, 1, "active", T, None, T, T + timedelta(days=3), body)),
        fhir.detected_issue(IssueRow(*alarm), explanation_nb="SpO2 85 %", updated_at=T),
        fhir.detected_issue(IssueRow(*missed), explanation_nb=missed_nb, updated_at=T),
    ]
    assert "19.11." in json.dumps(resources[-1], ensure_ascii=False)  # the alarm text does carry the true day
    truth = TrueDates()
    for moment in (T, T + timedelta(seconds=3), T + timedelta(days=3), date(1950, 5, 17), missed_day,
                   date(2026, 10, 2)):  # fmt: skip
        truth.add(moment)
    for resource in resources:
        out = p.resource(resource, pid)
        get_fhir_model_class(out["resourceType"]).model_validate(out)
        text = json.dumps(out, ensure_ascii=False)
        for secret in ("Kari", "Nordmann", "01017012345", pid, "gw-test-1", "A4:C1", "Lungepoliklinikken", "KOLS",
                       "PO-60", "0.3.0", "Ringte", "Ingen måling"):  # fmt: skip
            assert secret not in text, (out["resourceType"], secret)
        assert true_dates_in(out, truth) == [], out["resourceType"]
        assert out["meta"] == {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                                             "code": "PSEUDED"}]}  # fmt: skip
    issue = p.resource(resources[-1], pid)
    assert issue["code"]["coding"][0]["code"] == "missed.spo2" and "detail" not in issue
    plan = p.resource(resources[5], pid)
    assert plan["contained"][0]["target"][0]["detailRange"]["low"]["value"] == 90
    assert plan["period"]["start"] == (T + p.shift(pid)).isoformat()
    assert p.resource(resources[0], pid)["id"] == p.resource(resources[0], pid)["id"]
    assert Pseudonymiser(b"x" * 32).resource(resources[0], pid)["id"] != p.resource(resources[0], pid)["id"]


def test_a_resource_type_without_an_allow_list_is_not_exported_pseudonymised() -> None:
    from clinician_api.fhir_export import Pseudonymiser

    row = (uuid.uuid4(), PATIENT, "cat", 2, T, T, {"breath": "worse"}, 2, "yellow")
    with pytest.raises(ValueError, match="allow-list"):
        Pseudonymiser(b"k" * 32).resource(fhir.questionnaire_response(ResponseRow(*row)), str(PATIENT))


@pytest.mark.parametrize(
    "written",
    ["2026-11-21", "2026-11-21T09:00:12+00:00", "2026-11-21T10:00:12.000+01:00", "21.11.2026", "21.11.26",
     "21.11.", "21/11/2026", "20261121", "før 21.11. kl. 10"],
)  # fmt: skip
def test_the_true_date_scanner_finds_a_true_date_in_every_format(written: str) -> None:
    from tests.fhir_dates import TrueDates, true_dates_in

    truth = TrueDates()
    truth.add(T)
    assert true_dates_in({"detail": written}, truth) != []
    shifted = TrueDates()
    shifted.add(T + timedelta(days=40))
    assert true_dates_in({"detail": written, "id": "a20261121b", "value": "93.0"}, shifted) == []


def test_summary_count_asks_for_the_total_only() -> None:
    request = parse_search("Observation", [("_summary", "count")], strict=True)
    assert (request.count, request.total) == (0, "accurate")
    with pytest.raises(FhirError):
        parse_search("Observation", [("_summary", "text")], strict=True)


def test_questionnaire_response_is_valid() -> None:
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

    row = (uuid.uuid4(), PATIENT, "cat", 2, T, T, {"breath": "worse"}, 2, "yellow")
    response = fhir.questionnaire_response(ResponseRow(*row))
    QuestionnaireResponse.model_validate(response)
    assert response["questionnaire"] == "urn:varde:questionnaire:cat|2"
    assert response["item"][0] == {
        "linkId": "breath",
        "answer": [{"valueCoding": {"system": "urn:varde:questionnaire:cat:options", "code": "worse"}}],
    }


@pytest.mark.parametrize(
    ("device_type", "code", "reference"),
    [
        ("pulse_oximeter", "528388", "MDC_DEV_SPEC_PROFILE_PULS_OXIM"),
        ("blood_pressure_monitor", "528391", "MDC_DEV_SPEC_PROFILE_BP"),
        ("thermometer", "528392", "MDC_DEV_SPEC_PROFILE_TEMP"),
        ("weight_scale", "528399", "MDC_DEV_SPEC_PROFILE_SCALE"),
        ("glucose_meter", "528401", "MDC_DEV_SPEC_PROFILE_GLUCOSE"),
        ("heart_rate_monitor", "528390", "MDC_DEV_SPEC_PROFILE_MIN_ECG"),
    ],
)
def test_every_device_type_has_its_mdc_specialization(device_type: str, code: str, reference: str) -> None:
    device = fhir.measuring_device(DeviceRow("gw-test-1", "A4:C1:38:00:00:01", device_type, "M-1"), PATIENT)
    Device.model_validate(device)
    assert device["type"]["coding"] == [{"system": MDC, "code": "65573", "display": "MDC_MOC_VMS_MDS_SIMP"}]
    (specialization,) = device["specialization"]
    assert specialization["systemType"]["coding"] == [{"system": MDC, "code": code, "display": reference}]


def test_the_specialization_table_covers_exactly_the_device_types_tested() -> None:
    assert set(fhir_coding.DEVICE_SPECIALIZATIONS) == {
        "pulse_oximeter", "blood_pressure_monitor", "thermometer", "weight_scale", "glucose_meter",
        "heart_rate_monitor",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "loinc", "mdc", "reference"),
    [
        ("bp_systolic", "8480-6", "150021", "MDC_PRESS_BLD_NONINV_SYS"),
        ("bp_diastolic", "8462-4", "150022", "MDC_PRESS_BLD_NONINV_DIA"),
        ("bp_mean", "8478-0", "150023", "MDC_PRESS_BLD_NONINV_MEAN"),
    ],
)
def test_each_blood_pressure_component_has_its_loinc_and_mdc_code(
    kind: str, loinc: str, mdc: str, reference: str
) -> None:
    parts = [_reading(k, v, "blood_pressure_monitor") for k, v in (("bp_systolic", 141), ("bp_diastolic", 88),
                                                                      ("bp_mean", 105.5))]  # fmt: skip
    (panel,) = fhir.observations(parts)
    by_loinc = {c["code"]["coding"][0]["code"]: c["code"]["coding"] for c in panel["component"]}
    codings = by_loinc[loinc]
    assert [(c["system"], c["code"]) for c in codings] == [(LOINC, loinc), (MDC, mdc)]
    assert codings[1]["display"] == reference
    assert (MDC, "150020") in {(c["system"], c["code"]) for c in panel["code"]["coding"]}


_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T")


def _instants_as_values(node: Any) -> Any:
    """JSON with every date-time string parsed, so `+00:00` and `Z` (the same instant) compare equal."""
    if isinstance(node, dict):
        return {k: _instants_as_values(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_instants_as_values(v) for v in node]
    if isinstance(node, str) and _INSTANT.match(node):
        return datetime.fromisoformat(node.replace("Z", "+00:00"))
    return node


def _every_builder() -> list[tuple[str, dict[str, Any]]]:
    from clinician_api.journal import identity

    body = {
        "protocol": "copd",
        "diagnosis": "J44.1",
        "zones": [{"kind": "spo2", "unit": "%", "red_low": 86, "yellow_low": 90},
                  {"kind": "body_weight", "unit": "kg", "yellow_high": 84.5, "red_high": 86}],
        "schedule": [{"kind": "spo2", "deadline": "10:00", "weekdays": ["mon", "thu"]}],
        "advice": [{"zone": z, "nb": "Råd.", "en": "Advice."} for z in ("green", "yellow", "red")],
        "contacts": [{"name": "Lungepoliklinikken", "role": "sykepleier", "phone": "+47 22 11 80 80"}],
    }  # fmt: skip
    alarm = (uuid.uuid4(), PATIENT, "threshold.spo2.low", "red", "resolved", T, "SpO2 85 %", uuid.uuid4(), T,
             T + timedelta(hours=1), "Ringte pasienten", "spo2")  # fmt: skip
    episode = Episode(uuid.uuid4(), PATIENT, "finished", uuid.uuid4(), "Responssenter", uuid.uuid4(), "Oslo kommune",
                      "KOLS", ["J44.1"], "copd", "", uuid.uuid4(), T, None, T + timedelta(days=30), None, "Stabil",
                      None, T)  # fmt: skip
    answers = (uuid.uuid4(), PATIENT, "cat", 2, T, T, {"breath": "worse"}, 2, "yellow")
    bp = [_reading(k, v, "blood_pressure_monitor") for k, v in (("bp_systolic", 141), ("bp_diastolic", 88.5))]
    observation = fhir.observation(_reading("body_weight", 82.35, "weight_scale"))
    scale = DeviceRow("gw-test-1", "A4:C1:38:00:00:01", "weight_scale", "B")
    nurse = Practitioner(uuid.uuid4(), "kari.nurse", "Kari Sykepleier", "1234567", "nurse")
    return [
        ("patient", fhir.patient(PatientRow(PATIENT, "Kari Nordmann", "41017012345", date(1950, 5, 17), True, T))),
        ("observation", observation),
        ("glucose", fhir.observation(_reading("glucose", 6.1, "glucose_meter", ("sample_interstitial_fluid",)))),
        ("bp_panel", fhir.observations(bp)[0]),
        ("gateway_device", fhir.gateway_device(GatewayRow("gw-test-1", PATIENT, True, "0.3.0", "online"))),
        ("measuring_device", fhir.measuring_device(scale, PATIENT)),
        ("detected_issue", fhir.detected_issue(IssueRow(*alarm), explanation_nb="SpO2 85 % (nb)", updated_at=T)),
        ("care_plan", fhir.care_plan(PlanRow(uuid.uuid4(), PATIENT, 2, "active", T, None, T, None, body))),
        ("episode_of_care", fhir.episode_of_care(episode)),
        ("questionnaire_response", fhir.questionnaire_response(ResponseRow(*answers))),
        ("operation_outcome", fhir.operation_outcome(400, "date: not a date")),
        ("bundle", fhir.bundle([observation], "http://varde.test/fhir", links=[("self", "http://varde.test/x")])),
        ("organisation", identity.organisation(Organisation(uuid.uuid4(), "Oslo kommune", "974778874"))),
        ("practitioner", identity.practitioner(nurse)),
    ]  # fmt: skip


@pytest.mark.parametrize(("builder", "resource"), _every_builder(), ids=[name for name, _ in _every_builder()])
def test_every_resource_survives_a_parse_and_write_back_through_fhir_resources(
    builder: str, resource: dict[str, Any]
) -> None:
    from fhir.resources.R4B import get_fhir_model_class

    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    written = json.loads(model.model_dump_json(exclude_none=True))
    assert _instants_as_values(written) == _instants_as_values(resource), builder


@pytest.mark.parametrize(
    ("resource_type", "key"),
    [
        ("Observation", "patient.identifier"),
        ("Observation", "subject:Patient.identifier"),
        ("Observation", "patient:Patient.name"),
        ("DetectedIssue", "patient.identifier"),
        ("Patient", "_has:Observation:patient:code"),
        ("Patient", "_has"),
    ],
)
@pytest.mark.parametrize("strict", [False, True])
def test_chained_and_has_parameters_are_refused_even_under_lenient_handling(
    resource_type: str, key: str, strict: bool
) -> None:
    with pytest.raises(FhirError) as refused:
        parse_search(resource_type, [(key, "urn:oid:2.16.578.1.12.4.1.4.1|01017012345")], strict=strict)
    assert (refused.value.status, refused.value.code) == (400, "not-supported")


def test_a_dot_in_a_value_is_not_a_chain() -> None:
    request = parse_search("Patient", [("identifier", "urn:oid:2.16.578.1.12.4.1.4.1|01017012345")], strict=True)
    assert [c.name for c in request.criteria] == ["identifier"]
