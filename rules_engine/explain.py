"""The sentences a nurse reads on an alarm, in bokmål and English, from one candidate's numbers.

Numbers follow the kind's `decimals` and `unit_display` from `vitals.KINDS`; bokmål uses a decimal comma.
Runs once per alarm candidate (few per batch), never per reading.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from rules_engine.news2 import News2Parameter
from rules_engine.profiles import Limit
from rules_engine.severity import Severity
from vitals import KINDS, Kind

Texts = tuple[str, str]
"""(bokmål, English)."""

_SEVERITY_NB = {Severity.NEEDS_REVIEW: "til vurdering", Severity.YELLOW: "gul", Severity.RED: "rød"}
_SEVERITY_EN = {Severity.NEEDS_REVIEW: "needs review", Severity.YELLOW: "yellow", Severity.RED: "red"}

_NEWS2_KIND: Mapping[News2Parameter, Kind] = {
    News2Parameter.RESP_RATE: Kind.RESP_RATE,
    News2Parameter.SPO2: Kind.SPO2,
    News2Parameter.SYSTOLIC: Kind.BP_SYSTOLIC,
    News2Parameter.PULSE: Kind.PULSE_RATE,
    News2Parameter.TEMPERATURE: Kind.BODY_TEMPERATURE,
}


def format_number(value: float, decimals: int, lang: str, *, sign: bool = False) -> str:
    """`value` with `decimals` decimals; bokmål ("nb") uses a decimal comma and a true minus sign."""
    text = f"{value:+.{decimals}f}" if sign else f"{value:.{decimals}f}"
    if lang == "nb":
        text = text.replace(".", ",").replace("-", "−")
    return text


def format_change(value: float, decimals: int, lang: str, *, sign: bool = False) -> str:
    """A change or a median: shown with one extra decimal only when it has one (a median of 93 and 94 is 93.5)."""
    extra = round(value, decimals + 1)
    shown = decimals + 1 if not math.isclose(extra, round(extra, decimals), abs_tol=1e-9) else decimals
    return format_number(extra, shown, lang, sign=sign)


def with_unit(number: str, kind: Kind, lang: str) -> str:
    unit = KINDS[kind].unit_display
    if unit.startswith("/") or (unit == "%" and lang == "en"):
        return f"{number}{unit}"
    return f"{number} {unit}"


def format_value(value: float, kind: Kind, lang: str) -> str:
    """E.g. "84,1 kg" / "84.1 kg", "92 %" / "92%", "110 /min" → "110/min"."""
    return with_unit(format_number(value, KINDS[kind].decimals, lang), kind, lang)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _days(days: float, lang: str) -> str:
    number = format_change(days, 0, lang)
    if lang == "nb":
        return f"{number} dag" if days == 1 else f"{number} dager"
    return f"{number} day" if days == 1 else f"{number} days"


def _span(seconds: float, lang: str) -> str:
    """The real time a change took: minutes under an hour, whole hours under a day, else days (one decimal when
    it has one), so a gain within 12 h never reads "på 3 dager"."""
    nb = lang == "nb"
    if seconds < 3600:
        n = max(round(seconds / 60), 1)
        return (f"{n} minutt" if n == 1 else f"{n} minutter") if nb else (f"{n} minute" if n == 1 else f"{n} minutes")
    if seconds < 86_400:
        n = round(seconds / 3600)
        return (f"{n} time" if n == 1 else f"{n} timer") if nb else (f"{n} hour" if n == 1 else f"{n} hours")
    return _days(round(seconds / 86_400, 1), lang)


def _change_unit(number: str, kind: Kind, lang: str) -> str:
    if KINDS[kind].unit_display == "%":
        return f"{number} prosentpoeng" if lang == "nb" else f"{number} percentage points"
    return with_unit(number, kind, lang)


CONDITION_NAMES: Mapping[str, Texts] = {
    "heart_failure": ("hjertesvikt", "heart failure"),
    "copd": ("kols", "COPD"),
    "diabetes": ("diabetes", "diabetes"),
    "hypertension": ("høyt blodtrykk", "hypertension"),
    "spo2_scale2": ("NEWS2 skala 2-mål", "NEWS2 scale 2 target"),
}
"""How a limit's source reads in an explanation (`profiles.LIMIT_SOURCES` names that are worth saying)."""


