"""Threshold profiles: protocol defaults, per-patient overrides, and the dense tables the rules index.

Limits are the outermost *acceptable* values. A reading breaches a low limit when it is strictly below it and a
high limit when it is strictly above it; a reading exactly at a limit is within the plan. Guideline bands written
with "≤" or "≥" on integer-valued measurements are therefore entered one step inside (NEWS2 "pulse ≤ 40 scores 3"
becomes red_low 41). NaN means "no limit".

Layering: conditions' defaults (composed) → SpO2 scale 2 target → patient override. A patient has one or more
conditions (heart failure, COPD, diabetes, hypertension; the `Protocol` names); each condition's *own* limits are
the ones it sets apart from the general protocol. Per limit, the safer of the conditions' own values wins (see
`compose`), a limit no condition sets is the general one, and a clinician-set SpO2 scale 2 replaces the SpO2 low
limits by the scale-2 target (88–92 %). An override is a *row* (patient, kind, limit, value), as the overrides
table stores it: a row that exists replaces the composed limit, and a row whose value is NaN removes that limit for
this patient. No row means "inherit". `PatientRules.limit_source` says where each limit came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rules_engine.kinds_index import KIND_ORDER, N_KINDS, kind_index
from vitals import Kind, vocabulary

if TYPE_CHECKING:
    from rules_engine.personal import PersonalBaselines

NAN = float("nan")


class Protocol(StrEnum):
    """Follow-up protocols as typed members for the rule tables: the names of `vitals.vocabulary.PROTOCOLS`, whose
    order is the protocol code used in arrays (a member missing here fails at import, an extra one in the
    vocabulary drift test)."""

    GENERAL = "general"
    HEART_FAILURE = "heart_failure"
    COPD = "copd"
    DIABETES = "diabetes"
    HYPERTENSION = "hypertension"


PROTOCOL_ORDER: tuple[Protocol, ...] = tuple(Protocol(p) for p in vocabulary.PROTOCOLS)


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
    WEIGHT_WEEK_GAIN_KG = 6
    """Alarm when weight rises by more than this within 7 days (and the short-window rule did not speak)."""
    BP_HOME_SYSTOLIC = 7
    """Alarm when the home systolic mean over `bp_home_days` is at or above this (ESH: ≥ 135)."""
    BP_HOME_DIASTOLIC = 8
    """Alarm when the home diastolic mean over `bp_home_days` is at or above this (ESH: ≥ 85)."""
    BP_HOME_DAYS = 9
    BP_HOME_MIN_READINGS = 10
    """A home mean of fewer readings (per component) than this is not judged."""


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
    weight_week_gain_kg: float = NAN
    bp_home_systolic: float = NAN
    bp_home_diastolic: float = NAN
    # ESH home BP monitoring: 7 days, at least 12 readings (ESH 2008 home BP guidelines; ESH 2023 §4).
    bp_home_days: float = 7.0
    bp_home_min_readings: float = 12.0

    def as_tuple(self) -> tuple[float, ...]:
        return tuple(getattr(self, name) for name in TREND_NAMES)


@dataclass(frozen=True, slots=True)
class ProtocolDefaults:
    protocol: Protocol
    limits: Mapping[Kind, KindLimits]
    trends: TrendSettings


# General fallback: NEWS2 single-parameter bands (Royal College of Physicians, National Early Warning Score 2,
# 2017). Red = the band scoring 3, yellow = the band scoring 2 (or 1 where NEWS2 has no 2-band on that side).
_PULSE = KindLimits(red_low=41, yellow_low=51, yellow_high=110, red_high=130)  # ≤40:3, 41–50:1, 111–130:2, ≥131:3
_GENERAL: dict[Kind, KindLimits] = {
    # NEWS2 SBP ≤90:3, 91–100:2; ESH 2023 grade 3 hypertension ≥180 → yellow; NEWS2 ≥220:3 → red.
    Kind.BP_SYSTOLIC: KindLimits(red_low=91, yellow_low=101, yellow_high=179, red_high=219),
    # ESH 2023 grade 3 DBP ≥110 → yellow; ≥120 (with SBP >180 the usual "hypertensive emergency" level) → red.
    Kind.BP_DIASTOLIC: KindLimits(yellow_high=109, red_high=119),
    # No home limit on the mean pressure: the Surviving Sepsis Campaign's MAP ≥ 65 mmHg is a vasopressor target in
    # septic shock, not a home alarm; hypotension at home is judged on systolic pressure (ESC 2021, with the hard
    # floor of 80 mmHg), which a home cuff's MAP only repeats. Heart-failure patients on full therapy live near 65.
    Kind.BP_MEAN: KindLimits(),
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
    Protocol.GENERAL: ProtocolDefaults(Protocol.GENERAL, _GENERAL, TrendSettings()),
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
        # Weekly: AHA/HFSA patient self-check ("5 lb in a week", 2.3 kg); Chaudhry et al., Circulation
        # 2007;116:1549: a gain of 5–10 lb in the week before admission carried an odds ratio of 4.5.
        # Pulse drift of 20/min from the personal baseline is a Varde default (no guideline figure).
        TrendSettings(weight_gain_kg=2.0, weight_window_days=3.0, pulse_drift=20.0, weight_week_gain_kg=2.3),
    ),
    Protocol.COPD: ProtocolDefaults(
        Protocol.COPD,
        {
            **_GENERAL,
            # BTS 2017 oxygen guideline: target 88–92 % for COPD at risk of hypercapnic respiratory failure; red
            # at ≤ 83 (the band NEWS2 scale 2 scores 3). These are the COPD condition's alarm limits; the NEWS2
            # *scale* is not implied by them: scale 1 unless a clinician sets scale 2 in the plan (RCP 2017).
            Kind.SPO2: KindLimits(red_low=84, yellow_low=88),
        },
        # A fall of more than 4 percentage points below the personal baseline is flagged for review; a Varde
        # default for early exacerbation signs, not a guideline figure.
        TrendSettings(spo2_drop=4.0, pulse_drift=20.0),
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
    ),
    Protocol.HYPERTENSION: ProtocolDefaults(
        Protocol.HYPERTENSION,
        {
            **_GENERAL,
            # ESH 2023 grades are office thresholds, not for single home readings: a single reading keeps only the
            # red hard limit of grade 3 (SBP ≥180 / DBP ≥110, "severe BP elevation"); the yellow signal is the home
            # mean (`bp.home_average`).
            Kind.BP_SYSTOLIC: KindLimits(red_low=91, yellow_low=101, red_high=179),
            Kind.BP_DIASTOLIC: KindLimits(red_high=109),
        },
        # ESH 2023 (J Hypertens 2023;41:1874), home BP hypertension threshold: mean ≥ 135/85 mmHg.
        TrendSettings(bp_home_systolic=135.0, bp_home_diastolic=85.0),
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
SPO2_SCALE2_TARGET = KindLimits(red_low=84, yellow_low=88)
"""SpO2 low limits on NEWS2 scale 2 (BTS 2017 target 88–92 %; scale 2 ≤ 83 scores 3): with scale 2 set by a
clinician these replace every condition's SpO2 low limits, whatever the composition would give (for a patient
without COPD among the conditions it would give the general 92/94 %, which alarms all day at an 88–92 % target)."""


def _own(table: NDArray[np.float64], general: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Cells a condition sets apart from the general protocol (NaN-aware)."""
    same = (table == general) | (np.isnan(table) & np.isnan(general))
    return np.asarray(~same, dtype=np.bool_)


