"""Plans for the patient-side tests: a heart-failure plan with weight and blood-pressure zones, a twice-daily blood
pressure schedule and a symptom questionnaire, as wire bytes the gateway receives."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from vitals import PlanContent, SelfManagementPlan

BODY: dict[str, Any] = {
    "protocol": "heart_failure",
    "diagnosis": "I50.9",
    "timezone": "Europe/Oslo",
    "schedule": [
        {"kind": "body_weight", "deadline": "09:00", "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
        {"kind": "bp_systolic", "deadline": "09:00", "weekdays": ["mon", "wed", "fri"], "reminder_minutes_before": 30},
        {"kind": "bp_systolic", "deadline": "20:00", "weekdays": ["mon", "wed", "fri"], "reminder_minutes_before": 30},
    ],
    "zones": [
        {"kind": "body_weight", "unit": "kg", "yellow_high": 82.0, "red_high": 84.0},
        {
            "kind": "bp_systolic",
            "unit": "mm[Hg]",
            "red_low": 90.0,
            "yellow_low": 100.0,
            "yellow_high": 150.0,
            "red_high": 170.0,
        },
        {"kind": "pulse_rate", "unit": "/min", "red_low": 40.0, "red_high": 120.0},
    ],
    "advice": [
        {"zone": "green", "nb": "Alt ser bra ut. Fortsett som før.", "en": "All looks well. Carry on as before."},
        {
            "zone": "yellow",
            "nb": "Ta en ekstra vanndrivende tablett i dag.",
            "en": "Take one extra water tablet today.",
        },
        {"zone": "red", "nb": "Ring sykepleieren nå.", "en": "Call the nurse now."},
        {
            "zone": "red",
            "kind": "body_weight",
            "nb": "Vekten har økt mye. Ring hjertesviktpoliklinikken nå.",
            "en": "Your weight has gone up a lot. Call the heart failure clinic now.",
        },
    ],
    "contacts": [
        {"name": "Hjertesviktpoliklinikken", "role": "sykepleier", "phone": "+47 22 11 80 80"},
        {"name": "Legevakt", "role": "lege", "phone": "116 117"},
    ],
    "questionnaires": [
        {
            "id": "hf-symptoms",
            "title_nb": "Hvordan har du det i dag?",
            "title_en": "How are you today?",
            "deadline": "12:00",
            "questions": [
                {
                    "id": "breath",
                    "nb": "Er du mer andpusten enn vanlig?",
                    "en": "Are you more short of breath than usual?",
                    "options": [
                        {"id": "no", "nb": "Nei", "en": "No", "score": 0},
                        {"id": "a-little", "nb": "Litt", "en": "A little", "score": 1},
                        {"id": "a-lot", "nb": "Mye", "en": "A lot", "score": 3},
                    ],
                },
                {
                    "id": "swelling",
                    "nb": "Er bena mer hovne enn vanlig?",
                    "en": "Are your legs more swollen than usual?",
                    "options": [
                        {"id": "no", "nb": "Nei", "en": "No", "score": 0},
                        {"id": "yes", "nb": "Ja", "en": "Yes", "score": 2},
                    ],
                },
            ],
            "yellow_from": 2,
            "red_from": 4,
        }
    ],
}


def plan_body(**overrides: Any) -> dict[str, Any]:
    body = copy.deepcopy(BODY)
    body.update(overrides)
    return body


def plan(version: int = 1, **overrides: Any) -> SelfManagementPlan:
    content = PlanContent.model_validate(plan_body(**overrides))
    return SelfManagementPlan(
        **content.model_dump(), version=version, issued_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    )


def wire(version: int = 1, **overrides: Any) -> bytes:
    return plan(version, **overrides).to_json()
