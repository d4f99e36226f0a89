"""Hostile HTTP input against the running API: NaN and Infinity in numbers, NUL and control characters in every
place a value enters (form, query, path, JSON body, headers), oversize and multipart bodies. Each is a 422 (or 413,
415) problem document, nothing is changed, and the kept-alive connection goes on serving the next request."""

from __future__ import annotations

import base64
import json
import socket
from typing import Any

import httpx
import psycopg
import pytest

from tests.integration.api.support import TwoTeams, add_user, audit_rows
from tests.stack_plugin import login

pytestmark = pytest.mark.integration


def _refused(response: httpx.Response, loc: list[str] | None = None) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    if loc is not None:
        assert body["errors"][0]["loc"] == loc, body
    return body


def test_a_nan_limit_is_refused_and_the_limit_stays(two_teams: TwoTeams, api: httpx.Client) -> None:
    patient = two_teams.a.patients[0]
    url = f"/api/v1/patients/{patient}/thresholds"
    headers = {**two_teams.a_headers, "Content-Type": "application/json"}
    ok = api.put(url, content=b'{"limits":{"spo2":{"unit":"%","red_low":85}}}', headers=headers)
    assert ok.status_code == 200, ok.text
    before = api.get(url, headers=two_teams.a_headers).json()
    for constant in (b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"):
        raw = b'{"limits":{"spo2":{"unit":"%","red_low":' + constant + b"}}}"
        body = _refused(api.put(url, content=raw, headers=headers), ["body", "limits", "spo2", "red_low"])
        assert "finite number" in body["errors"][0]["msg"] and body["errors"][0]["message_nb"]
    after = api.get(url, headers=two_teams.a_headers).json()
    assert after == before
    spo2 = next(k for k in after["kinds"] if k["kind"] == "spo2")
    assert spo2["red_low"] == {"value": 85.0, "source": "override", "condition": None}


def test_nan_in_a_nested_plan_body_is_refused(two_teams: TwoTeams, api: httpx.Client) -> None:
    raw = b'{"protocol":"copd","zones":[{"kind":"spo2","unit":"%","red_low":NaN}]}'
    response = api.post(
        f"/api/v1/patients/{two_teams.a.patients[0]}/plans",
        content=raw,
        headers={**two_teams.a_headers, "Content-Type": "application/json"},
    )
    _refused(response, ["body", "zones", "0", "red_low"])


def test_nul_in_the_token_form_is_refused_and_the_connection_lives_on(make_tenant: Any, api: httpx.Client) -> None:
    tenant = make_tenant()
    for form in ({"username": f"{tenant.nurse}\x00", "password": "x"}, {"username": tenant.nurse, "password": "a\x00"}):
        _refused(api.post("/api/v1/auth/token", data=form))
        assert api.get("/healthz").status_code == 200
    ok = api.post("/api/v1/auth/token", data={"username": tenant.nurse, "password": tenant.nurse_password})
    assert ok.status_code == 200


@pytest.mark.parametrize("value", ["\x00", "a\x00b", "\x01", "\x1b[31m", "\x7f", "\x85", "line\nbreak", "\t"])
def test_control_characters_in_query_parameters_are_refused(two_teams: TwoTeams, api: httpx.Client, value: str) -> None:
    _refused(api.get("/api/v1/patients", params={"q": value}, headers=two_teams.a_headers), ["query", "q"])
    assert api.get("/api/v1/patients", params={"q": "Pasient"}, headers=two_teams.a_headers).status_code == 200


def test_control_characters_in_the_audit_filters_are_refused(settings: Any, api: httpx.Client) -> None:
    username, password, _ = add_user(settings, "admin", [])
    headers = login(str(api.base_url), username, password)
    for name in ("action", "outcome"):
        _refused(api.get("/api/v1/audit", params={name: "read\x00"}, headers=headers), ["query", name])
    assert api.get("/api/v1/audit", params={"action": "read", "limit": 1}, headers=headers).status_code == 200


def test_control_characters_in_alarm_notes_resolutions_and_emergency_reasons_are_refused(
    two_teams: TwoTeams, api: httpx.Client, db: psycopg.Connection[Any]
) -> None:
    alarm = two_teams.a_alarm
    headers = two_teams.a_headers
    _refused(api.post(f"/api/v1/alarms/{alarm}/notes", json={"text": "ringte\x00"}, headers=headers), ["body", "text"])
    _refused(api.post(f"/api/v1/alarms/{alarm}/resolve", json={"resolution": "ok\x00ok"}, headers=headers))
    glass = f"/api/v1/patients/{two_teams.b.patients[0]}/emergency-access"
    _refused(api.post(glass, json={"reason": "Akutt innleggelse\x00, ringt fra legevakt"}, headers=headers))
    # Free text keeps its lines and tabs.
    note = api.post(f"/api/v1/alarms/{alarm}/notes", json={"text": "Ringte.\n\tMålt igjen: 94 %"}, headers=headers)
    assert note.status_code == 200, note.text
    assert [e["data"] for e in note.json()["events"] if e["event"] == "note"] == [
        {"text": "Ringte.\n\tMålt igjen: 94 %"}
    ]
    state = db.execute("SELECT state FROM alarms WHERE id = %s", (alarm,)).fetchone()
    assert state is not None and state[0] == "open"
    assert not audit_rows(db, patient_id=two_teams.b.patients[0], action="emergency_access")


def test_lone_surrogates_and_control_keys_in_json_are_refused(two_teams: TwoTeams, api: httpx.Client) -> None:
    url = f"/api/v1/alarms/{two_teams.a_alarm}/notes"
    headers = {**two_teams.a_headers, "Content-Type": "application/json"}
    _refused(api.post(url, content=b'{"text":"a\\ud800b"}', headers=headers), ["body", "text"])
    _refused(api.post(url, content=b'{"text":"a","x\\u0000":1}', headers=headers), ["body"])
    _refused(api.post(url, content=b"[" * 50_000 + b"]" * 50_000, headers=headers))


def test_nul_in_a_path_or_a_cursor_is_refused_not_a_server_error(two_teams: TwoTeams, api: httpx.Client) -> None:
    headers = two_teams.a_headers
    assert api.get("/api/v1/patients/%00", headers=headers).status_code == 422
    assert api.get("/dashboard/patients/%00abc", headers=headers).status_code == 422
    assert api.get("/fhir/Patient/%00/Observation", headers=headers).status_code == 422
    assert api.get("/api/v1/journal/entries/%01", headers=headers).status_code == 422
    forged = base64.urlsafe_b64encode(json.dumps(["patients", "a\x00", str(two_teams.a.patients[0])]).encode())
    answer = api.get("/api/v1/patients", params={"cursor": forged.decode().rstrip("=")}, headers=headers)
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/problem+json"


def test_oversize_and_multipart_bodies_are_refused(two_teams: TwoTeams, api: httpx.Client) -> None:
    url = f"/api/v1/alarms/{two_teams.a_alarm}/notes"
    big = json.dumps({"text": "x" * (2 * 1024 * 1024)}).encode()
    answer = api.post(url, content=big, headers={**two_teams.a_headers, "Content-Type": "application/json"})
    assert answer.status_code == 413 and answer.headers["content-type"] == "application/problem+json"
    multipart = api.post("/api/v1/auth/token", files={"username": (None, "kari"), "password": (None, "x")})
    assert multipart.status_code == 415


def test_a_control_character_in_a_header_never_reaches_a_route(api_url: str) -> None:
    """Raw bytes on the socket, as a hostile client sends them (httpx refuses to send such a header)."""
    host, port = api_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\x00b\r\n\r\n")
        status_line = sock.recv(65536).split(b"\r\n", 1)[0]
    assert status_line.split()[1] in (b"400", b"422"), status_line


def test_a_foreign_patient_with_hostile_values_is_still_the_same_404(two_teams: TwoTeams, api: httpx.Client) -> None:
    """Hygiene comes first, but a clean request for a foreign patient is the usual 404 (existence not revealed)."""
    foreign = two_teams.b.patients[0]
    url = f"/api/v1/patients/{foreign}/thresholds"
    clean = api.put(url, json={"limits": {"spo2": {"unit": "%", "red_low": 85}}}, headers=two_teams.a_headers)
    assert clean.status_code == 404
    raw = b'{"limits":{"spo2":{"unit":"%","red_low":NaN}}}'
    hostile = api.put(url, content=raw, headers={**two_teams.a_headers, "Content-Type": "application/json"})
    assert hostile.status_code == 422