def explain_threshold(
    kind: Kind, value: float, limit: float, breached: Limit, count: int, source: str | None = None
) -> Texts:
    """E.g. "Oksygenmetning 86 %, under rød grense 88 %"; with `source` (the condition the limit came from, for a
    patient with several, or the scale-2 target) "…, under gul grense 13,9 mmol/L (diabetes)"."""
    info = KINDS[kind]
    low = breached in (Limit.RED_LOW, Limit.YELLOW_LOW)
    red = breached in (Limit.RED_LOW, Limit.RED_HIGH)
    nb = (
        f"{info.name_nb} {format_value(value, kind, 'nb')}, {'under' if low else 'over'} "
        f"{'rød' if red else 'gul'} grense {format_value(limit, kind, 'nb')}"
    )
    en = (
        f"{info.name_en} {format_value(value, kind, 'en')}, {'below' if low else 'above'} the "
        f"{'red' if red else 'yellow'} limit {format_value(limit, kind, 'en')}"
    )
    names = CONDITION_NAMES.get(source) if source is not None else None
    if names is not None:
        nb += f" ({names[0]})"
        en += f" ({names[1]})"
    if count > 1:
        nb += f" ({count} målinger {'under' if low else 'over'} grensen)"
        en += f" ({count} readings {'below' if low else 'above'} the limit)"
    return nb, en


def explain_personal_threshold(
    kind: Kind, value: float, limit: float, breached: Limit, count: int, centre: float, spread: float
) -> Texts:
    """E.g. "Oksygenmetning 91 %, under pasientens vanlige 95 % ± 1,2 (personlig gul grense 92 %)"."""
    info = KINDS[kind]
    low = breached in (Limit.RED_LOW, Limit.YELLOW_LOW)
    texts: list[str] = []
    for lang, name, side, usual, own, word, many in (
        (
            "nb",
            info.name_nb,
            "under" if low else "over",
            "pasientens vanlige",
            "personlig gul grense",
            "målinger",
            "grensen",
        ),
        (
            "en",
            info.name_en,
            "below" if low else "above",
            "the patient's usual",
            "personal yellow limit",
            "readings",
            "the limit",
        ),
    ):
        text = (
            f"{name} {format_value(value, kind, lang)}, {side} {usual} "
            f"{with_unit(format_change(centre, info.decimals, lang), kind, lang)} ± "
            f"{format_number(spread, info.decimals + 1, lang)} ({own} {format_value(limit, kind, lang)})"
        )
        if count > 1:
            text += f" ({count} {word} {side} {many})"
        texts.append(text)
    return texts[0], texts[1]


def explain_weight_above_baseline(recent: float, centre: float, delta: float, limit: float, days: float) -> Texts:
    """E.g. "Vekt 84,3 kg (median siste 3 dager), +2,4 kg over pasientens vanlige 81,9 kg, grense 2,0 kg"."""
    kind = Kind.BODY_WEIGHT
    info = KINDS[kind]
    texts: list[str] = []
    for lang, name, median_of, above, usual, limit_word in (
        ("nb", info.name_nb, "median siste", "over", "pasientens vanlige", "grense"),
        ("en", info.name_en, "median of the last", "above", "the patient's usual", "limit"),
    ):
        texts.append(
            f"{name} {with_unit(format_change(recent, info.decimals, lang), kind, lang)} ({median_of} "
            f"{_days(days, lang)}), {with_unit(format_change(delta, info.decimals, lang, sign=True), kind, lang)} "
            f"{above} {usual} {with_unit(format_change(centre, info.decimals, lang), kind, lang)}, {limit_word} "
            f"{format_value(limit, kind, lang)}"
        )
    return texts[0], texts[1]


