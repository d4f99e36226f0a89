"""The dashboard's string catalogues, one JSON file per language, and the choice of language per request."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any, Literal

from rules_engine.profiles import LIMIT_NAMES, PROTOCOLS
from vitals import KINDS
from vitals.vocabulary import ALARM_STATES, SEVERITIES

Lang = Literal["nb", "en"]
LANGS: tuple[Lang, ...] = ("nb", "en")
DEFAULT_LANG: Lang = "nb"
LANG_COOKIE = "varde_lang"
# Under templates/ so the package data of `clinician_api` (static/, templates/) ships it with the pages.
_DIR = Path(__file__).resolve().parent.parent / "templates" / "i18n"


@cache
def strings(lang: Lang) -> dict[str, str]:
    """The UI strings of one language (`clinician_api/templates/i18n/<lang>.json`, and the sections' own
    `contact.<lang>.json`, `episodes.<lang>.json`, `schedule.<lang>.json` and `worklist.<lang>.json` (worklist,
    population overview, period report))."""
    loaded: dict[str, str] = json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    for section in ("contact", "episodes", "schedule", "worklist"):
        loaded.update(json.loads((_DIR / f"{section}.{lang}.json").read_text(encoding="utf-8")))
    return loaded


def pick(value: str | None) -> Lang:
    """The language named by a cookie or parameter; bokmål when it names none we have."""
    return "en" if value == "en" else DEFAULT_LANG


@cache
def vocabulary(lang: Lang) -> dict[str, Any]:
    """What the scripts need besides the strings: kind names, units and decimals from `vitals`, each protocol's
    default limits (public clinical defaults, no patient data) for the threshold editor, and the severities and alarm
    states of `vitals.vocabulary`."""
    kinds = {
        kind.value: {
            "name": info.name_nb if lang == "nb" else info.name_en,
            "unit": info.unit,
            "unit_display": info.unit_display,
            "decimals": info.decimals,
            "low": info.plausible_low,
            "high": info.plausible_high,
        }
        for kind, info in KINDS.items()
    }
    defaults = {
        protocol.value: {
            kind.value: dict(zip(LIMIT_NAMES, (None if math.isnan(v) else v for v in limits.as_tuple()), strict=True))
            for kind, limits in spec.limits.items()
        }
        for protocol, spec in PROTOCOLS.items()
    }
    # The plan preview shows what the patient sees, in the patient's language, whatever the user's language.
    patient = {
        other: {
            "strings": {k: v for k, v in strings(other).items() if k.startswith("patient_")},
            "kinds": {kind.value: info.name_nb if other == "nb" else info.name_en for kind, info in KINDS.items()},
        }
        for other in LANGS
    }
    return {
        "lang": lang,
        "strings": strings(lang),
        "kinds": kinds,
        "protocol_limits": defaults,
        "patient": patient,
        **word_lists(),
    }


def word_lists() -> dict[str, list[str]]:
    """The one vocabulary for every page's scripts (the dashboard's and `/min/`, which share `i18n.js`), so they
    hold no copy of it: severities worst first (their rank order) and the alarm states."""
    return {"severities": list(SEVERITIES), "alarm_states": list(ALARM_STATES)}