PROTOCOL_OWN_LIMITS: NDArray[np.bool_] = _own(PROTOCOL_LIMITS, PROTOCOL_LIMITS[0])
"""(n_protocols, N_KINDS, 4): the limits each condition sets itself; the general row is all False."""
PROTOCOL_OWN_TRENDS: NDArray[np.bool_] = _own(PROTOCOL_TRENDS, PROTOCOL_TRENDS[0])


def _deciding() -> NDArray[np.bool_]:
    d = np.zeros(PROTOCOL_LIMITS.shape, dtype=np.bool_)
    # BTS 2017 oxygen guideline: in a patient at risk of hypercapnic respiratory failure (COPD) the target is
    # 88–92 % whatever else the patient has; a comorbidity's higher SpO2 limit (heart failure's 92/90 %) would alarm
    # all day at the target and push towards over-oxygenation. COPD decides the SpO2 low limits.
    d[protocol_code(Protocol.COPD), KIND_ORDER.index(Kind.SPO2), [Limit.RED_LOW, Limit.YELLOW_LOW]] = True
    return d


PROTOCOL_DECIDES_LIMITS: NDArray[np.bool_] = _deciding()
"""(n_protocols, N_KINDS, 4): limits a condition *decides* — when the patient has it, its value stands, whatever
the other conditions set (the first deciding condition in protocol order if several did); every other limit goes to
the safer value (`compose`)."""

LIMIT_HIGHER_IS_SAFER: NDArray[np.bool_] = np.array([True, True, False, False])
"""Per `Limit` column: a higher low limit alarms sooner on a falling value; a lower high limit on a rising one."""
TREND_HIGHER_IS_SAFER: NDArray[np.bool_] = np.array(
    [
        {
            # A smaller allowed change alarms sooner.
            TrendSetting.WEIGHT_GAIN_KG: False,
            TrendSetting.SPO2_DROP: False,
            TrendSetting.PULSE_DRIFT: False,
            TrendSetting.WEIGHT_WEEK_GAIN_KG: False,
            TrendSetting.BP_HOME_SYSTOLIC: False,
            TrendSetting.BP_HOME_DIASTOLIC: False,
            # A longer window accumulates more of a slow change.
            TrendSetting.WEIGHT_WINDOW_DAYS: True,
            TrendSetting.BASELINE_DAYS: True,
            TrendSetting.BP_HOME_DAYS: True,
            # Fewer readings needed judges sooner.
            TrendSetting.BASELINE_MIN_READINGS: False,
            TrendSetting.BP_HOME_MIN_READINGS: False,
        }[setting]
        for setting in TrendSetting
    ]
)

SOURCE_SCALE2 = len(PROTOCOL_ORDER)
SOURCE_OVERRIDE = SOURCE_SCALE2 + 1
SOURCE_PERSONAL = SOURCE_SCALE2 + 2
SOURCE_HARD_FLOOR = SOURCE_SCALE2 + 3
SOURCE_NONE = SOURCE_SCALE2 + 4
LIMIT_SOURCES: tuple[str, ...] = (
    *(p.value for p in PROTOCOL_ORDER),
    "spo2_scale2",
    "override",
    "personal",
    "hard_floor",
    "none",
)
"""Names of `PatientRules.limit_source` codes: a protocol code (0 "general": no condition sets it), the scale-2
target, the patient's own override, the personal limit after the run-in (`rules_engine.personal`), the absolute
red hard floor, or none (the personal layer removed a red limit that no floor replaces)."""


