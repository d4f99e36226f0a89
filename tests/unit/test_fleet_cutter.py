"""The fleet's envelopes have the production shape: UUIDv5 reading ids (as a gateway makes them), and the asked
fraction of readings past the red limits or outside the plausible range."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from device_simulators.fleet import EnvelopeCutter
from vitals import KINDS, Kind, reading_id
from vitals.envelope import parse_envelope

NOW = datetime(2026, 3, 1, 10, 1, tzinfo=UTC)


def test_reading_ids_are_the_uuid5_a_gateway_gives_and_are_kept_for_accounting() -> None:
    cutter = EnvelopeCutter("gw-cut-0002", 9, 12, "run1", keep_ids=True)
    parsed = parse_envelope(cutter.cut(b"2026-03-01T10:00:00Z"), "gw-cut-0002", now=NOW)
    ids = [r.id for r in parsed.readings]
    assert all(i.version == 5 for i in ids) and len(set(ids)) == 12
    assert [uuid.UUID(bytes=b) for b in cutter.ids] == ids
    first = parsed.readings[0]
    assert first.id == reading_id("gw-cut-0002", first.device.address, str(first.kind), "run1/2026-03-01T10:00:00Z", 0)


def test_alarm_and_implausible_fractions_are_honoured_and_implausible_readings_are_rejected_one_by_one() -> None:
    cutter = EnvelopeCutter("gw-cut-0003", 1, 100, "run2", alarm_fraction=0.05, implausible_fraction=0.02)
    readings, rejected = 0, 0
    for second in range(40):
        payload = cutter.cut(f"2026-03-01T10:00:{second:02d}Z".encode())
        parsed = parse_envelope(payload, "gw-cut-0003", now=NOW)
        readings += len(parsed.readings)
        rejected += len(parsed.rejected)
    assert readings + rejected == 4000
    assert rejected == cutter.implausible and 40 <= rejected <= 130
    assert 140 <= cutter.out_of_range <= 270
    later = parse_envelope(cutter.cut(b"2026-03-01T10:00:59Z"), "gw-cut-0003", now=NOW).readings
    assert all(KINDS[Kind(r.kind)].is_plausible(r.value) for r in later)
