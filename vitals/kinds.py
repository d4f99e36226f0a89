"""The measurement kinds table: canonical unit, codes, plausible range and display names per kind.

Every stage reads units, codes and ranges from here; nothing else defines them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    BP_SYSTOLIC = "bp_systolic"
    BP_DIASTOLIC = "bp_diastolic"
    BP_MEAN = "bp_mean"
    PULSE_RATE = "pulse_rate"
    HEART_RATE = "heart_rate"
    SPO2 = "spo2"
    BODY_TEMPERATURE = "body_temperature"
    BODY_WEIGHT = "body_weight"
    GLUCOSE = "glucose"
    RESP_RATE = "resp_rate"


@dataclass(frozen=True, slots=True)
class KindInfo:
    kind: Kind
    unit: str
    """Canonical UCUM unit; readings travel and are stored in it."""
    loinc: str
    extra_loinc: tuple[str, ...]
    mdc_code: int | None
    """IEEE 11073-10101 code (partition 2, SCADA); None where not verified."""
    mdc_ref: str | None
    plausible_low: float
    plausible_high: float
    """Outside [low, high] a value is a device or transmission fault, never a measurement."""
    decimals: int
    name_nb: str
    name_en: str
    unit_display: str

    def is_plausible(self, value: float) -> bool:
        return math.isfinite(value) and self.plausible_low <= value <= self.plausible_high

    def rounded(self, value: float) -> float:
        """`value` at the kind's displayed decimals, half to even: THE rounding of a reading wherever it is judged
        or shown (rules, NEWS2, texts, the gateway's zones). Scaled, then rounded to an integer, exactly as numpy's
        `round(values, decimals)` does, so the edge and the cloud round every double alike."""
        scale = 10**self.decimals
        return float(round(value * scale) / scale)

    def range_text(self) -> str:
        return f"{_fmt(self.plausible_low)}–{_fmt(self.plausible_high)}"


def _fmt(value: float) -> str:
    return f"{value:g}"


KINDS: dict[Kind, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo(
            Kind.BP_SYSTOLIC,
            "mm[Hg]",
            "8480-6",
            (),
            150021,
            "MDC_PRESS_BLD_NONINV_SYS",
            40,
            300,
            0,
            "Systolisk blodtrykk",
            "Systolic blood pressure",
            "mmHg",
        ),
        KindInfo(
            Kind.BP_DIASTOLIC,
            "mm[Hg]",
            "8462-4",
            (),
            150022,
            "MDC_PRESS_BLD_NONINV_DIA",
            20,
            200,
            0,
            "Diastolisk blodtrykk",
            "Diastolic blood pressure",
            "mmHg",
        ),
        KindInfo(
            Kind.BP_MEAN,
            "mm[Hg]",
            "8478-0",
            (),
            150023,
            "MDC_PRESS_BLD_NONINV_MEAN",
            25,
            250,
            0,
            "Middelarterietrykk",
            "Mean arterial pressure",
            "mmHg",
        ),
        KindInfo(
            Kind.PULSE_RATE,
            "/min",
            "8867-4",
            (),
            149546,
            "MDC_PULS_RATE_NON_INV",
            20,
            300,
            0,
            "Puls",
            "Pulse rate",
            "/min",
        ),
        KindInfo(
            Kind.HEART_RATE,
            "/min",
            "8867-4",
            (),
            147842,
            "MDC_ECG_HEART_RATE",
            20,
            300,
            0,
            "Hjertefrekvens",
            "Heart rate",
            "/min",
        ),
        KindInfo(
            Kind.SPO2,
            "%",
            "59408-5",
            ("2708-6",),
            150456,
            "MDC_PULS_OXIM_SAT_O2",
            50,
            100,
            0,
            "Oksygenmetning",
            "Oxygen saturation",
            "%",
        ),
        KindInfo(
            Kind.BODY_TEMPERATURE,
            "Cel",
            "8310-5",
            (),
            150364,
            "MDC_TEMP_BODY",
            25,
            45,
            1,
            "Kroppstemperatur",
            "Body temperature",
            "°C",
        ),
        KindInfo(
            Kind.BODY_WEIGHT,
            "kg",
            "29463-7",
            (),
            188736,
            "MDC_MASS_BODY_ACTUAL",
            2,
            400,
            1,
            "Vekt",
            "Body weight",
            "kg",
        ),
        # IEEE 11073-10417 glucose codes depend on sample type; left unset until verified.
        KindInfo(
            Kind.GLUCOSE, "mmol/L", "14743-9", (), None, None, 0.5, 50, 1, "Blodsukker", "Blood glucose", "mmol/L"
        ),
        KindInfo(
            Kind.RESP_RATE,
            "/min",
            "9279-1",
            (),
            151562,
            "MDC_RESP_RATE",
            2,
            80,
            0,
            "Respirasjonsfrekvens",
            "Respiratory rate",
            "/min",
        ),
    )
}


def kind_info(kind: Kind | str) -> KindInfo:
    """Look up a kind; raises ValueError naming the unknown kind."""
    try:
        return KINDS[Kind(kind)]
    except ValueError:
        raise ValueError(f"unknown measurement kind {kind!r}") from None