def compose(
    tables: NDArray[np.float64],
    own: NDArray[np.bool_],
    conditions: NDArray[np.bool_],
    higher_is_safer: NDArray[np.bool_],
    decides: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.int8]]:
    """Compose per-condition tables into one per patient, the safer value winning cell by cell.

    `tables` (n_protocols, ..., C) with row 0 the general protocol; `own` marks the cells a condition sets;
    `conditions` (n_patients, n_protocols) which conditions each patient has. Per cell among the patient's
    conditions that set it: any number beats NaN ("no limit"/"rule off"), then the higher value where
    `higher_is_safer[C]` else the lower; a tie goes to the condition first in protocol order. `decides` (shaped
    like `tables`) marks cells a condition decides: when the patient has such a condition, its value stands
    whatever the others set (the first in protocol order among several). A cell no condition of the patient sets
    is the general value. Returns values and the protocol code each came from.
    """
    has = np.asarray(conditions, dtype=np.bool_)
    sign = np.where(higher_is_safer, 1.0, -1.0)
    key = np.where(np.isnan(tables), -np.finfo(np.float64).max, tables * sign)
    key = np.where(own, key, -np.inf)  # (P, ..., C)
    expand = (slice(None), slice(None)) + (None,) * (tables.ndim - 1)
    keys = np.where(has[expand], key[None], -np.inf)  # (n, P, ..., C)
    best = np.argmax(keys, axis=1)
    found = np.take_along_axis(keys, best[:, None], axis=1)[:, 0] > -np.inf
    if decides is not None:
        deciding = has[expand] & np.asarray(decides, dtype=np.bool_)[None]  # (n, P, ..., C)
        decided = deciding.any(axis=1)
        best = np.where(decided, np.argmax(deciding, axis=1), best)
        found |= decided
    values = np.where(found, tables[best, *np.indices(best.shape)[1:]], tables[0][None])
    source = np.where(found, best, 0).astype(np.int8)
    return values.astype(np.float64), source


