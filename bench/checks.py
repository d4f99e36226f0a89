"""The checks every benchmark applies to its own run: loss and duplicates by id set, one open alarm per patient and
rule, figures against their targets, latency probes that all arrived. Pure functions, so a test can feed each one a
wrong result and see it fail."""

from __future__ import annotations

import math
import operator
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class IdAccount:
    """Where every acknowledged reading id ended up."""

    acked: int
    stored: int
    dead_lettered: int
    lost: int
    """Acknowledged ids neither stored nor dead-lettered."""
    duplicated: int
    """Ids stored in more than one row, or both stored and dead-lettered."""
    unacked_stored: int
    """Stored ids the publisher never saw acknowledged (a PUBACK lost in a fault): not an error."""
    lost_sample: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0


def _as_uuid(value: bytes | UUID | str) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, bytes):
        return UUID(bytes=value)
    return UUID(value)


def account_by_id(
    acked: Iterable[bytes | UUID | str],
    stored_rows: Mapping[UUID, int],
    dead_lettered: Iterable[UUID],
) -> IdAccount:
    """Compare sets, not counts: `stored_rows` maps each stored id to its number of rows."""
    acked_ids = {_as_uuid(a) for a in acked}
    dead = set(dead_lettered)
    stored = set(stored_rows)
    lost = acked_ids - stored - dead
    duplicated = sum(1 for n in stored_rows.values() if n > 1) + len(stored & dead)
    return IdAccount(
        acked=len(acked_ids),
        stored=len(acked_ids & stored),
        dead_lettered=len(acked_ids & dead),
        lost=len(lost),
        duplicated=duplicated,
        unacked_stored=len(stored - acked_ids),
        lost_sample=tuple(sorted(str(i) for i in lost)[:5]),
    )


def duplicate_open_alarms(open_alarms: Iterable[tuple[Any, str]]) -> int:
    """(patient, rule) pairs of the open alarms; returns how many pairs have more than one."""
    seen: dict[tuple[Any, str], int] = {}
    for key in open_alarms:
        seen[key] = seen.get(key, 0) + 1
    return sum(1 for n in seen.values() if n > 1)


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}


def failed_targets(figures: Mapping[str, Any], targets: Mapping[str, tuple[str, float]]) -> list[str]:
    """Each target as `name: (op, bound)`; a missing or non-numeric figure fails its target too."""
    failed = []
    for name, (op, bound) in targets.items():
        value = figures.get(name)
        if not isinstance(value, int | float) or value != value or not _OPS[op](float(value), bound):
            failed.append(f"{name}={value!r}, target {op} {bound}")
    return failed


def probe_path_failures(arms: Mapping[str, Mapping[str, Any]], asked: int, share: float = 0.99) -> list[str]:
    """The latency arms' probes, arm name → figures: every probe asked for was sent and acknowledged by the broker
    as delivered, at least `share` of them reached the nurse's SSE stream and became a visible row, and neither the
    probes nor the stream broke off. Otherwise a latency is measured over whatever arrived, or over nothing."""
    failed = []
    for name, arm in arms.items():
        for key in ("probe_error", "sse_error"):
            if arm.get(key):
                failed.append(f"latency {name}: {arm[key]}")
        sent = _count(arm, "probes")
        if sent < asked:
            failed.append(f"latency {name}: probes={sent} of {asked} asked for")
        acked = _count(arm, "probes_acked")
        if acked < sent:
            failed.append(f"latency {name}: {sent - acked} of {sent} probes never acknowledged as delivered")
        for key in ("sse_events", "rows_seen"):
            got = _count(arm, key)
            if got < share * asked:
                failed.append(f"latency {name}: {key}={got} of {asked} probes, target >= {share:.0%}")
    return failed


def covering_arrivals(
    sent: Mapping[tuple[str, datetime], float], arrivals: Mapping[tuple[str, datetime], float]
) -> dict[tuple[str, datetime], float]:
    """For each probe sent, (patient, measured time) → publish time, the arrival of the first alarm event of that
    patient whose last measured time is the probe's or later (keys of `arrivals`: the events, by the same shape).
    An alarm event carries the alarm as it is when the stream loads it: two probes of one patient that land in one
    ingest transaction, or within the stream's coalescing, show as one event with the later time, and that event
    is when the nurse sees the earlier probe too. Probes no event covers are left out."""
    by_patient: dict[str, list[tuple[datetime, float]]] = {}
    for (patient, measured), arrived in arrivals.items():
        by_patient.setdefault(patient, []).append((measured, arrived))
    covered = {}
    for (patient, measured), _published in sent.items():
        times = [arrived for at, arrived in by_patient.get(patient, ()) if at >= measured]
        if times:
            covered[(patient, measured)] = min(times)
    return covered


def _count(figures: Mapping[str, Any], name: str) -> int:
    """A missing or non-numeric count is none."""
    value = figures.get(name)
    return int(value) if isinstance(value, int | float) and math.isfinite(value) else 0


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def spread(values: Iterable[float]) -> dict[str, float]:
    """Median and range of repeated arms."""
    items = list(values)
    if not items:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "runs": 0}
    return {
        "median": round(statistics.median(items), 1),
        "min": round(min(items), 1),
        "max": round(max(items), 1),
        "runs": len(items),
    }
