"""Threshold profiles: protocol defaults, per-patient overrides, and the dense tables the rules index.

Limits are the outermost *acceptable* values. A reading breaches a low limit when it is strictly below it and a
high limit when it is strictly above it; a reading exactly at a limit is within the plan. Guideline bands written
with "≤" or "≥" on integer-valued measurements are therefore entered one step inside (NEWS2 "pulse ≤ 40 scores 3"
becomes red_low 41). NaN means "no limit".

Layering: protocol default → patient override. An override is a *row* (patient, kind, limit, value), as the
overrides table stores it: a row that exists replaces the protocol's limit, and a row whose value is NaN removes
that limit for this patient. No row means "inherit the protocol's limit".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rules_engine.kinds_index import KIND_ORDER, kind_index
from vitals import Kind

if TYPE_CHECKING:
    from rules_engine.personal import PersonalBaselines

NAN = float("nan")


class Protocol(StrEnum):
    """Follow-up protocols; the enum order is the protocol code used in arrays."""

    GENERAL = "general"
    HEART_FAILURE = "heart_failure"
    COPD = "copd"
    DIABETES = "diabetes"
    HYPERTENSION = "hypertension"


PROTOCOL_ORDER: tuple[Protocol, ...] = tuple(Protocol)


def protocol_code(protocol: Protocol | str) -> int:
    try:
        return PROTOCOL_ORDER.index(Protocol(protocol))
    except ValueError:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {[p.value for p in Protocol]}") from None


class Limit(IntEnum):
    """Columns of the limit table, in the order they must be sorted."""

    RED_LOW = 0
    YELLOW_LOW = 1
    YELLOW_HIGH = 2
    RED_HIGH = 3


LIMIT_NAMES: tuple[str, ...] = tuple(limit.name.lower() for limit in Limit)


def limit_column(name: str) -> int:
    try:
        return LIMIT_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown limit {name!r}; expected one of {list(LIMIT_NAMES)}") from None


@dataclass(frozen=True, slots=True)
class KindLimits:
    red_low: float = NAN
    yellow_low: float = NAN
    yellow_high: float = NAN
    red_high: float = NAN

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.red_low, self.yellow_low, self.yellow_high, self.red_high)


class TrendSetting(IntEnum):
    """Columns of the per-patient trend table. NaN in a threshold column switches that trend rule off."""

    WEIGHT_GAIN_KG = 0
    """Alarm when weight rises by more than this within the window."""
    WEIGHT_WINDOW_DAYS = 1
    SPO2_DROP = 2
    """Alarm when SpO2 is more than this many percentage points below the personal baseline."""
    PULSE_DRIFT = 3
    """Alarm when pulse differs by more than this many beats/min from the personal baseline (either way)."""
    BASELINE_DAYS = 4
    BASELINE_MIN_READINGS = 5
    """A baseline from fewer readings than this is not trusted and the drift rule stays silent."""


TREND_NAMES: tuple[str, ...] = tuple(setting.name.lower() for setting in TrendSetting)
N_TREND_SETTINGS = len(TrendSetting)


def trend_column(name: str) -> int:
    try:
        return TREND_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown trend setting {name!r}; expected one of {list(TREND_NAMES)}") from None


@dataclass(frozen=True, slots=True)
class TrendSettings:
    weight_gain_kg: float = NAN
    weight_window_days: float = 3.0
    spo2_drop: float = NAN
    pulse_drift: float = NAN
    # A personal baseline of the last 14 days, trusted from 5 readings on (Varde defaults).
    baseline_days: float = 14.0
    baseline_min_readings: float = 5.0

    def as_tuple(self) -> tuple[float, ...]:
        return tuple(getattr(self, name) for name in TREND_NAMES)


@dataclass(frozen=True, slots=True)
class ProtocolDefaults:
    protocol: Protocol
    limits: Mapping[Kind, KindLimits]
    trends: TrendSettings
    news2_spo2_scale2: bool
    """RCP 2017: SpO2 scale 2 only for hypercapnic respiratory failure with a prescribed 88–92 % target."""


# General fallback: NEWS2 single-parameter bands (Royal College of Physicians, National Early Warning Score 2,
# 2017). Red = the band scoring 3, yellow = the band scoring 2 (or 1 where NEWS2 has no 2-band on that side).
_PULSE = KindLimits(red_low=41, yellow_low=51, yellow_high=110, red_high=130)  # ≤40:3, 41–50:1, 111–130:2, ≥131:3
_GENERAL: dict[Kind, KindLimits] = {
    # NEWS2 SBP ≤90:3, 91–100:2; ESH 2023 grade 3 hypertension ≥180 → yellow; NEWS2 ≥220:3 → red.
    Kind.BP_SYSTOLIC: KindLimits(red_low=91, yellow_low=101, yellow_high=179, red_high=219),
    # ESH 2023 grade 3 DBP ≥110 → yellow; ≥120 (with SBP >180 the usual "hypertensive emergency" level) → red.
    Kind.BP_DIASTOLIC: KindLimits(yellow_high=109, red_high=119),
    # Surviving Sepsis Campaign 2021: MAP target ≥65 mmHg.
    Kind.BP_MEAN: KindLimits(red_low=65),
    Kind.PULSE_RATE: _PULSE,
    Kind.HEART_RATE: _PULSE,
    # NEWS2 scale 1: ≤91:3, 92–93:2; BTS 2017 oxygen guideline target 94–98 %.
    Kind.SPO2: KindLimits(red_low=92, yellow_low=94),
    # NEWS2: ≤35.0:3, 38.1–39.0:1, ≥39.1:2 (its top band, so red here).
    Kind.BODY_TEMPERATURE: KindLimits(red_low=35.1, yellow_high=38.0, red_high=39.0),
    # Weight is judged by trend (own history), never by an absolute limit.
    Kind.BODY_WEIGHT: KindLimits(),
    # ADA Standards of Care 2024 §6: level 1 hypoglycaemia <3.9 mmol/L, level 2 <3.0 mmol/L.
    Kind.GLUCOSE: KindLimits(red_low=3.0, yellow_low=3.9),
    # NEWS2 RR ≤8:3, 21–24:2, ≥25:3.
    Kind.RESP_RATE: KindLimits(red_low=9, yellow_high=20, red_high=24),
}

PROTOCOLS: Mapping[Protocol, ProtocolDefaults] = {
    Protocol.GENERAL: ProtocolDefaults(Protocol.GENERAL, _GENERAL, TrendSettings(), news2_spo2_scale2=False),
    Protocol.HEART_FAILURE: ProtocolDefaults(
        Protocol.HEART_FAILURE,
        {
            **_GENERAL,
            # ESC 2021 heart-failure guideline: symptomatic hypotension SBP <90 mmHg → yellow; < 80 mmHg is the
            # red hard floor (rules_engine.personal). SBP <100 mmHg, ESC's caution level for up-titrating
            # ARNI/ACE-I, is a prescribing check, not an alarm: patients on full therapy often live there.
            Kind.BP_SYSTOLIC: KindLimits(red_low=80, yellow_low=90, yellow_high=179, red_high=219),
            # ESC 2021 (acute heart failure): oxygen is recommended below SpO2 90 % → red; NEWS2 scores ≤ 91 % as 3
            # → yellow. The BTS 94–98 % target is for acutely ill patients given oxygen, and many stable
            # heart-failure patients live at 92–94 % at home.
            Kind.SPO2: KindLimits(red_low=90, yellow_low=92),
            # ESC 2021 / HFA practical guidance: heart rate <50/min on beta-blocker → review the dose.
            Kind.PULSE_RATE: KindLimits(red_low=41, yellow_low=50, yellow_high=110, red_high=130),
            Kind.HEART_RATE: KindLimits(red_low=41, yellow_low=50, yellow_high=110, red_high=130),
        },
        # ESC 2021 self-care advice: unexpected weight gain >2 kg in 3 days → contact the heart-failure team.
        # Pulse drift of 20/min from the personal baseline is a Varde default (no guideline figure).
        TrendSettings(weight_gain_kg=2.0, weight_window_days=3.0, pulse_drift=20.0),
        news2_spo2_scale2=False,
    ),
    Protocol.COPD: ProtocolDefaults(
        Protocol.COPD,
        {
            **_GENERAL,
            # BTS 2017 / NEWS2 scale 2: target 88–92 % in hypercapnic respiratory failure; scale 2 ≤83 scores 3.
            Kind.SPO2: KindLimits(red_low=84, yellow_low=88),
        },
        # A fall of more than 4 percentage points below the personal baseline is flagged for review; a Varde
        # default for early exacerbation signs, not a guideline figure.
        TrendSettings(spo2_drop=4.0, pulse_drift=20.0),
        news2_spo2_scale2=True,
    ),
    Protocol.DIABETES: ProtocolDefaults(
        Protocol.DIABETES,
        {
            **_GENERAL,
            # ADA 2024: hypoglycaemia levels <3.9 / <3.0 mmol/L; above 13.9 mmol/L (250 mg/dL) check ketones.
            # 16.7 mmol/L (300 mg/dL) as red is a Varde default (common sick-day "call" level), not ADA's.
            Kind.GLUCOSE: KindLimits(red_low=3.0, yellow_low=3.9, yellow_high=13.9, red_high=16.7),
        },
        TrendSettings(),
        news2_spo2_scale2=False,
    ),
    Protocol.HYPERTENSION: ProtocolDefaults(
        Protocol.HYPERTENSION,
        {
            **_GENERAL,
            # ESH 2023 grades: grade 2 SBP 160–179 / DBP 100–109 → yellow; grade 3 SBP ≥180 / DBP ≥110 → red.
            Kind.BP_SYSTOLIC: KindLimits(red_low=91, yellow_low=101, yellow_high=159, red_high=179),
            Kind.BP_DIASTOLIC: KindLimits(yellow_high=99, red_high=109),
        },
        TrendSettings(),
        news2_spo2_scale2=False,
    ),
}


def protocol_limit_table(protocol: Protocol | str) -> NDArray[np.float64]:
    """The protocol's limits as an (N_KINDS, 4) array."""
    defaults = PROTOCOLS[Protocol(protocol)]
    return np.array([defaults.limits[kind].as_tuple() for kind in KIND_ORDER], dtype=np.float64)


PROTOCOL_LIMITS: NDArray[np.float64] = np.stack([protocol_limit_table(p) for p in PROTOCOL_ORDER])
"""(n_protocols, N_KINDS, 4): protocol code → limit table."""
PROTOCOL_TRENDS: NDArray[np.float64] = np.array(
    [PROTOCOLS[p].trends.as_tuple() for p in PROTOCOL_ORDER], dtype=np.float64
)
"""(n_protocols, N_TREND_SETTINGS)."""
PROTOCOL_KINDS: Mapping[Protocol, tuple[Kind, ...]] = {
    Protocol.GENERAL: (Kind.BP_SYSTOLIC, Kind.BP_DIASTOLIC, Kind.PULSE_RATE, Kind.SPO2, Kind.BODY_TEMPERATURE),
    Protocol.HEART_FAILURE: (Kind.BODY_WEIGHT, Kind.BP_SYSTOLIC, Kind.BP_DIASTOLIC, Kind.PULSE_RATE, Kind.SPO2),
    Protocol.COPD: (Kind.SPO2, Kind.PULSE_RATE, Kind.BODY_TEMPERATURE, Kind.RESP_RATE),
    Protocol.DIABETES: (Kind.GLUCOSE, Kind.BP_SYSTOLIC, Kind.BP_DIASTOLIC, Kind.BODY_WEIGHT),
    Protocol.HYPERTENSION: (Kind.BP_SYSTOLIC, Kind.BP_DIASTOLIC, Kind.PULSE_RATE),
}
"""The kinds a protocol follows (what the editor offers first); the rules judge every kind that arrives."""
PROTOCOL_SPO2_SCALE2: NDArray[np.bool_] = np.array([PROTOCOLS[p].news2_spo2_scale2 for p in PROTOCOL_ORDER])