def condition_matrix(conditions: Sequence[Sequence[Protocol | str]]) -> NDArray[np.bool_]:
    """(n_patients, n_protocols) from each patient's condition names ("general" or none: no condition)."""
    out = np.zeros((len(conditions), len(PROTOCOL_ORDER)), dtype=np.bool_)
    for row, names in enumerate(conditions):
        for name in names:
            out[row, protocol_code(name)] = True
    return out


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
    limit_source: NDArray[np.int8]
    """(n_patients, N_KINDS, 4): where each limit came from, a code of `LIMIT_SOURCES`."""
    trend_source: NDArray[np.int8]
    """(n_patients, N_TREND_SETTINGS): protocol code of the condition each setting came from, or SOURCE_OVERRIDE."""
    n_conditions: NDArray[np.int64]
    """How many conditions (general not counted) each patient has."""

    def limit_source_name(self, row: int, kind_idx: int, limit: int) -> str:
        return LIMIT_SOURCES[int(self.limit_source[row, kind_idx, limit])]

    centre: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    """(n_patients, N_KINDS): the personal baseline's centre (median), NaN before the run-in is over."""
    spread: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    """(n_patients, N_KINDS): the personal baseline's robust σ (MAD × 1.4826), NaN before the run-in."""
    baseline_version: NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    """(n_patients, N_KINDS): stored version of the personal baseline, −1 where none."""
    protocol: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """Primary protocol code per patient row."""
    conditions: NDArray[np.bool_] = field(default_factory=lambda: np.zeros((0, 0), dtype=np.bool_))
    """(n_patients, n_protocols): every condition of each patient, the primary included (selects the combined
    deterioration rules)."""
    weight_baseline_kg: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """After the run-in: alarm when the recent weight is more than this above the personal baseline (the
    patient's `weight_gain_kg`); NaN where the rule is off."""
    action: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0, 2)))
    """(n_patients, N_KINDS, 2): action limits (low, high) of the two-zone chart (`rules_engine.control_chart`);
    NaN where a kind has no action zone (no personal baseline, or a hand-set yellow limit): there every yellow
    reading is far and asks for a repeat."""

    def limit_origin(self, row: int, kind_idx: int, limit: int) -> str:
        """ "protocol" for a condition's default (the scale-2 target included), else the `LIMIT_SOURCES` name."""
        code = int(self.limit_source[row, kind_idx, limit])
        return "protocol" if code <= SOURCE_SCALE2 else LIMIT_SOURCES[code]

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
    conditions: ArrayLike | None = None,
    personal: PersonalBaselines | None = None,
) -> PatientRules:
    """Compose the patients' conditions, then layer the scale-2 SpO2 target, personal limits (after the run-in)
    and hand-set overrides into dense tables (a hand-set override always wins; red hard floors are absolute).

    `protocols` holds one protocol code (see `protocol_code`) or protocol name per patient row: the patient's
    primary condition. `conditions` (n_patients, n_protocols) bool, see `condition_matrix`, adds the others.
    `spo2_scale2` (the clinician's NEWS2 SpO2 scale 2, from the plan) and `on_oxygen` default to scale 1 on air.
    `personal` holds the patients' personal baselines (`rules_engine.personal`).
    """
    from rules_engine.personal import PersonalBaselines, apply_personal

    raw = np.asarray(protocols)
    if raw.dtype.kind in "US":
        distinct, inverse = np.unique(raw, return_inverse=True)
        codes = np.array([protocol_code(str(name)) for name in distinct], dtype=np.int64)[inverse]
    else:
        codes = raw.astype(np.int64)
    if codes.size and (codes.min() < 0 or codes.max() >= len(PROTOCOL_ORDER)):
        raise ValueError(f"protocol codes must be 0..{len(PROTOCOL_ORDER) - 1}")
    has = np.zeros((len(codes), len(PROTOCOL_ORDER)), dtype=np.bool_)
    has[np.arange(len(codes)), codes] = True
    if conditions is not None:
        extra = np.asarray(conditions, dtype=np.bool_)
        if extra.shape != has.shape:
            raise ValueError(f"conditions has shape {extra.shape}, expected {has.shape}")
        has |= extra
    scale2 = np.zeros(len(codes), dtype=np.bool_) if spo2_scale2 is None else np.asarray(spo2_scale2, dtype=np.bool_)
    oxygen = np.zeros(len(codes), dtype=np.bool_) if on_oxygen is None else np.asarray(on_oxygen, dtype=np.bool_)
    for name, column in (("spo2_scale2", scale2), ("on_oxygen", oxygen)):
        if column.shape != codes.shape:
            raise ValueError(f"{name} has shape {column.shape}, expected {codes.shape}")
    limits, limit_source = compose(
        PROTOCOL_LIMITS, PROTOCOL_OWN_LIMITS, has, LIMIT_HIGHER_IS_SAFER, PROTOCOL_DECIDES_LIMITS
    )
    trends, trend_source = compose(PROTOCOL_TRENDS, PROTOCOL_OWN_TRENDS, has, TREND_HIGHER_IS_SAFER)
    spo2 = KIND_ORDER.index(Kind.SPO2)
    target = np.array(SPO2_SCALE2_TARGET.as_tuple()[: Limit.YELLOW_LOW + 1])
    limits[scale2, spo2, : Limit.YELLOW_LOW + 1] = target
    limit_source[scale2, spo2, : Limit.YELLOW_LOW + 1] = SOURCE_SCALE2
    personal = personal if personal is not None else PersonalBaselines.empty()
    apply_personal(limits, limit_source, personal, scale2)
    if limit_overrides is not None:
        at = (limit_overrides.patient_row, limit_overrides.kind_idx, limit_overrides.limit)
        limits[at] = limit_overrides.value
        limit_source[at] = SOURCE_OVERRIDE
    centre, spread, version = personal.dense(len(codes))
    # After the run-in the personal limits replace the baseline-drift rules, and the weight rules (3-day and weekly
    # gain) are one rule measured from the personal baseline instead of the window's minimum: the baseline lags a
    # week, so a slow weekly gain shows against it too. A hand-set trend setting keeps its rule as it is.
    hand_set = np.zeros(trends.shape, dtype=np.bool_)
    if trend_overrides is not None:
        trends[trend_overrides.patient_row, trend_overrides.setting] = trend_overrides.value
        trend_source[trend_overrides.patient_row, trend_overrides.setting] = SOURCE_OVERRIDE
        hand_set[trend_overrides.patient_row, trend_overrides.setting] = True
    weight_baseline = trends[:, TrendSetting.WEIGHT_GAIN_KG].copy()
    has_weight = ~np.isnan(centre[:, KIND_ORDER.index(Kind.BODY_WEIGHT)])
    weight_baseline[~has_weight] = NAN
    for setting, kind in (
        (TrendSetting.WEIGHT_GAIN_KG, Kind.BODY_WEIGHT),
        (TrendSetting.WEIGHT_WEEK_GAIN_KG, Kind.BODY_WEIGHT),
        (TrendSetting.SPO2_DROP, Kind.SPO2),
        (TrendSetting.PULSE_DRIFT, Kind.PULSE_RATE),
    ):
        replaced = ~np.isnan(centre[:, KIND_ORDER.index(kind)]) & ~hand_set[:, setting]
        trends[replaced, setting] = NAN
    n_conditions = has[:, 1:].sum(axis=1).astype(np.int64)
    action = _action_table(limits, limit_source, personal, centre, spread)
    return PatientRules(
        limits,
        trends,
        scale2,
        oxygen,
        limit_source,
        trend_source,
        n_conditions,
        centre,
        spread,
        version,
        codes,
        has,
        weight_baseline,
        action,
    )


