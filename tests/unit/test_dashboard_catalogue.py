"""The dashboard's string catalogues: both languages say the same things, every string the pages ask for exists,
and every value of the API's vocabulary (severities, states, zones, protocols, roles, …) has a label."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from clinician_api.dashboard.i18n import LANGS, pick, strings, vocabulary
from clinician_api.dashboard.router import safe_next
from clinician_api.journal.schemas import EntryKind, EntryState
from clinician_api.schemas import AlarmState, LimitName, PlanVersion, Role, Severity
from rules_engine.profiles import Protocol
from vitals.plan import Weekday, Zone

PACKAGE = Path(__file__).resolve().parents[2] / "clinician_api"


def _used_keys() -> set[str]:
    keys: set[str] = set()
    for template in (PACKAGE / "templates").glob("*.html"):
        keys |= set(re.findall(r"\bt\.([a-z0-9_]+)", template.read_text(encoding="utf-8")))
    for script in (PACKAGE / "static" / "js").glob("*.js"):
        text = script.read_text(encoding="utf-8")
        keys |= set(re.findall(r"\b(?:t|say)\(\"([a-z0-9_]+)\"", text))
        # Keys chosen by a condition: t(x ? "one" : "other")
        for one, other in re.findall(r"\bt\([^()]*\? \"([a-z0-9_]+)\" : \"([a-z0-9_]+)\"", text):
            keys |= {one, other}
    return keys


def test_both_languages_have_the_same_keys_and_no_empty_strings() -> None:
    nb, en = strings("nb"), strings("en")
    assert set(nb) == set(en)
    empty = {k for lang in LANGS for k, v in strings(lang).items() if not v.strip() and k != "source_none"}
    assert not empty


def test_every_string_the_pages_ask_for_is_in_the_catalogue() -> None:
    used = _used_keys()
    assert len(used) > 150
    assert used - set(strings("nb")) == set()


@pytest.mark.parametrize(
    ("prefix", "values"),
    [
        ("severity_", get_args(Severity)),
        ("state_", get_args(AlarmState)),
        ("role_", get_args(Role)),
        ("limit_", get_args(LimitName)),
        ("limit_short_", get_args(LimitName)),
        ("zone_", get_args(Zone)),
        ("patient_zone_", get_args(Zone)),
        ("protocol_", tuple(p.value for p in Protocol)),
        ("plan_status_", get_args(PlanVersion.model_fields["status"].annotation)),
        ("source_", ("protocol", "override", "plan", "none")),
        ("wd_", get_args(Weekday)),
        ("patient_wd_", get_args(Weekday)),
        ("gateway_", ("online", "offline", "unknown")),
        ("range_", ("day", "week", "90d")),
        ("journal_state_", get_args(EntryState)),
        ("journal_kind_", get_args(EntryKind)),
        ("sound_", ("on", "off")),
        ("banner_", ("on", "off")),
    ],
)
def test_every_value_of_the_api_vocabulary_has_a_label(prefix: str, values: tuple[str, ...]) -> None:
    for lang in LANGS:
        missing = [v for v in values if f"{prefix}{v}" not in strings(lang)]
        assert not missing, f"{lang}: no label for {prefix}{missing}"


def test_patient_preview_gets_the_patient_strings_of_both_languages() -> None:
    patient = vocabulary("nb")["patient"]
    assert patient["en"]["strings"]["patient_zone_red"] == strings("en")["patient_zone_red"]
    assert patient["nb"]["kinds"]["spo2"] == "Oksygenmetning"
    assert vocabulary("en")["kinds"]["spo2"]["name"] == "Oxygen saturation"


def test_language_defaults_to_bokmal() -> None:
    assert pick(None) == "nb"
    assert pick("de") == "nb"
    assert pick("en") == "en"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/dashboard/patients?q=x", "/dashboard/patients?q=x"),
        ("/dashboard", "/dashboard"),
        ("https://evil.example/dashboard/", "/dashboard/"),
        ("//evil.example/dashboard/", "/dashboard/"),
        ("/dashboardx", "/dashboard/"),
        ("/dashboard/\\evil", "/dashboard/"),
        (None, "/dashboard/"),
    ],
)
def test_language_switch_returns_only_to_dashboard_pages(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected
