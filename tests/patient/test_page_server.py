"""The patient page's HTTP surface: loopback host names only, JSON answers from the page's own origin, security
headers, and server-sent events that carry a reading to the page within a second."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.edge.edge_fixtures import free_port
from tests.patient.gateway import RunningAgent, gateway_config, reading, request
from tests.patient.plans import wire
from vitals import Kind, plan_topic


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[RunningAgent]:
    """An agent whose broker is unreachable: everything on the page must work without it."""
    with RunningAgent(gateway_config(tmp_path, "127.0.0.1", free_port())) as running:
        yield running


def _raw(url: str, head: str) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(head.encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_the_page_and_its_assets_are_served_with_security_headers(gw: RunningAgent) -> None:
    host = urlsplit(gw.url).netloc
    page = _raw(gw.url, f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").decode()
    assert page.startswith("HTTP/1.1 200") and '<script src="/app.js" defer></script>' in page
    assert "Content-Security-Policy: default-src 'none'; script-src 'self'" in page
    assert "X-Frame-Options: DENY" in page and "Cache-Control: no-store" in page
    assert _raw(gw.url, f"GET /app.js HTTP/1.1\r\nHost: {host}\r\n\r\n").startswith(b"HTTP/1.1 200")
    assert _raw(gw.url, f"GET /nothing HTTP/1.1\r\nHost: {host}\r\n\r\n").startswith(b"HTTP/1.1 404")


def test_a_foreign_host_name_is_refused_against_dns_rebinding(gw: RunningAgent) -> None:
    answer = _raw(gw.url, "GET /api/state HTTP/1.1\r\nHost: attacker.example:8480\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 421")
    assert b'"plan"' not in answer
    local = _raw(gw.url, f"GET /api/state HTTP/1.1\r\nHost: localhost:{urlsplit(gw.url).port}\r\n\r\n")
    assert local.startswith(b"HTTP/1.1 200")


def test_answers_must_be_json_from_the_pages_own_origin_and_fit_the_plan(gw: RunningAgent) -> None:
    url = gw.url + "api/questionnaires/hf-symptoms"
    answers = {"answers": {"breath": "no", "swelling": "yes"}}
    assert request(url, answers)[0] == 404  # no plan yet
    gw.agent.screen.plans.receive(plan_topic("gw-test-0001"), wire(1))
    assert request(url, answers, headers={"Origin": "http://attacker.example"})[0] == 403
    assert request(url, answers, headers={"Content-Type": "text/plain"})[0] == 415
    assert request(url, {"answers": {"breath": "no"}})[0] == 400
    assert request(url, method="GET")[0] == 405
    status, saved = request(url, answers, headers={"Origin": gw.url.rstrip("/")})
    assert status == 201 and (saved["score"], saved["zone"]) == (2, "yellow")
    assert gw.agent.questionnaires.depth == 1


def test_server_sent_events_bring_a_reading_to_the_page_within_a_second(gw: RunningAgent) -> None:
    gw.agent.screen.plans.receive(plan_topic("gw-test-0001"), wire(1))
    parts = urlsplit(gw.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("GET", "/api/events")
    response = conn.getresponse()
    assert response.status == 200 and response.getheader("Content-Type", "").startswith("text/event-stream")

    def next_state() -> dict[str, object]:
        while True:
            line = response.readline().decode()
            if line.startswith("data: "):
                return json.loads(line.removeprefix("data: "))  # type: ignore[no-any-return]

    assert next_state()["latest"] is None
    started = time.monotonic()
    gw.agent.accept([reading(Kind.BODY_WEIGHT, 83.0)])
    state = next_state()
    assert time.monotonic() - started < 1.0
    assert state["latest"]["zone"] == "yellow"  # type: ignore[index]
    assert state["latest"]["advice"]["en"] == "Take one extra water tablet today."  # type: ignore[index]
    conn.close()