def _action_table(
    limits: NDArray[np.float64],
    limit_source: NDArray[np.int8],
    personal: PersonalBaselines,
    centre: NDArray[np.float64],
    spread: NDArray[np.float64],
) -> NDArray[np.float64]:
    """The two-zone chart's action limits per (patient, kind, side) where the kind has a personal baseline, the
    side is personalised and its yellow limit is not hand-set (a clinician's limit is used as written)."""
    from rules_engine.control_chart import action_limits
    from rules_engine.personal import MIN_SPREAD, SPEC_HIGH, SPEC_LOW

    action = np.full((limits.shape[0], N_KINDS, 2), NAN)
    if not len(personal):
        return action
    rows, kinds = personal.patient_row, personal.kind_idx
    floored = np.maximum(np.nan_to_num(spread[rows, kinds], nan=0.0), MIN_SPREAD[kinds])
    yellow_low = np.where(
        SPEC_LOW[kinds] & (limit_source[rows, kinds, Limit.YELLOW_LOW] != SOURCE_OVERRIDE),
        limits[rows, kinds, Limit.YELLOW_LOW],
        NAN,
    )
    yellow_high = np.where(
        SPEC_HIGH[kinds] & (limit_source[rows, kinds, Limit.YELLOW_HIGH] != SOURCE_OVERRIDE),
        limits[rows, kinds, Limit.YELLOW_HIGH],
        NAN,
    )
    low, high = action_limits(centre[rows, kinds], floored, kinds, yellow_low, yellow_high)
    action[rows, kinds, 0] = low
    action[rows, kinds, 1] = high
    return action


def patient_rules_of(
    protocol: Protocol | str,
    overrides: Mapping[Kind | str, Mapping[str, float | None]] | None = None,
    *,
    conditions: Sequence[Protocol | str] = (),
    spo2_scale2: bool = False,
    trend_overrides: Mapping[str, float | None] | None = None,
    personal: PersonalBaselines | None = None,
) -> PatientRules:
    """One patient's rules after composing and layering (for the API, the validation and the editor); `personal`
    holds that patient's baselines as patient row 0."""
    return build_patient_rules(
        [protocol_code(protocol)],
        LimitOverrides.from_mapping({0: overrides or {}}),
        TrendOverrides.from_mapping({0: trend_overrides}) if trend_overrides else None,
        conditions=condition_matrix([conditions]),
        spo2_scale2=[spo2_scale2],
        personal=personal,
    )


def effective_limits(
    protocol: Protocol | str,
    overrides: Mapping[Kind | str, Mapping[str, float | None]] | None = None,
    *,
    conditions: Sequence[Protocol | str] = (),
    spo2_scale2: bool = False,
) -> dict[Kind, KindLimits]:
    """One patient's limits after layering (for the API and the plan sent to the gateway)."""
    table = patient_rules_of(protocol, overrides, conditions=conditions, spo2_scale2=spo2_scale2).limits[0]
    return {kind: KindLimits(*(float(x) for x in table[i])) for i, kind in enumerate(KIND_ORDER)}
