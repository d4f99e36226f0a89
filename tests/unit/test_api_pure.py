"""Pure parts of the clinician API: paging cursors, OIDC role mapping and FHIR mapping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from clinician_api import fhir, paging
from clinician_api.problems import ProblemError
from clinician_api.security import TokenError, _oidc_role, _oidc_teams


def test_cursor_round_trip_and_tampering() -> None:
    key = [1, datetime(2026, 1, 1, tzinfo=UTC), uuid.uuid4()]
    cursor = paging.encode("alarms", key)
    assert paging.decode("alarms", cursor, (int, paging.parse_time, uuid.UUID)) == key
    for bad in (cursor + "x", "e30", paging.encode("patients", key), paging.encode("alarms", key[:2]), "%%%"):
        with pytest.raises(ProblemError) as caught:
            paging.decode("alarms", bad, (int, paging.parse_time, uuid.UUID))
        assert caught.value.status == 400


def test_page_hands_out_a_cursor_only_when_there_is_more() -> None:
    rows, cursor = paging.page([1, 2, 3], 3, lambda r: (r,), "n")
    assert (rows, cursor) == ([1, 2, 3], None)
    rows, cursor = paging.page([1, 2, 3, 4], 3, lambda r: (r,), "n")
    assert rows == [1, 2, 3] and paging.decode("n", cursor or "", (int,)) == [3]


@pytest.mark.parametrize(
    ("claims", "role"),
    [({"roles": ["nurse"]}, "nurse"), ({"roles": ["nurse", "admin"]}, "admin"), ({"role": "physician"}, "physician")],
)
def test_oidc_role_is_the_strongest_varde_role(claims: dict[str, object], role: str) -> None:
    assert _oidc_role(claims) == role


def test_oidc_without_a_varde_role_is_refused_and_groups_map_to_team_names() -> None:
    with pytest.raises(TokenError):
        _oidc_role({"roles": ["offline_access"]})
    assert _oidc_teams({"groups": ["/hjerte", "lunge", "/hjerte"]}) == ("hjerte", "lunge")
    assert _oidc_teams({}) is None


_PATIENT = uuid.UUID("0b7f3c4e-5d1a-4b7e-9a51-0c2f4e8d9a10")


def _reading(kind: str, value: float, group: str | None = "g") -> fhir.ReadingRow:
    t = datetime(2026, 4, 1, 7, 30, tzinfo=UTC)
    return fhir.ReadingRow(
        uuid.uuid4(),
        _PATIENT,
        "gw-abc123",
        kind,
        value,
        t,
        t,
        "A4:C1:38:00:00:01",
        "blood_pressure_monitor",
        None,
        group,
    )


def test_systolic_and_diastolic_of_one_measurement_become_one_panel() -> None:
    sys_, dia = _reading("bp_systolic", 150), _reading("bp_diastolic", 95)
    out = fhir.observations([sys_, dia, _reading("pulse_rate", 70)])
    panel = next(o for o in out if o["code"]["coding"][0]["code"] == "85354-9")
    assert panel["id"] == str(sys_.id)
    assert [c["valueQuantity"]["value"] for c in panel["component"]] == [150, 95]
    assert len(out) == 2


def test_device_ids_are_valid_fhir_ids_and_stable() -> None:
    ident = fhir.device_id("gw-abc123", "a4:c1:38:00:00:01")
    assert ident == fhir.device_id("gw-abc123", "A4:C1:38:00:00:01")
    assert len(ident) <= 64 and ident.replace("-", "").isalnum()


def test_access_log_merges_one_visit_of_many_reads_into_one_line() -> None:
    from datetime import UTC, datetime, timedelta

    from clinician_api.citizen.views import _merged, what_of

    start = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    base = {
        "who": "Kari",
        "role": "nurse",
        "action": "read",
        "what": "measurements",
        "outcome": "ok",
        "why": "care_team",
        "reason": None,
        "team": "Hjerte",
    }
    items = [{**base, "at": start + timedelta(minutes=m)} for m in (40, 12, 10, 0)]  # newest first
    items.insert(1, {**base, "what": "plan", "at": start + timedelta(minutes=30)})
    merged = _merged(items)
    assert [(m["what"], m["count"]) for m in merged] == [("measurements", 1), ("plan", 1), ("measurements", 3)]
    assert merged[2]["first_at"] == start and merged[2]["at"] == start + timedelta(minutes=12)
    assert what_of("/api/v1/patients/00000000-0000-0000-0000-000000000001") == "record"
    assert what_of("/api/v1/patients/00000000-0000-0000-0000-000000000001/measurements") == "measurements"
    assert what_of("/fhir/Patient/x/$everything") == "record_export"


def test_access_log_names_the_basis_of_each_access_and_never_calls_another_team_the_care_team() -> None:
    from clinician_api.citizen.views import why_of

    assert why_of("nurse", "ok", False, None) == "care_team"
    assert why_of("nurse", "refused", False, None) == "care_team"  # had access, the request itself failed
    assert why_of("physician", "denied", False, None) == "no_access"
    assert why_of("physician", "ok", True, "Innlagt akutt") == "emergency"
    assert why_of("nurse", "ok", False, "consultative") == "consultative"
    assert why_of("nurse", "refused", False, "handover") == "handover"
    assert why_of("relative", "denied", False, None) == "proxy"


def test_a_crash_under_fhir_is_an_operation_outcome_without_the_trace() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from clinician_api import problems

    app = FastAPI()
    problems.install(app)

    @app.get("/fhir/Observation")
    def _fhir_crash() -> None:
        raise RuntimeError("secret detail 01017012345")

    @app.get("/api/v1/crash")
    def _api_crash() -> None:
        raise RuntimeError("secret detail 01017012345")

    client = TestClient(app, raise_server_exceptions=False)
    crashed = client.get("/fhir/Observation")
    assert crashed.status_code == 500 and crashed.headers["content-type"].startswith("application/fhir+json")
    assert crashed.json()["resourceType"] == "OperationOutcome"
    assert crashed.json()["issue"][0]["code"] == "exception" and "secret" not in crashed.text
    elsewhere = client.get("/api/v1/crash")
    assert elsewhere.status_code == 500 and "secret" not in elsewhere.text and "Traceback" not in elsewhere.text


def test_a_database_away_is_a_503_to_retry_not_a_crash() -> None:
    import psycopg
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from psycopg_pool import PoolTimeout

    from clinician_api import problems

    app = FastAPI()
    problems.install(app)

    @app.get("/api/v1/patients/{patient_id}")
    def _pool_empty(patient_id: str) -> None:
        raise PoolTimeout("couldn't get a connection after 30.00 sec")

    @app.get("/fhir/Patient")
    def _connection_lost() -> None:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    client = TestClient(app, raise_server_exceptions=False)
    away = client.get("/api/v1/patients/0b7f3c4e-5d1a-4b7e-9a51-0c2f4e8d9a10")
    assert away.status_code == 503 and away.headers["retry-after"] == str(problems.DATABASE_RETRY_AFTER_S)
    assert away.headers["content-type"].startswith("application/problem+json")
    assert "database" in away.json()["detail"] and "30.00" not in away.text
    fhir_away = client.get("/fhir/Patient")
    assert fhir_away.status_code == 503 and fhir_away.json()["issue"][0]["code"] == "transient"
    assert fhir_away.headers["retry-after"] == str(problems.DATABASE_RETRY_AFTER_S)


@pytest.mark.parametrize(
    "items",
    [
        ["next", "x", "y"],
        ["next", "2026-01-01T00:00:00", "0b7f3c4e-5d1a-4b7e-9a51-0c2f4e8d9a10"],  # no zone
        ["next", "2026-01-01T00:00:00+00:00", "robert'); DROP TABLE"],
        ["sideways", "", "0b7f3c4e-5d1a-4b7e-9a51-0c2f4e8d9a10"],
        ["next", 5, "0b7f3c4e-5d1a-4b7e-9a51-0c2f4e8d9a10"],
        ["next", ""],
    ],
)
def test_a_hand_made_fhir_cursor_is_refused_when_decoded(items: list[object]) -> None:
    import base64
    import json

    from clinician_api.fhir_search import Cursor, FhirError

    text = base64.urlsafe_b64encode(json.dumps(items).encode()).decode()
    with pytest.raises(FhirError) as refused:
        Cursor.decode(text)
    assert refused.value.status == 400


def test_a_fhir_cursor_the_server_made_decodes_to_itself() -> None:
    from clinician_api.fhir_search import Cursor

    for cursor in (
        Cursor("next", ("2026-01-01T00:00:00+00:00", "0b7f3c4e-5d1a-4b7e-9a51-0c2f4e8d9a10")),
        Cursor("prev", ("", "dev-0123456789abcdef01234567")),
        Cursor("next", ("", "gw-home-1")),
    ):
        assert Cursor.decode(cursor.encode()) == cursor
