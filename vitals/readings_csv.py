"""Readings as CSV: the offline format `varde rules replay` reads and the cohort generator writes.

One reading a row under the header `patient_id,kind,value,unit,measured_at`: a kind of the kinds table, the value in
that kind's canonical unit (no conversion: a different unit — lb, mg/dL, °F — is an error; the usual spellings of
the same unit are read as it: `mmHg` for UCUM's `mm[Hg]`, `bpm` for `/min`, `°C` for `Cel`), a physically plausible
value, and an ISO 8601 time with its UTC offset (`2026-03-01T07:15:00+01:00` or `…Z`). The patient id is any
non-empty text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import TextIO

from vitals.kinds import KINDS, Kind

HEADER: tuple[str, ...] = ("patient_id", "kind", "value", "unit", "measured_at")
_KINDS_BY_NAME = {k.value: k for k in Kind}
SAME_UNIT: dict[str, tuple[str, ...]] = {
    "mm[Hg]": ("mmHg", "mm Hg"),
    "/min": ("bpm", "beats/min", "{beats}/min", "1/min", "min-1", "breaths/min", "{breaths}/min"),
    "Cel": ("°C", "degC", "C"),
    "mmol/L": ("mmol/l",),
}
"""Other spellings of a canonical unit (the same unit, nothing to convert), as spreadsheets and devices write them."""


def same_unit(unit: str, canonical: str) -> bool:
    return unit == canonical or unit in SAME_UNIT.get(canonical, ())


class CsvRowError(ValueError):
    """A row that is not a reading; `line` is the 1-based line number in the file (the header is line 1)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def check_header(fields: list[str]) -> None:
    if tuple(f.strip() for f in fields) != HEADER:
        raise CsvRowError(1, f"header must be {','.join(HEADER)!r}, got {','.join(fields)!r}")


def parse_row(fields: list[str], line: int) -> tuple[str, Kind, float, datetime]:
    """(patient id, kind, value, aware time) of one row, or CsvRowError saying what is wrong with it."""
    if len(fields) != len(HEADER):
        raise CsvRowError(line, f"expected {len(HEADER)} fields ({','.join(HEADER)}), got {len(fields)}")
    patient_id, kind_name, value_text, unit, at_text = (f.strip() for f in fields)
    if not patient_id:
        raise CsvRowError(line, "patient_id is empty")
    kind = _KINDS_BY_NAME.get(kind_name)
    if kind is None:
        raise CsvRowError(line, f"unknown kind {kind_name!r}; expected one of {', '.join(_KINDS_BY_NAME)}")
    info = KINDS[kind]
    if not same_unit(unit, info.unit):
        raise CsvRowError(line, f"{kind} must be in its canonical unit {info.unit!r}, got {unit!r}")
    try:
        value = float(value_text)
    except ValueError:
        raise CsvRowError(line, f"value {value_text!r} is not a number") from None
    if not math.isfinite(value) or not info.is_plausible(value):
        raise CsvRowError(line, f"{kind}={value_text} outside the plausible range {info.range_text()}")
    try:
        at = datetime.fromisoformat(at_text)
    except ValueError:
        raise CsvRowError(line, f"measured_at {at_text!r} is not an ISO 8601 time") from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise CsvRowError(line, f"measured_at {at_text!r} has no UTC offset (write Z or +01:00)")
    return patient_id, kind, value, at


def format_value(kind: Kind, value: float) -> str:
    """The value at the kind's display resolution (what a device shows)."""
    return f"{value:.{KINDS[kind].decimals}f}"


def write_rows(out: TextIO, rows: Iterable[tuple[str, Kind, float, datetime]]) -> int:
    """Write the header and the rows; returns the number of rows written."""
    out.write(",".join(HEADER) + "\n")
    n = 0
    for patient_id, kind, value, at in rows:
        out.write(f"{patient_id},{kind.value},{format_value(kind, value)},{KINDS[kind].unit},{at.isoformat()}\n")
        n += 1
    return n


__all__ = ["HEADER", "CsvRowError", "check_header", "format_value", "parse_row", "write_rows"]