@dataclass(frozen=True, slots=True)
class LimitOverrides:
    """Patient overrides as rows; a NaN value removes the protocol's limit for that patient."""

    patient_row: NDArray[np.int64]
    kind_idx: NDArray[np.int64]
    limit: NDArray[np.int64]
    value: NDArray[np.float64]

    @classmethod
    def of(cls, patient_row: ArrayLike, kind_idx: ArrayLike, limit: ArrayLike, value: ArrayLike) -> LimitOverrides:
        return cls(
            np.asarray(patient_row, dtype=np.int64),
            np.asarray(kind_idx, dtype=np.int64),
            np.asarray(limit, dtype=np.int64),
            np.asarray(value, dtype=np.float64),
        )

    @classmethod
    def from_mapping(cls, overrides: Mapping[int, Mapping[Kind | str, Mapping[str, float | None]]]) -> LimitOverrides:
        """`{patient_row: {kind: {"red_low": 85.0, "yellow_low": None}}}`; None removes that limit."""
        rows = [
            (row, kind_index(kind), limit_column(name), NAN if value is None else float(value))
            for row, per_kind in overrides.items()
            for kind, per_limit in per_kind.items()
            for name, value in per_limit.items()
        ]
        return cls.of(*(np.array([r[i] for r in rows]) for i in range(4)))


