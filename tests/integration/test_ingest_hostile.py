"""Hostile MQTT input against the running stack: poison messages are dead-lettered and acknowledged while ingest
goes on storing every other gateway's readings; hostile text is refused per reading."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from store.settings import varde_home
from tests.stack_plugin import Gateway, Tenant, publish, wait_for
from varde import stack
from vitals import questionnaires_topic, readings_topic, status_topic

pytestmark = pytest.mark.integration

DEEP = 100_000


def _reading(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "kind": "body_weight",
        "value": 82.4,
        "unit": "kg",
        "measured_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "device": {"address": "C4:7C:8D:00:00:07", "type": "weight_scale", "model": "UC-352BLE"},
    }
    doc.update(overrides)
    return doc


def _envelope(gateway_id: str, readings: list[Any]) -> bytes:
    sent_at = datetime.now(UTC).isoformat()
    return json.dumps(
        {"schema": "varde.readings/1", "gateway_id": gateway_id, "sent_at": sent_at, "readings": readings}
    ).encode()


def _nested(head: bytes, depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return head + opener * depth + closer * depth + b"}"


def _hostile_payloads(gateway_id: str) -> list[tuple[str, str, bytes]]:
    """(case, topic, payload): each well under the 256 KiB limit, each deep enough to exhaust a recursive parser."""
    head = b'{"schema":"varde.readings/1","gateway_id":"' + gateway_id.encode() + b'","sent_at":"2026-01-01T00:00:00Z",'
    q_head = (
        b'{"schema":"varde.questionnaire/1","gateway_id":"'
        + gateway_id.encode()
        + b'","sent_at":"2026-01-01T00:00:00Z",'
    )
    return [
        ("readings_array", readings_topic(gateway_id), _nested(head + b'"readings":', DEEP)),
        (
            "readings_object",
            readings_topic(gateway_id),
            head + b'"readings":' + b'{"a":' * 40_000 + b"1" + b"}" * 40_001,
        ),
        (
            "reading_field",
            readings_topic(gateway_id),
            head + b'"readings":[{"value":' + b"[" * DEEP + b"]" * DEEP + b"}]}",
        ),
        ("questionnaires_array", questionnaires_topic(gateway_id), _nested(q_head + b'"responses":', DEEP)),
        ("status_array", status_topic(gateway_id), _nested(b'{"state":"online","devices":', DEEP)),
    ]


def _letters(db: psycopg.Connection[Any], gateway_id: str) -> list[tuple[str, str, str]]:
    rows = db.execute(
        "SELECT topic, reason, detail FROM rejected_messages WHERE gateway_id = %s ORDER BY id", (gateway_id,)
    ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def _stored(db: psycopg.Connection[Any], reading_id: str) -> int:
    row = db.execute("SELECT count(*) FROM readings WHERE id = %s", (reading_id,)).fetchone()
    return int(row[0]) if row else 0


def _ingest_pid() -> int | None:
    state = stack.load_state(stack.StackPaths(varde_home()))
    pid = ((state.get("services") or {}).get("ingest") or {}).get("pid")
    return int(pid) if pid and stack.pid_alive(pid) else None


def test_deeply_nested_payload_on_every_topic_is_dead_lettered_at_once_while_others_are_stored(
    make_tenant: Any, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(patients=2, protocol="general")
    attacker, neighbour = tenant.gateways
    worker = _ingest_pid()
    assert worker is not None, "the stack's ingest worker is not running"
    for case, topic, payload in _hostile_payloads(attacker.gateway_id):
        assert len(payload) < 256 * 1024, case
        before = len(_letters(db, attacker.gateway_id))
        started = time.monotonic()
        assert publish(attacker, topic, payload) < 128, case
        letters = wait_for(
            lambda before=before: _letters(db, attacker.gateway_id)[before:], timeout=30, what=f"{case} dead letter"
        )
        elapsed = time.monotonic() - started
        print(f"\n{case}: {len(payload)} bytes dead-lettered as {letters[0][1]} after {elapsed:.3f} s")
        assert [(t, r) for t, r, _ in letters] == [(topic, "too_deep")], case
        assert elapsed < 1.0, f"{case}: dead-lettered only after {elapsed:.2f} s"
        good = _reading()
        assert publish(neighbour, readings_topic(neighbour.gateway_id), _envelope(neighbour.gateway_id, [good])) < 128
        wait_for(lambda good=good: _stored(db, good["id"]) == 1, what=f"the neighbour's reading after {case}")
    assert _ingest_pid() == worker, "the ingest worker died (or was restarted) on a hostile payload"


def _nul_cases() -> list[tuple[str, dict[str, Any]]]:
    device = {"address": "C4:7C:8D:00:00:07", "type": "weight_scale"}
    return [
        ("nul_in_model", _reading(device={**device, "model": "UC\u0000352"})),
        ("nul_in_address", _reading(device={**device, "address": "C4:7C\u0000"})),
        ("nul_in_group", _reading(group="g\u0000")),
        ("escape_in_group", _reading(group="\u001b[31mred")),
        ("bidi_override_in_model", _reading(device={**device, "model": "\u202eLBE153-AU"})),
        ("lone_surrogate_in_model", _reading(device={**device, "model": "\ud800"})),
    ]


def test_control_characters_in_a_reading_dead_letter_that_reading_and_keep_its_siblings(
    make_tenant: Any, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(protocol="general")
    gateway: Gateway = tenant.gateways[0]
    cases = _nul_cases()
    siblings = [_reading(), _reading()]
    readings = [siblings[0], *[doc for _, doc in cases], siblings[1]]
    payload = _envelope(gateway.gateway_id, readings)
    assert b"\\u0000" in payload and b"\\ud800" in payload
    assert publish(gateway, readings_topic(gateway.gateway_id), payload) < 128
    wait_for(lambda: all(_stored(db, s["id"]) == 1 for s in siblings), what="the good siblings stored")
    rows = wait_for(
        lambda: (
            r
            if len(
                r := db.execute(
                    "SELECT reading_index, reading_id::text, reason, detail FROM rejected_messages "
                    "WHERE gateway_id = %s ORDER BY reading_index",
                    (gateway.gateway_id,),
                ).fetchall()
            )
            == len(cases)
            else None
        ),
        what="one dead letter per hostile reading",
    )
    assert [r[0] for r in rows] == list(range(1, len(cases) + 1))
    assert [r[1] for r in rows] == [doc["id"] for _, doc in cases]
    assert {r[2] for r in rows} == {"bad_text"}, rows
    for (_, doc), row in zip(cases, rows, strict=True):
        assert _stored(db, doc["id"]) == 0
        assert "\x00" not in row[3]


def test_status_with_a_nul_byte_is_dead_lettered_and_ingest_lives_on(
    make_tenant: Any, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(patients=2, protocol="general")
    gateway, neighbour = tenant.gateways
    worker = _ingest_pid()
    payload = json.dumps({"state": "online", "agent_version": "1.0\u0000", "devices": []}).encode()
    assert publish(gateway, status_topic(gateway.gateway_id), payload) < 128
    letters = wait_for(lambda: _letters(db, gateway.gateway_id), what="the status dead letter")
    assert [r for _, r, _ in letters] == ["bad_text"]
    good = _reading()
    assert publish(neighbour, readings_topic(neighbour.gateway_id), _envelope(neighbour.gateway_id, [good])) < 128
    wait_for(lambda: _stored(db, good["id"]) == 1, what="the neighbour's reading")
    assert _ingest_pid() == worker


def test_a_packet_far_over_the_size_limit_is_refused_by_the_broker(
    make_tenant: Any, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(protocol="general")
    gateway: Gateway = tenant.gateways[0]
    disconnected: list[Any] = []
    acked: list[Any] = []
    client = gateway.client()
    client.on_disconnect = lambda c, u, f, rc, p: disconnected.append(rc)
    client.on_publish = lambda c, u, mid, rc, p: acked.append(rc)
    client.connect(gateway.host, gateway.port)
    client.loop_start()
    try:
        client.publish(readings_topic(gateway.gateway_id), b"[" * (2 * 1024 * 1024), qos=1)
        wait_for(lambda: disconnected or acked, 15, what="the broker's answer to a 2 MiB packet")
    finally:
        client.disconnect()
        client.loop_stop()
    assert not acked, "a 2 MiB packet was accepted"
    # A barrier, not a pause: the gateway's next envelope is stored, so ingest was running and caught up while the
    # refused packet could have reached it, and it left no dead letter.
    good = _reading()
    assert publish(gateway, readings_topic(gateway.gateway_id), _envelope(gateway.gateway_id, [good])) < 128
    wait_for(lambda: _stored(db, good["id"]) == 1, what="the gateway's next reading")
    assert _letters(db, gateway.gateway_id) == []
