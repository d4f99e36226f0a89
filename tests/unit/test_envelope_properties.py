"""Property tests over the envelope model: hostile bytes and hostile envelopes never raise anything but the model's
own `EnvelopeError`, and every valid reading survives its invalid siblings."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vitals import KINDS, EnvelopeError, parse_envelope, scan_envelope
from vitals.envelope import MAX_JSON_DEPTH, load_wire_json
from vitals.questionnaire import parse_questionnaire_envelope
from vitals.status import parse_status

GW = "gw-prop0001"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_hostile_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["\x00", "a\x00b", "\x1b[31m", "\u202eevil", "\ud800", "\udfff", "\x7f", "\u2028", "\ufeff"]),
)
_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    _hostile_text,
)
_json = st.recursive(
    _leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_hostile_text, inner, max_size=4), max_leaves=20
)


@st.composite
def _valid_reading(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(KINDS)))
    info = KINDS[kind]
    value = draw(st.floats(min_value=info.plausible_low, max_value=info.plausible_high, allow_nan=False))
    at = NOW - timedelta(seconds=draw(st.integers(min_value=0, max_value=86_400 * 365)))
    doc: dict[str, Any] = {
        "id": str(uuid.UUID(int=draw(st.integers(min_value=0, max_value=2**128 - 1)))),
        "kind": str(kind),
        "value": value,
        "unit": info.unit,
        "measured_at": at.isoformat(),
        "device": {"address": draw(st.text("0123456789ABCDEF:", min_size=1, max_size=17)), "type": "weight_scale"},
    }
    if draw(st.booleans()):
        doc["group"] = draw(st.text(st.characters(codec="utf-8", categories=["L", "N"]), max_size=20))
    return doc


@st.composite
def _hostile_reading(draw: st.DrawFn) -> Any:
    """Arbitrary JSON, or a valid reading with one field made hostile (always with a fresh id of its own)."""
    if draw(st.booleans()):
        return draw(_json)
    doc = draw(_valid_reading())
    doc["id"] = str(uuid.uuid4())
    field = draw(st.sampled_from(["kind", "value", "unit", "measured_at", "device", "group", "flags", "extra"]))
    hostile = draw(
        st.one_of(
            _json,
            st.just({"address": "A4\x00", "type": "weight_scale"}),
            st.just({"address": "A4", "type": "weight_scale", "model": "\ud800"}),
            st.just("\x00"),
            st.just(1e308),
            st.just("2999-01-01T00:00:00Z"),
        )
    )
    doc[field] = hostile
    return doc


def _payload(readings: list[Any]) -> bytes:
    doc = {"schema": "varde.readings/1", "gateway_id": GW, "sent_at": NOW.isoformat(), "readings": readings}
    return json.dumps(doc).encode()


@FAST
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_the_models_error(payload: bytes) -> None:
    for parse in (
        lambda: scan_envelope(payload, GW, now=NOW),
        lambda: parse_questionnaire_envelope(payload, GW),
        lambda: parse_status(payload),
    ):
        with contextlib.suppress(EnvelopeError):
            parse()


@FAST
@given(_json, st.integers(min_value=0, max_value=3000))
def test_arbitrary_json_and_any_nesting_raise_only_the_models_error(doc: Any, depth: int) -> None:
    body = json.dumps(doc).encode()
    with contextlib.suppress(EnvelopeError):
        scan_envelope(body, GW, now=NOW)
    head = b'{"schema":"varde.readings/1","gateway_id":"' + GW.encode() + b'","readings":'
    try:
        scan_envelope(head + b"[" * depth + body + b"]" * depth + b"}", GW, now=NOW)
    except EnvelopeError as exc:
        if depth >= MAX_JSON_DEPTH:
            assert exc.reason == "too_deep"
    else:
        raise AssertionError("an envelope without sent_at was accepted")


@FAST
@given(st.lists(st.tuples(st.booleans(), _valid_reading(), _hostile_reading()), min_size=1, max_size=12))
def test_every_valid_reading_survives_its_invalid_siblings(drawn: list[tuple[bool, dict[str, Any], Any]]) -> None:
    readings: list[Any] = []
    valid_ids: list[str] = []
    for index, (valid, reading, hostile) in enumerate(drawn):
        if valid:
            reading["id"] = str(uuid.uuid5(uuid.NAMESPACE_OID, str(index)))  # unique within the envelope
            valid_ids.append(reading["id"])
            readings.append(reading)
        else:
            readings.append(hostile)
    payload = _payload(readings)
    scanned = scan_envelope(payload, GW, now=NOW)
    parsed = parse_envelope(payload, GW, now=NOW)
    stored = [str(r["id"]) for r in scanned.readings]
    assert set(valid_ids) <= set(stored), "a valid reading was lost beside an invalid one"
    assert len(scanned.readings) + len(scanned.rejected) == len(readings)
    assert stored == [str(r.id) for r in parsed.readings], "the fast and the named path disagree"
    assert [r.index for r in scanned.rejected] == [r.index for r in parsed.rejected]
    for reading in scanned.readings:
        for text in (reading["device"]["address"], reading["device"].get("model") or "", reading.get("group") or ""):
            assert "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def test_the_bounded_decoder_refuses_depth_before_decoding() -> None:
    for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
        payload = opener * 100_000 + b"1" + closer * 100_000
        try:
            load_wire_json(payload, max_bytes=len(payload))
        except EnvelopeError as exc:
            assert exc.reason == "too_deep"
        else:
            raise AssertionError("100 000 levels were decoded")
    assert load_wire_json(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"]]]"}') == {
        "a": '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]]]'
    }


def test_a_status_listing_more_devices_than_a_home_has_is_refused() -> None:
    devices = [{"address": f"A4:C1:38:00:{i // 256:02X}:{i % 256:02X}", "type": "weight_scale"} for i in range(65)]
    try:
        parse_status(json.dumps({"state": "online", "devices": devices}).encode())
    except EnvelopeError as exc:
        assert exc.reason == "bad_envelope"
    else:
        raise AssertionError("a status with 65 devices was accepted")
    assert len(parse_status(json.dumps({"state": "online", "devices": devices[:64]}).encode()).devices) == 64