def explain_combined(
    rule: str,
    score: float,
    limit: float,
    parts: list[tuple[Kind, float, float, float]],
    recent_days: float,
) -> Texts:
    """E.g. "Samlet forverring ved hjertesvikt: poengsum 6,8, grense 4,0 — vekt +1,6 kg fra vanlig 82,0 kg (3,0),
    puls +7/min fra vanlig 68/min (1,8) …; vektet snitt siste 10 dager (nyeste dag teller mest) mot pasientens
    vanlige verdier".

    `parts` holds (kind, recent EWMA level, personal centre, contribution) per input with a recent reading."""
    condition_nb, condition_en = _COMBINED_NAMES[rule]
    texts: list[str] = []
    for lang in ("nb", "en"):
        items = []
        for kind, recent, centre, contribution in parts:
            info = KINDS[kind]
            name = _lower_first(info.name_nb if lang == "nb" else info.name_en)
            change = _change_unit(format_change(recent - centre, info.decimals, lang, sign=True), kind, lang)
            usual = with_unit(format_change(centre, info.decimals, lang), kind, lang)
            word = "fra vanlig" if lang == "nb" else "from usual"
            items.append(f"{name} {change} {word} {usual} ({format_number(contribution, 1, lang)})")
        if lang == "nb":
            texts.append(
                f"Samlet forverring ved {condition_nb}: poengsum {format_number(score, 1, lang)}, grense "
                f"{format_number(limit, 1, lang)} – {', '.join(items)}; vektet snitt siste {_days(recent_days, lang)} "
                "(nyeste dag teller mest) mot pasientens vanlige verdier"
            )
        else:
            texts.append(
                f"Combined deterioration in {condition_en}: score {format_number(score, 1, lang)}, limit "
                f"{format_number(limit, 1, lang)} – {', '.join(items)}; weighted mean of the last "
                f"{_days(recent_days, lang)} (newest day weighs most) against the patient's usual values"
            )
    return texts[0], texts[1]


_COMBINED_NAMES: Mapping[str, tuple[str, str]] = {
    "combined.heart_failure": ("hjertesvikt", "heart failure"),
    "combined.copd": ("kols", "COPD"),
}


def explain_weight_gain(end_value: float, delta: float, span_s: float, limit: float, window_days: float) -> Texts:
    """E.g. "Vekt 84,1 kg, +2,4 kg på 2 dager, grense 2,0 kg på 3 dager": the gain over the time it really took
    (lowest weight of the window to the latest), then the plan's limit and window."""
    kind = Kind.BODY_WEIGHT
    info = KINDS[kind]
    nb = (
        f"{info.name_nb} {format_value(end_value, kind, 'nb')}, "
        f"{with_unit(format_change(delta, info.decimals, 'nb', sign=True), kind, 'nb')} på {_span(span_s, 'nb')}, "
        f"grense {format_value(limit, kind, 'nb')} på {_days(window_days, 'nb')}"
    )
    en = (
        f"{info.name_en} {format_value(end_value, kind, 'en')}, "
        f"{with_unit(format_change(delta, info.decimals, 'en', sign=True), kind, 'en')} in {_span(span_s, 'en')}, "
        f"limit {format_value(limit, kind, 'en')} in {_days(window_days, 'en')}"
    )
    return nb, en


