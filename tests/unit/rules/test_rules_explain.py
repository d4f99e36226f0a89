from __future__ import annotations

import pytest

from rules_engine import Limit, News2Parameter, Severity, format_number, format_value
from rules_engine.explain import explain_baseline_drift, explain_news2, explain_threshold, explain_weight_gain
from vitals import Kind


@pytest.mark.parametrize(
    ("value", "kind", "nb", "en"),
    [
        (84.1, Kind.BODY_WEIGHT, "84,1 kg", "84.1 kg"),
        (92.0, Kind.SPO2, "92 %", "92%"),
        (110.0, Kind.PULSE_RATE, "110/min", "110/min"),
        (38.25, Kind.BODY_TEMPERATURE, "38,2 °C", "38.2 °C"),
        (3.85, Kind.GLUCOSE, "3,9 mmol/L", "3.9 mmol/L"),
        (141.0, Kind.BP_SYSTOLIC, "141 mmHg", "141 mmHg"),
    ],
)
def test_values_follow_kind_decimals_units_and_decimal_comma(value: float, kind: Kind, nb: str, en: str) -> None:
    assert format_value(value, kind, "nb") == nb
    assert format_value(value, kind, "en") == en


def test_signed_numbers_use_a_true_minus_in_bokmaal() -> None:
    assert format_number(-1.5, 1, "nb", sign=True) == "−1,5"
    assert format_number(2.4, 1, "en", sign=True) == "+2.4"


def test_weight_gain_explanation() -> None:
    assert explain_weight_gain(84.1, 2.4, 2 * 86_400, 2.0, 3.0) == (
        "Vekt 84,1 kg, +2,4 kg på 2 dager, grense 2,0 kg på 3 dager",
        "Body weight 84.1 kg, +2.4 kg in 2 days, limit 2.0 kg in 3 days",
    )
    assert explain_weight_gain(80.0, 1.2, 86_400, 1.0, 1.0)[0].endswith("+1,2 kg på 1 dag, grense 1,0 kg på 1 dag")
    assert explain_weight_gain(80.0, 2.5, 10 * 3600, 2.0, 3.0)[1].endswith(
        "+2.5 kg in 10 hours, limit 2.0 kg in 3 days"
    )


def test_threshold_explanation_with_count() -> None:
    assert explain_threshold(Kind.SPO2, 86.0, 88.0, Limit.YELLOW_LOW, 1) == (
        "Oksygenmetning 86 %, under gul grense 88 %",
        "Oxygen saturation 86%, below the yellow limit 88%",
    )
    nb, en = explain_threshold(Kind.BP_SYSTOLIC, 184.0, 179.0, Limit.RED_HIGH, 3)
    assert nb == "Systolisk blodtrykk 184 mmHg, over rød grense 179 mmHg (3 målinger over grensen)"
    assert en == "Systolic blood pressure 184 mmHg, above the red limit 179 mmHg (3 readings above the limit)"


def test_baseline_drift_explanation_shows_a_half_median() -> None:
    assert explain_baseline_drift(Kind.SPO2, 89.0, 93.5, -4.5, 4.0, 14.0) == (
        "Oksygenmetning 89 %, 4,5 prosentpoeng under personlig utgangsverdi 93,5 % (median siste 14 dager), "
        "grense 4 prosentpoeng",
        "Oxygen saturation 89%, 4.5 percentage points below personal baseline 93.5% (median of the last 14 days), "
        "limit 4 percentage points",
    )
    nb, en = explain_baseline_drift(Kind.PULSE_RATE, 102.0, 78.0, 24.0, 20.0, 14.0)
    assert nb == "Puls 102/min, 24/min over personlig utgangsverdi 78/min (median siste 14 dager), grense 20/min"
    assert en.startswith("Pulse rate 102/min, 24/min above personal baseline 78/min")


def test_news2_explanation_names_scores_missing_parameters_and_assumptions() -> None:
    nb, en = explain_news2(
        6,
        Severity.YELLOW,
        {News2Parameter.SPO2: 86.0, News2Parameter.PULSE: 112.0},
        {News2Parameter.SPO2: 2, News2Parameter.PULSE: 2},
        [News2Parameter.RESP_RATE, News2Parameter.SYSTOLIC, News2Parameter.TEMPERATURE],
        scale2=True,
        on_oxygen=True,
    )
    assert nb == (
        "NEWS2 minst 6 (gul): oksygenmetning skala 2 86 % (2), puls 112/min (2), oksygentilskudd (2). "
        "Mangler: respirasjonsfrekvens, systolisk blodtrykk, kroppstemperatur. Bevissthet antatt våken."
    )
    assert en == (
        "NEWS2 at least 6 (yellow): oxygen saturation scale 2 86% (2), pulse rate 112/min (2), "
        "supplemental oxygen (2). Missing: respiratory rate, systolic blood pressure, body temperature. "
        "Consciousness assumed alert."
    )
