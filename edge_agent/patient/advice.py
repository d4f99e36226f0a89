"""Local advice: a reading judged against the plan's zones, and the plan's advice for that zone. Pure functions.

The zone rule is the plan's (see `vitals.plan`): strictly below red_low or above red_high is red, strictly below
yellow_low or above yellow_high is yellow, anything else green; a missing limit is no limit on that side. The cloud's
rules use the same numbers, so the patient sees at home what the nurse will see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vitals import Kind, SelfManagementPlan
from vitals.plan import KindZones, Zone

ZONE_RANK: dict[Zone, int] = {"green": 0, "yellow": 1, "red": 2}


@dataclass(frozen=True, slots=True)
class Advice:
    nb: str
    en: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """One value judged by the plan: its zone (None when the plan sets no limits for the kind) and the advice."""

    kind: Kind
    value: float
    zone: Zone | None
    advice: Advice | None


def zone_of(zones: KindZones, value: float) -> Zone:
    return zones.zone_of(value)


def advice_for(plan: SelfManagementPlan, zone: Zone, kind: Kind | None = None) -> Advice:
    """The plan's advice for the zone and kind, else its general advice for the zone (which every plan has)."""
    general: Advice | None = None
    for entry in plan.advice:
        if entry.zone != zone:
            continue
        if kind is not None and entry.kind == kind:
            return Advice(entry.nb, entry.en)
        if entry.kind is None:
            general = Advice(entry.nb, entry.en)
    assert general is not None, "a valid plan has general advice for every zone"
    return general


def evaluate_reading(plan: SelfManagementPlan | None, kind: Kind, value: float) -> Verdict:
    """Reading → zone + advice, by the plan. Without a plan, or without zones for the kind: no zone, no advice."""
    zones = plan.zones_of(kind) if plan is not None else None
    if plan is None or zones is None:
        return Verdict(kind, value, None, None)
    zone = zone_of(zones, value)
    return Verdict(kind, value, zone, advice_for(plan, zone, kind))


@dataclass(frozen=True, slots=True)
class MeasurementVerdict:
    """One measurement act (e.g. systolic, diastolic and pulse of one cuff inflation): its parts and the worst."""

    parts: tuple[Verdict, ...]
    zone: Zone | None
    advice: Advice | None
    deciding_kind: Kind | None


def evaluate_measurement(plan: SelfManagementPlan | None, values: Sequence[tuple[Kind, float]]) -> MeasurementVerdict:
    """Judge every part; the measurement takes the worst zone, and the advice of the part that decided it."""
    parts = tuple(evaluate_reading(plan, kind, value) for kind, value in values)
    judged = [p for p in parts if p.zone is not None]
    if not judged:
        return MeasurementVerdict(parts, None, None, None)
    worst = max(judged, key=lambda p: ZONE_RANK[p.zone or "green"])
    return MeasurementVerdict(parts, worst.zone, worst.advice, worst.kind)
