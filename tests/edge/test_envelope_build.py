"""Envelopes are assembled from the outbox's stored wire JSON without re-validating; the result is the contract."""

from __future__ import annotations

from edge_fixtures import GW, make_readings

from edge_agent.publisher import build_envelope, utc_timestamp
from vitals import Envelope, parse_envelope


def test_envelope_built_from_stored_json_parses_as_the_wire_envelope() -> None:
    readings = make_readings(3)
    sent_at = utc_timestamp()
    payload = build_envelope(GW, [r.model_dump_json().encode() for r in readings], sent_at)
    parsed = parse_envelope(payload, GW)
    assert parsed.readings == readings and parsed.rejected == []
    assert Envelope.model_validate_json(payload).readings == tuple(readings)


def test_sent_at_is_rfc3339_utc_with_milliseconds() -> None:
    stamp = utc_timestamp()
    assert stamp.endswith("Z") and len(stamp) == len("2026-11-21T10:00:00.120Z")
