"""`varde decode CHARACTERISTIC HEX`: decode one characteristic value from the command line.

stdout is a JSON array of the measurement readings only, in canonical `vitals` units; `measured_at` is the device's
own (naive) time, or null when it sent none. Notes go to stderr: skipped special values, and a one-line summary for
characteristics that carry no measurement (battery level, current time, RACP, intermediate cuff pressure, glucose
context), for which stdout is `[]`. Bad hex, truncated or malformed bytes and unknown characteristics print one
line to stderr and return 2.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from edge_agent.gatt import (
    BatteryLevel,
    CurrentTime,
    Decoded,
    GattDecodeError,
    GlucoseContext,
    IntermediateCuffPressure,
    MeasurementRecord,
    NumberOfStoredRecords,
    RacpResult,
    characteristic_for,
)

_SEPARATORS = re.compile(r"[\s:\-]")


def parse_hex(text: str) -> bytes:
    """Hex with or without spaces, colons or dashes, and an optional 0x prefix."""
    compact = _SEPARATORS.sub("", text.strip())
    compact = compact[2:] if compact.lower().startswith("0x") else compact
    if not compact:
        raise ValueError("no bytes given")
    if len(compact) % 2:
        raise ValueError(f"odd number of hex digits ({len(compact)})")
    try:
        return bytes.fromhex(compact)
    except ValueError:
        raise ValueError(f"not hexadecimal: {text!r}") from None


def _summary(record: Decoded) -> str | None:
    match record:
        case BatteryLevel(percent=percent):
            return f"battery level {percent} %"
        case CurrentTime(exact_time=when, adjust_reasons=reasons):
            shown = when.isoformat() if when else "not set"
            return f"device clock {shown}" + (f" ({', '.join(reasons)})" if reasons else "")
        case NumberOfStoredRecords(count=count):
            return f"{count} stored records"
        case RacpResult(request_opcode=opcode, code=code):
            return f"{opcode.name.lower()}: {code.name.lower()}"
        case IntermediateCuffPressure(cuff_pressure=pressure):
            return f"cuff pressure {pressure:g} mm[Hg]" if pressure is not None else "cuff pressure not available"
        case GlucoseContext(sequence=sequence):
            return f"context for glucose record {sequence}: " + (", ".join(record.flags()) or "no meal/tester/health")
    return None


def decode_command(characteristic: str, hex_bytes: str) -> int:
    """Print the readings in `hex_bytes` as `characteristic` would carry them; 0 on success, 2 on bad input."""
    try:
        target = characteristic_for(characteristic)
        record = target.decode(parse_hex(hex_bytes))
    except (GattDecodeError, ValueError) as exc:
        print(f"varde decode: {exc}", file=sys.stderr)
        return 2
    readings: list[dict[str, Any]] = []
    if isinstance(record, MeasurementRecord):
        for m in record.measurements:
            readings.append(
                {
                    "kind": m.kind.value,
                    "value": m.value,
                    "unit": m.unit,
                    "measured_at": m.device_time.isoformat() if m.device_time else None,
                    "flags": list(m.flags),
                }
            )
        for skipped in record.skipped:
            print(f"{target.name}: skipped {skipped.field} ({skipped.reason})", file=sys.stderr)
    summary = _summary(record)
    if summary is not None:
        print(f"{target.name}: {summary} (not a measurement reading)", file=sys.stderr)
    print(json.dumps(readings))
    return 0