def explain_home_blood_pressure(
    systolic: float, diastolic: float, count: int, days: float, limit_systolic: float, limit_diastolic: float
) -> Texts:
    """E.g. "Hjemmeblodtrykk snitt 141/83 mmHg siste 7 dager (14 målinger), grense 135/85 (ESH)"."""

    def pair(a: float, b: float, lang: str) -> str:
        return f"{format_change(a, 0, lang)}/{format_change(b, 0, lang)}"

    nb = (
        f"Hjemmeblodtrykk snitt {pair(systolic, diastolic, 'nb')} mmHg siste {_days(days, 'nb')} "
        f"({count} målinger), grense {pair(limit_systolic, limit_diastolic, 'nb')} (ESH)"
    )
    en = (
        f"Home blood pressure mean {pair(systolic, diastolic, 'en')} mmHg over the last {_days(days, 'en')} "
        f"({count} readings), limit {pair(limit_systolic, limit_diastolic, 'en')} (ESH)"
    )
    return nb, en


def explain_baseline_drift(
    kind: Kind, value: float, baseline: float, delta: float, limit: float, baseline_days: float
) -> Texts:
    """E.g. "Oksygenmetning 89 %, 5 prosentpoeng under personlig utgangsverdi 94 % (median siste 14 dager), grense 4
    prosentpoeng"."""
    info = KINDS[kind]
    d = info.decimals
    texts: list[str] = []
    for lang, name, below, above, base, median_of, limit_word in (
        ("nb", info.name_nb, "under", "over", "personlig utgangsverdi", "median siste", "grense"),
        ("en", info.name_en, "below", "above", "personal baseline", "median of the last", "limit"),
    ):
        change = _change_unit(format_change(abs(delta), d, lang), kind, lang)
        texts.append(
            f"{name} {format_value(value, kind, lang)}, {change} {below if delta < 0 else above} {base} "
            f"{with_unit(format_change(baseline, d, lang), kind, lang)} ({median_of} {_days(baseline_days, lang)}), "
            f"{limit_word} {_change_unit(format_change(limit, d, lang), kind, lang)}"
        )
    return texts[0], texts[1]


def explain_news2(
    score: int,
    severity: Severity,
    values: Mapping[News2Parameter, float],
    sub_scores: Mapping[News2Parameter, int],
    missing: list[News2Parameter],
    *,
    scale2: bool,
    on_oxygen: bool,
) -> Texts:
    """E.g. "NEWS2 minst 7 (rød): respirasjonsfrekvens 24/min (2), … Mangler: kroppstemperatur. Bevissthet antatt
    våken.". With a parameter missing the sum is a lower bound, and is worded so ("minst" / "at least")."""
    texts: list[str] = []
    for lang in ("nb", "en"):
        parts = []
        for param, value in values.items():
            kind = _NEWS2_KIND[param]
            name = _lower_first(KINDS[kind].name_nb if lang == "nb" else KINDS[kind].name_en)
            scale = (" skala 2" if lang == "nb" else " scale 2") if param == News2Parameter.SPO2 and scale2 else ""
            parts.append(f"{name}{scale} {format_value(value, kind, lang)} ({sub_scores[param]})")
        if on_oxygen:
            parts.append("oksygentilskudd (2)" if lang == "nb" else "supplemental oxygen (2)")
        label = _SEVERITY_NB[severity] if lang == "nb" else _SEVERITY_EN[severity]
        at_least = ("minst " if lang == "nb" else "at least ") if missing else ""
        text = f"NEWS2 {at_least}{score} ({label}): {', '.join(parts)}."
        if missing:
            names = ", ".join(
                _lower_first(KINDS[_NEWS2_KIND[p]].name_nb if lang == "nb" else KINDS[_NEWS2_KIND[p]].name_en)
                for p in missing
            )
            text += f" Mangler: {names}." if lang == "nb" else f" Missing: {names}."
        text += " Bevissthet antatt våken." if lang == "nb" else " Consciousness assumed alert."
        texts.append(text)
    return texts[0], texts[1]


def explain_persistence(days: int, of_days: int) -> tuple[str, str]:
    """The sentence a persistent warning-zone threshold alarm ends with (bokmål, English)."""
    return (
        f"Utenfor grensen {days} av de siste {of_days} måledagene.",
        f"Beyond the limit on {days} of the last {of_days} measurement days.",
    )
