"""Validation of an edited threshold profile, with errors the plan editor can show next to the field.

The API validates the *effective* profile (protocol defaults with the patient's overrides applied), so an
override that is fine alone but crosses an inherited limit is refused too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rules_engine.profiles import (
    LIMIT_NAMES,
    KindLimits,
    Protocol,
    effective_limits,
    limit_column,
    trend_column,
)
from vitals import KINDS, Kind, kind_info

_LIMIT_NB = {"red_low": "rød nedre", "yellow_low": "gul nedre", "yellow_high": "gul øvre", "red_high": "rød øvre"}

# (lowest, highest) accepted value per trend setting.
_TREND_BOUNDS: Mapping[str, tuple[float, float]] = {
    "weight_gain_kg": (0.1, 20.0),
    "weight_window_days": (1.0, 7.0),
    "spo2_drop": (1.0, 20.0),
    "pulse_drift": (5.0, 100.0),
    # At most the 14 days of history the rules read (rules_engine.evaluation.HISTORY_DAYS).
    "baseline_days": (3.0, 14.0),
    "baseline_min_readings": (1.0, 100.0),
    "weight_week_gain_kg": (0.5, 20.0),
    "bp_home_systolic": (100.0, 200.0),
    "bp_home_diastolic": (60.0, 130.0),
    "bp_home_days": (3.0, 14.0),
    "bp_home_min_readings": (1.0, 100.0),
}
_OPTIONAL_TRENDS = frozenset(
    {"weight_gain_kg", "spo2_drop", "pulse_drift", "weight_week_gain_kg", "bp_home_systolic", "bp_home_diastolic"}
)
TREND_NAMES_NB: Mapping[str, str] = {
    "weight_gain_kg": "Vektøkning (kg)",
    "weight_window_days": "Vektøkning over (dager)",
    "spo2_drop": "Fall i oksygenmetning fra utgangsverdi (prosentpoeng)",
    "pulse_drift": "Endring i puls fra utgangsverdi (slag/min)",
    "baseline_days": "Utgangsverdi over (dager)",
    "baseline_min_readings": "Minste antall målinger i utgangsverdien",
    "weight_week_gain_kg": "Vektøkning på 7 dager (kg)",
    "bp_home_systolic": "Hjemmeblodtrykk, snitt systolisk fra (mmHg)",
    "bp_home_diastolic": "Hjemmeblodtrykk, snitt diastolisk fra (mmHg)",
    "bp_home_days": "Hjemmeblodtrykk, snitt over (dager)",
    "bp_home_min_readings": "Hjemmeblodtrykk, minste antall målinger",
}


@dataclass(frozen=True, slots=True)
class ProfileError:
    """One problem in a profile: `field` is "<kind>.<limit>" or "trend.<setting>"."""

    field: str
    message: str
    message_nb: str


def _num(value: float) -> str:
    return f"{value:g}"


def validate_limits(kind: Kind | str, limits: KindLimits) -> list[ProfileError]:
    """Check one kind's limits: each within the plausible range, and red_low ≤ yellow_low ≤ yellow_high ≤ red_high
    (NaN limits are skipped)."""
    info = kind_info(kind)
    errors: list[ProfileError] = []
    values = limits.as_tuple()
    for name, value in zip(LIMIT_NAMES, values, strict=True):
        if math.isinf(value):
            errors.append(
                ProfileError(
                    f"{info.kind}.{name}",
                    f"{info.kind}: {name} must be a number or empty, not infinite",
                    f"{info.name_nb}: {_LIMIT_NB[name]} grense må være et tall eller tom",
                )
            )
        elif not math.isnan(value) and not info.is_plausible(value):
            errors.append(
                ProfileError(
                    f"{info.kind}.{name}",
                    f"{info.kind}: {name} {_num(value)} {info.unit_display} is outside the plausible range "
                    f"{info.range_text()} {info.unit_display}",
                    f"{info.name_nb}: {_LIMIT_NB[name]} grense {_num(value)} {info.unit_display} er utenfor "
                    f"mulig område {info.range_text()} {info.unit_display}",
                )
            )
    present = [(name, v) for name, v in zip(LIMIT_NAMES, values, strict=True) if math.isfinite(v)]
    for (low_name, low), (high_name, high) in itertools.pairwise(present):
        if low > high:
            errors.append(
                ProfileError(
                    f"{info.kind}.{high_name}",
                    f"{info.kind}: {high_name} {_num(high)} is below {low_name} {_num(low)}; limits must satisfy "
                    "red_low ≤ yellow_low ≤ yellow_high ≤ red_high",
                    f"{info.name_nb}: {_LIMIT_NB[high_name]} grense {_num(high)} er lavere enn "
                    f"{_LIMIT_NB[low_name]} grense {_num(low)}; rekkefølgen må være rød nedre ≤ gul nedre ≤ "
                    "gul øvre ≤ rød øvre",
                )
            )
    return errors


def validate_profile(
    protocol: Protocol | str,
    limit_overrides: Mapping[str, Mapping[str, float | None]] | None = None,
    trend_overrides: Mapping[str, float | None] | None = None,
    *,
    conditions: Sequence[str] = (),
    spo2_scale2: bool = False,
) -> list[ProfileError]:
    """Validate a patient's edited profile: unknown kinds/limits/settings, ranges and ordering, named per field.

    An empty list means the profile may be saved.
    """
    errors: list[ProfileError] = []
    known: dict[str, Mapping[str, float | None]] = {}
    for kind, per_limit in (limit_overrides or {}).items():
        if kind not in KINDS:
            errors.append(ProfileError(str(kind), f"unknown measurement kind {kind!r}", f"ukjent målingstype {kind!r}"))
            continue
        good: dict[str, float | None] = {}
        for name, value in per_limit.items():
            try:
                limit_column(name)
            except ValueError as exc:
                errors.append(ProfileError(f"{kind}.{name}", f"{kind}: {exc}", f"{kind}: ukjent grense {name!r}"))
                continue
            good[name] = value
        known[kind] = good
    for kind, limits in effective_limits(protocol, known, conditions=conditions, spo2_scale2=spo2_scale2).items():
        errors.extend(validate_limits(kind, limits))
    for name, value in (trend_overrides or {}).items():
        errors.extend(_validate_trend_setting(name, value))
    return errors


def _validate_trend_setting(name: str, value: float | None) -> list[ProfileError]:
    field = f"trend.{name}"
    try:
        trend_column(name)
    except ValueError as exc:
        return [ProfileError(field, str(exc), f"ukjent trendinnstilling {name!r}")]
    if value is None or math.isnan(value):
        if name in _OPTIONAL_TRENDS:
            return []
        return [ProfileError(field, f"{name} is required", f"{TREND_NAMES_NB[name]} må fylles ut")]
    low, high = _TREND_BOUNDS[name]
    if not low <= value <= high:
        return [
            ProfileError(
                field,
                f"{name} {_num(value)} is outside {_num(low)}–{_num(high)}",
                f"{TREND_NAMES_NB[name]}: {_num(value).replace('.', ',')} er utenfor "
                f"{_num(low).replace('.', ',')}–{_num(high).replace('.', ',')}",
            )
        ]
    return []
