"""A corpus of malformed messages and readings: each lands in the dead-letter table with the right reason while
good traffic flows on, and nothing is dropped silently."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.stack_plugin import Gateway, Tenant, publish, wait_for
from vitals import readings_topic

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def _reading(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "kind": "body_weight",
        "value": 82.4,
        "unit": "kg",
        "measured_at": NOW.isoformat(),
        "device": {"address": "C4:7C:8D:00:00:07", "type": "weight_scale", "model": "UC-352BLE"},
        "flags": [],
    }
    doc.update(overrides)
    return doc


def _envelope(gateway_id: str, readings: list[Any], **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": "varde.readings/1",
        "gateway_id": gateway_id,
        "sent_at": NOW.isoformat(),
        "readings": readings,
    }
    doc.update(overrides)
    return doc


# (case name, builder(gateway_id) -> payload bytes, expected reason, whole message?)
def _whole(name: str, reason: str, build: Any) -> tuple[str, Any, str, bool]:
    return name, build, reason, True


def _single(name: str, reason: str, **overrides: Any) -> tuple[str, Any, str, bool]:
    return name, lambda gw: json.dumps(_envelope(gw, [_reading(), _reading(**overrides)])).encode(), reason, False


def _js(doc: Any) -> bytes:
    return json.dumps(doc).encode()


CASES = [
    _whole("empty_payload", "bad_json", lambda gw: b""),
    _whole("not_json", "bad_json", lambda gw: b"hello gateway"),
    _whole("truncated_json", "bad_json", lambda gw: _js(_envelope(gw, [_reading()]))[:-7]),
    _whole("latin1_bytes", "not_utf8", lambda gw: b'{"schema": "varde.readings/1", "x": "\xe6\xf8\xe5"}'),
    _whole("nan_literal", "bad_json", lambda gw: b'{"schema": "varde.readings/1", "value": NaN}'),
    _whole("json_array", "bad_envelope", lambda gw: b"[1, 2, 3]"),
    _whole("json_string", "bad_envelope", lambda gw: b'"readings"'),
    _whole(
        "missing_schema",
        "wrong_schema",
        lambda gw: _js({k: v for k, v in _envelope(gw, [_reading()]).items() if k != "schema"}),
    ),
    _whole(
        "future_schema_version", "wrong_schema", lambda gw: _js(_envelope(gw, [_reading()], schema="varde.readings/2"))
    ),
    _whole(
        "payload_names_other_gateway", "gateway_mismatch", lambda gw: _js(_envelope("gw-000000000000", [_reading()]))
    ),
    _whole("no_readings", "bad_envelope", lambda gw: _js(_envelope(gw, []))),
    _whole("readings_not_a_list", "bad_envelope", lambda gw: _js(_envelope(gw, {"a": 1}))),  # type: ignore[arg-type]
    _whole(
        "sent_at_without_offset",
        "bad_envelope",
        lambda gw: _js(_envelope(gw, [_reading()], sent_at="2026-11-21T10:00:00")),
    ),
    _whole("sent_at_garbage", "bad_envelope", lambda gw: _js(_envelope(gw, [_reading()], sent_at="tomorrow"))),
    _whole(
        "patient_identity_in_payload",
        "bad_envelope",
        lambda gw: _js(_envelope(gw, [_reading()], patient="Ola Nordmann")),
    ),
    _whole(
        "oversized_payload",
        "oversized",
        lambda gw: _js(_envelope(gw, [_reading(group="x" * 60)], padding="y" * 300_000)),
    ),
    _whole(
        "too_many_readings", "too_many_readings", lambda gw: _js(_envelope(gw, [{"id": str(i)} for i in range(2001)]))
    ),
    _single("unknown_kind", "unknown_kind", kind="blood_alcohol"),
    _single("kind_wrong_case", "unknown_kind", kind="SPO2"),
    _single("weight_in_pounds", "wrong_unit", unit="[lb_av]"),
    _single("unit_missing", "bad_reading", unit=None),
    _single("weight_implausible_high", "implausible_value", value=612.0),
    _single("weight_implausible_low", "implausible_value", value=0.4),
    _single("spo2_over_100", "implausible_value", kind="spo2", unit="%", value=130.0),
    _single("negative_temperature", "implausible_value", kind="body_temperature", unit="Cel", value=-3.0),
    _single("value_is_string", "bad_reading", value="82.4"),
    _single("value_missing", "bad_reading", value=None),
    _single("value_is_boolean", "bad_reading", value=True),
    _single("measured_at_epoch_number", "bad_reading", measured_at=1763719198),
    _single("id_not_uuid", "bad_reading", id="reading-1"),
    _single("measured_in_future", "future_time", measured_at=(NOW + timedelta(days=1)).isoformat()),
    _single("measured_last_century", "too_old", measured_at="1999-12-31T23:59:59Z"),
    _single("measured_at_naive", "bad_reading", measured_at="2026-11-21T09:59:58"),
    _single("device_missing", "bad_reading", device=None),
    _single("device_type_bad", "bad_reading", device={"address": "C4:7C:8D:00:00:07", "type": "Weight Scale!"}),
    _single("flag_with_spaces", "bad_reading", flags=["cuff loose"]),
    _single("extra_field", "bad_reading", patient_name="Ola"),
]


def test_corpus_has_at_least_thirty_named_cases() -> None:
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


def _dead_letters(db: psycopg.Connection[Any], gateway_id: str) -> list[tuple[str, int | None, int]]:
    return db.execute(
        "SELECT reason, reading_index, reading_count FROM rejected_messages WHERE gateway_id = %s ORDER BY id",
        (gateway_id,),
    ).fetchall()


@pytest.mark.parametrize(("name", "build", "reason", "whole"), CASES, ids=[c[0] for c in CASES])
def test_malformed_input_is_dead_lettered_with_reason_while_good_traffic_flows(
    name: str, build: Any, reason: str, whole: bool, make_tenant: Any, db: psycopg.Connection[Any]
) -> None:
    tenant: Tenant = make_tenant(protocol="general")
    gateway: Gateway = tenant.gateways[0]
    good = _reading()
    payload = build(gateway.gateway_id)
    if name == "patient_identity_in_payload":
        assert b"Ola Nordmann" in payload
    topic = readings_topic(gateway.gateway_id)
    assert publish(gateway, topic, payload) < 128
    assert publish(gateway, topic, json.dumps(_envelope(gateway.gateway_id, [good])).encode()) < 128

    def settled() -> list[tuple[str, int | None, int]] | None:
        stored = db.execute("SELECT count(*) FROM readings WHERE id = %s", (good["id"],)).fetchone()
        letters = _dead_letters(db, gateway.gateway_id)
        return letters if stored == (1,) and letters else None

    letters = wait_for(settled, what=f"{name}: dead letter and the good reading")
    assert [letter[0] for letter in letters] == [reason]
    if whole:
        assert letters[0][1] is None
    else:
        assert letters[0][1] == 1
        sibling = json.loads(payload)["readings"][0]["id"]
        assert db.execute("SELECT count(*) FROM readings WHERE id = %s", (sibling,)).fetchone() == (1,)


def test_message_from_unknown_or_disabled_gateway_is_dead_lettered(
    make_tenant: Any, db: psycopg.Connection[Any], settings: Any
) -> None:
    from varde.admin import revoke_gateway

    tenant: Tenant = make_tenant(patients=2)
    unknown, disabled = tenant.gateways
    db.execute("UPDATE gateways SET patient_id = NULL WHERE id = %s", (unknown.gateway_id,))
    assert (
        publish(
            unknown,
            readings_topic(unknown.gateway_id),
            json.dumps(_envelope(unknown.gateway_id, [_reading()])).encode(),
        )
        < 128
    )
    wait_for(lambda: _dead_letters(db, unknown.gateway_id), what="dead letter of the gateway without patient")
    assert _dead_letters(db, unknown.gateway_id)[0][0] == "unknown_gateway"
    # The database says disabled while the broker still lets the gateway in: ingest refuses on its own.
    db.execute("UPDATE gateways SET enabled = false WHERE id = %s", (disabled.gateway_id,))
    time.sleep(0.5)  # the change reaches ingest's registry by NOTIFY; allow it the round trip
    payload = json.dumps(_envelope(disabled.gateway_id, [_reading()])).encode()
    assert publish(disabled, readings_topic(disabled.gateway_id), payload) < 128
    letters = wait_for(lambda: _dead_letters(db, disabled.gateway_id), timeout=20, what="disabled gateway letter")
    assert letters[0][0] in {"disabled_gateway"}
    revoke_gateway(settings, disabled.gateway_id)
