"""Finds true dates in exported FHIR: every string of a resource is scanned for dates in the formats people and
Varde write them (ISO date and date-time, dd.mm.yyyy, dd.mm., dd/mm/yyyy, yyyymmdd), and each is compared with the
set of true days and instants it must not reveal."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

_CANDIDATE = re.compile(r"[0-9][0-9./:+TZ-]{3,}")
"""A run of the characters dates are written with; each run is then read as one of the formats below (one fast
pass over a 100 MB export instead of one per format)."""
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})")
_ISO_DAY = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?![\dT])")
_NORWEGIAN_DAY = re.compile(r"(?<![\d.])(\d{1,2})[./](\d{1,2})[./](\d{4}|\d{2})(?!\d)")
_DAY_MONTH = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(?!\d)")
_COMPACT_DAY = re.compile(r"^((?:19|20)\d{2})(\d{2})(\d{2})$")
"""yyyymmdd standing alone (not inside a hex pseudonym, where eight digits in a row are common enough)."""


@dataclass
class TrueDates:
    """What must not leave: the true days (any format) and the true instants (to the microsecond)."""

    days: set[date] = field(default_factory=set)
    instants: set[datetime] = field(default_factory=set)

    def add(self, moment: datetime | date) -> None:
        if isinstance(moment, datetime):
            self.instants.add(moment.astimezone(UTC))
            self.days.add(moment.date())
        else:
            self.days.add(moment)


def strings(node: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def _day(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def true_dates_in(resource: Any, truth: TrueDates) -> list[str]:
    """The mentions of a true day or instant in the resource (or in NDJSON text), as written there."""
    day_months = {(d.day, d.month) for d in truth.days}
    found: list[str] = []
    for text in strings(resource):
        for candidate in _CANDIDATE.finditer(text):
            found += _true_dates_in_run(text, candidate, truth, day_months)
    return found


def _true_dates_in_run(
    text: str, candidate: re.Match[str], truth: TrueDates, day_months: set[tuple[int, int]]
) -> list[str]:
    run = candidate.group(0)
    found = []
    if "T" in run:  # each format is tried only on a run holding the character it cannot be written without
        for match in _INSTANT.finditer(run):
            if datetime.fromisoformat(match.group(0).replace("Z", "+00:00")).astimezone(UTC) in truth.instants:
                found.append(match.group(0))
    if "-" in run:
        for match in _ISO_DAY.finditer(run):
            if _day(*map(int, match.groups())) in truth.days:
                found.append(match.group(0))
    if "." in run or "/" in run:
        for match in _NORWEGIAN_DAY.finditer(run):
            d, m, y = (int(g) for g in match.groups())
            if _day(y + 2000 if y < 100 else y, m, d) in truth.days:
                found.append(match.group(0))
        for match in _DAY_MONTH.finditer(run):
            if (int(match.group(1)), int(match.group(2))) in day_months:
                found.append(match.group(0))
    compact = _COMPACT_DAY.match(run) if len(run) == 8 else None
    start, end = candidate.span()
    alone = (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum())
    if compact and alone and _day(*map(int, compact.groups())) in truth.days:
        found.append(run)
    return found
