"""The wire contract: envelopes round-trip exactly and bad input is refused with a precise reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitals import (
    FUTURE_SKEW,
    KINDS,
    RETENTION,
    SCHEMA,
    DeviceRef,
    Envelope,
    EnvelopeError,
    Kind,
    Reading,
    Reason,
    parse_envelope,
    reading_id,
    scan_envelope,
)
from vitals.envelope import _scan_valid

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
GW = "gw-0001"


def _reading_dict(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": str(uuid4()),
        "kind": "spo2",
        "value": 95.0,
        "unit": "%",
        "measured_at": "2026-11-21T09:59:58Z",
        "device": {"address": "A4:C1:38:00:00:01", "type": "pulse_oximeter", "model": "PO-60"},
        "flags": [],
    }
    doc.update(overrides)
    return doc


def _payload(readings: list[dict[str, Any]], **overrides: Any) -> bytes:
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "gateway_id": GW,
        "sent_at": "2026-11-21T10:00:00.120Z",
        "readings": readings,
    }
    doc.update(overrides)
    return json.dumps(doc).encode()


@st.composite
def readings(draw: st.DrawFn) -> Reading:
    kind = draw(st.sampled_from(list(Kind)))
    info = KINDS[kind]
    value = draw(st.floats(min_value=info.plausible_low, max_value=info.plausible_high, allow_nan=False))
    offset = draw(st.integers(min_value=0, max_value=400 * 86400))
    return Reading(
        id=uuid4(),
        kind=kind,
        value=value,
        unit=info.unit,
        measured_at=NOW - timedelta(seconds=offset),
        device=DeviceRef(address="A4:C1:38:00:00:01", type="blood_pressure_monitor", model=None),
        group=draw(st.none() | st.text(alphabet="0123456789abcdef", min_size=1, max_size=32)),
        flags=tuple(draw(st.lists(st.sampled_from(["irregular_pulse", "cuff_loose", "low_battery"]), max_size=3))),
    )


@given(st.lists(readings(), min_size=1, max_size=20))
def test_envelope_serialise_then_parse_round_trips(items: list[Reading]) -> None:
    envelope = Envelope(gateway_id=GW, sent_at=NOW, readings=tuple(items))
    parsed = parse_envelope(envelope.to_json(), GW, now=NOW)
    assert parsed.rejected == []
    assert parsed.readings == list(items)
    assert Envelope(gateway_id=GW, sent_at=parsed.sent_at, readings=tuple(parsed.readings)) == envelope


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", Reason.NOT_UTF8),
        (b"{not json", Reason.BAD_JSON),
        (b"[1, 2]", Reason.BAD_ENVELOPE),
        (_payload([_reading_dict()], schema="varde.readings/2"), Reason.WRONG_SCHEMA),
        (_payload([_reading_dict()], gateway_id="gw-0002"), Reason.GATEWAY_MISMATCH),
        (_payload([]), Reason.BAD_ENVELOPE),
        (_payload([_reading_dict()], sent_at="yesterday"), Reason.BAD_ENVELOPE),
        (_payload([_reading_dict()], sent_at="2026-11-21T10:00:00"), Reason.BAD_ENVELOPE),
        (_payload([_reading_dict()], patient="Ola Nordmann"), Reason.BAD_ENVELOPE),
        (b" " * 300_000, Reason.OVERSIZED),
        (b'{"schema": "varde.readings/1", "x": NaN}', Reason.BAD_JSON),
    ],
)
def test_invalid_envelope_is_refused_with_reason(payload: bytes, reason: Reason) -> None:
    with pytest.raises(EnvelopeError) as info:
        parse_envelope(payload, GW, now=NOW)
    assert info.value.reason is reason


@pytest.mark.parametrize(
    ("overrides", "reason", "fragment"),
    [
        ({"kind": "blood_alcohol"}, Reason.UNKNOWN_KIND, "blood_alcohol"),
        ({"unit": "mmHg"}, Reason.WRONG_UNIT, "'%'"),
        ({"value": 130.0}, Reason.IMPLAUSIBLE_VALUE, "spo2=130 outside 50–100"),
        ({"value": "high"}, Reason.BAD_READING, "value"),
        ({"value": "82.4"}, Reason.BAD_READING, "value"),
        ({"measured_at": 1763719198}, Reason.BAD_READING, "RFC 3339"),
        ({"measured_at": "2026-11-22T10:00:00Z"}, Reason.FUTURE_TIME, "future"),
        ({"measured_at": "2001-01-01T00:00:00Z"}, Reason.TOO_OLD, "retention"),
        ({"id": "not-a-uuid"}, Reason.BAD_READING, "id"),
        ({"flags": ["Bad Flag!"]}, Reason.BAD_READING, "flags"),
    ],
)
def test_bad_reading_is_rejected_and_siblings_kept(overrides: dict[str, Any], reason: Reason, fragment: str) -> None:
    good = _reading_dict()
    parsed = parse_envelope(_payload([good, _reading_dict(**overrides)]), GW, now=NOW)
    assert [str(r.id) for r in parsed.readings] == [good["id"]]
    assert len(parsed.rejected) == 1
    assert parsed.rejected[0].index == 1
    assert parsed.rejected[0].reason is reason
    assert fragment in parsed.rejected[0].detail


def test_duplicate_id_within_envelope_is_rejected_once() -> None:
    doc = _reading_dict()
    parsed = parse_envelope(_payload([doc, dict(doc)]), GW, now=NOW)
    assert len(parsed.readings) == 1
    assert [r.reason for r in parsed.rejected] == [Reason.DUPLICATE_ID]


def test_reading_id_is_stable_and_distinguishes_inputs() -> None:
    a = reading_id(GW, "a4:c1:38:00:00:01", "spo2", "2026-11-21T09:59:58", 7)
    assert a == reading_id(GW, "A4:C1:38:00:00:01", "spo2", "2026-11-21T09:59:58", 7)
    assert a != reading_id(GW, "A4:C1:38:00:00:01", "spo2", "2026-11-21T09:59:58", 8)
    assert a != reading_id("gw-0002", "A4:C1:38:00:00:01", "spo2", "2026-11-21T09:59:58", 7)
    assert a.version == 5


# --- the ingest fast path agrees with the naming path on every message -------------------------------------------


def _verdict_parse(payload: bytes) -> Any:
    try:
        parsed = parse_envelope(payload, GW, now=NOW)
    except EnvelopeError as exc:
        return ("refused", exc.reason)
    return (
        parsed.sent_at,
        [(r.id, r.kind.value, r.value, r.measured_at, r.device.model, r.group, list(r.flags)) for r in parsed.readings],
        [(r.index, r.reason) for r in parsed.rejected],
    )


def _verdict_scan(payload: bytes) -> Any:
    try:
        scanned = scan_envelope(payload, GW, now=NOW)
    except EnvelopeError as exc:
        return ("refused", exc.reason)
    return (
        scanned.sent_at,
        [
            (
                r["id"],
                r["kind"],
                r["value"],
                r["measured_at"],
                r["device"].get("model"),
                r.get("group"),
                r.get("flags", []),
            )
            for r in scanned.readings
        ],
        [(r.index, r.reason) for r in scanned.rejected],
    )


_AWKWARD: list[Any] = [
    None,
    True,
    0,
    95,
    95.5,
    -1e308,
    1e400,
    "95",
    "",
    "spo2",
    "%",
    "2026-11-21T09:59:58Z",
    "2026-11-21T10:59:58+01:00",
    "2026-11-21 09:59:58Z",
    "2026-11-21T09:59:58.123456789Z",
    "2026-11-21T09:59:58",
    "2026-11-21",
    1763719198,
    "A4:C1:38:00:00:01",
    str(uuid4()).upper(),
    "urn:uuid:" + str(uuid4()),
    [],
    ["irregular_pulse"],
    ["Bad Flag!"],
    {},
    {"address": "A4:C1:38:00:00:01", "type": "pulse_oximeter"},
    {"address": "A4:C1:38:00:00:01", "type": "pulse_oximeter", "model": None, "x": 1},
]
_FIELDS = ["id", "kind", "value", "unit", "measured_at", "device", "group", "flags", "extra"]


@given(
    st.lists(
        st.tuples(st.sampled_from(_FIELDS), st.sampled_from(_AWKWARD) | st.just(...)),
        max_size=3,
    ),
    st.integers(min_value=0, max_value=3),
)
def test_fast_scan_and_naming_parse_give_the_same_verdict(edits: list[tuple[str, Any]], where: int) -> None:
    docs = [_reading_dict() for _ in range(3)]
    target = docs[where % 3]
    for name, value in edits:
        if value is ...:
            target.pop(name, None)
        else:
            target[name] = value
    # where == 3: the same edits at envelope level instead of on a reading
    envelope_edits = {name: v for name, v in edits if v is not ...} if where == 3 else {}
    payload = _payload(docs, **envelope_edits)
    assert _verdict_scan(payload) == _verdict_parse(payload)


@pytest.mark.parametrize(
    "payload",
    [
        _payload([_reading_dict(), _reading_dict()]),
        _payload([_reading_dict(value=95)]),
        _payload([_reading_dict(value=float("nan"))]).replace(b"NaN", b"NaN"),
        _payload([_reading_dict(value=1.0)]).replace(b"1.0", b"Infinity"),
        _payload([_reading_dict()]).replace(b'"kind": "spo2"', b'"kind": "spo2", "kind": "pulse_rate"'),
        _payload([_reading_dict()]).replace(
            b'"schema": "varde.readings/1"', b'"schema": "varde.readings/1", "schema": 1'
        ),
        _payload([_reading_dict()] * 2),
        _payload([_reading_dict() for _ in range(2001)]),
        b"\xff\xfe",
        b"{not json",
        b" " * 300_000,
    ],
)
def test_fast_scan_agrees_on_edge_cases(payload: bytes) -> None:
    assert _verdict_scan(payload) == _verdict_parse(payload)


def test_fast_scan_returns_plain_fields_of_a_valid_envelope() -> None:
    doc = _reading_dict(group="g1", flags=["irregular_pulse"])
    scanned = _scan_valid(_payload([doc]), GW, NOW, FUTURE_SKEW, RETENTION)
    assert scanned is not None, "a valid envelope must take the fast path"
    (r,) = scanned.readings
    assert (str(r["id"]), r["kind"], r["value"], r["unit"]) == (doc["id"], "spo2", 95.0, "%")
    assert r["measured_at"] == datetime(2026, 11, 21, 9, 59, 58, tzinfo=UTC)
    assert r["device"] == doc["device"] and r["group"] == "g1" and r["flags"] == ["irregular_pulse"]