@dataclass(frozen=True, slots=True)
class TrendOverrides:
    """Per-patient trend settings as rows; a NaN threshold switches that trend rule off for the patient."""

    patient_row: NDArray[np.int64]
    setting: NDArray[np.int64]
    value: NDArray[np.float64]

    @classmethod
    def of(cls, patient_row: ArrayLike, setting: ArrayLike, value: ArrayLike) -> TrendOverrides:
        return cls(
            np.asarray(patient_row, dtype=np.int64),
            np.asarray(setting, dtype=np.int64),
            np.asarray(value, dtype=np.float64),
        )

    @classmethod
    def from_mapping(cls, overrides: Mapping[int, Mapping[str, float | None]]) -> TrendOverrides:
        rows = [
            (row, trend_column(name), NAN if value is None else float(value))
            for row, per_setting in overrides.items()
            for name, value in per_setting.items()
        ]
        return cls.of(*(np.array([r[i] for r in rows]) for i in range(3)))


@dataclass(frozen=True, slots=True)
class PatientRules:
    """Everything the rules need per patient row, as dense arrays indexed by patient_row."""

    limits: NDArray[np.float64]
    """(n_patients, N_KINDS, 4): red_low, yellow_low, yellow_high, red_high."""
    trends: NDArray[np.float64]
    """(n_patients, N_TREND_SETTINGS), columns per `TrendSetting`."""
    spo2_scale2: NDArray[np.bool_]
    """NEWS2 SpO2 scale 2 (hypercapnic respiratory failure)."""
    on_oxygen: NDArray[np.bool_]
    """Supplemental oxygen at home (from the plan); scores NEWS2 air/oxygen 2 and selects scale 2's oxygen bands."""
    limit_source: NDArray[np.int8] = field(default_factory=lambda: np.zeros((0, 0, 4), dtype=np.int8))
    """(n_patients, N_KINDS, 4): where each limit comes from (`rules_engine.personal.Source`)."""
    centre: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    """(n_patients, N_KINDS): the personal baseline's centre (median), NaN before the run-in is over."""
    spread: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    """(n_patients, N_KINDS): the personal baseline's robust σ (MAD × 1.4826), NaN before the run-in."""
    baseline_version: NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    """(n_patients, N_KINDS): stored version of the personal baseline, −1 where none."""
    protocol: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Protocol code per patient row (selects the combined deterioration rule)."""
    weight_baseline_kg: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """After the run-in: alarm when the recent weight is more than this above the personal baseline (the
    patient's `weight_gain_kg`); NaN where the rule is off."""

    @property
    def personalised(self) -> NDArray[np.bool_]:
        """Patients with a personal baseline of SpO2 or pulse: their run-in is over."""
        if not len(self.centre):
            return np.zeros(self.n_patients, dtype=np.bool_)
        columns = [KIND_ORDER.index(Kind.SPO2), KIND_ORDER.index(Kind.PULSE_RATE)]
        return np.asarray(~np.isnan(self.centre[:, columns]).all(axis=1), dtype=np.bool_)

    @property
    def n_patients(self) -> int:
        return int(self.limits.shape[0])


def build_patient_rules(
    protocols: ArrayLike,
    limit_overrides: LimitOverrides | None = None,
    trend_overrides: TrendOverrides | None = None,
    *,
    spo2_scale2: ArrayLike | None = None,
    on_oxygen: ArrayLike | None = None,
    personal: PersonalBaselines | None = None,
) -> PatientRules:
    """Layer protocol defaults, personal limits (after the run-in) and hand-set overrides into dense tables.

    `protocols` holds one protocol code (see `protocol_code`) or protocol name per patient row.
    `spo2_scale2` overrides the protocol's NEWS2 SpO2 scale per patient; `on_oxygen` defaults to air.
    `personal` holds the patients' personal baselines (`rules_engine.personal`); a hand-set override always wins.
    """
    from rules_engine.personal import PersonalBaselines, Source, apply_personal

    raw = np.asarray(protocols)
    if raw.dtype.kind in "US":
        distinct, inverse = np.unique(raw, return_inverse=True)
        codes = np.array([protocol_code(str(name)) for name in distinct], dtype=np.int64)[inverse]
    else:
        codes = raw.astype(np.int64)
    if codes.size and (codes.min() < 0 or codes.max() >= len(PROTOCOL_ORDER)):
        raise ValueError(f"protocol codes must be 0..{len(PROTOCOL_ORDER) - 1}")
    limits = PROTOCOL_LIMITS[codes]
    trends = PROTOCOL_TRENDS[codes]
    scale2 = PROTOCOL_SPO2_SCALE2[codes] if spo2_scale2 is None else np.asarray(spo2_scale2, dtype=np.bool_)
    oxygen = np.zeros(len(codes), dtype=np.bool_) if on_oxygen is None else np.asarray(on_oxygen, dtype=np.bool_)
    for name, column in (("spo2_scale2", scale2), ("on_oxygen", oxygen)):
        if column.shape != codes.shape:
            raise ValueError(f"{name} has shape {column.shape}, expected {codes.shape}")
    source = np.where(np.isnan(limits), np.int8(Source.NONE), np.int8(Source.PROTOCOL)).astype(np.int8)
    personal = personal if personal is not None else PersonalBaselines.empty()
    apply_personal(limits, source, personal, scale2)
    if limit_overrides is not None:
        cells = (limit_overrides.patient_row, limit_overrides.kind_idx, limit_overrides.limit)
        limits[cells] = limit_overrides.value
        source[cells] = Source.HAND_SET
    centre, spread, version = personal.dense(len(codes))
    # After the run-in the personal limits replace the baseline-drift rules, and the weight rule is measured from
    # the personal baseline instead of the window's minimum; a hand-set trend setting keeps its rule as it is.
    hand_set = np.zeros(trends.shape, dtype=np.bool_)
    if trend_overrides is not None:
        trends[trend_overrides.patient_row, trend_overrides.setting] = trend_overrides.value
        hand_set[trend_overrides.patient_row, trend_overrides.setting] = True
    weight_baseline = trends[:, TrendSetting.WEIGHT_GAIN_KG].copy()
    has_weight = ~np.isnan(centre[:, KIND_ORDER.index(Kind.BODY_WEIGHT)])
    weight_baseline[~has_weight] = NAN
    for setting, kind in (
        (TrendSetting.WEIGHT_GAIN_KG, Kind.BODY_WEIGHT),
        (TrendSetting.SPO2_DROP, Kind.SPO2),
        (TrendSetting.PULSE_DRIFT, Kind.PULSE_RATE),
    ):
        replaced = ~np.isnan(centre[:, KIND_ORDER.index(kind)]) & ~hand_set[:, setting]
        trends[replaced, setting] = NAN
    return PatientRules(limits, trends, scale2, oxygen, source, centre, spread, version, codes, weight_baseline)


def effective_limits(
    protocol: Protocol | str, overrides: Mapping[Kind | str, Mapping[str, float | None]] | None = None
) -> dict[Kind, KindLimits]:
    """One patient's limits after layering (for the API and the plan sent to the gateway)."""
    table = build_patient_rules([protocol_code(protocol)], LimitOverrides.from_mapping({0: overrides or {}})).limits[0]
    return {kind: KindLimits(*(float(x) for x in table[i])) for i, kind in enumerate(KIND_ORDER)}
