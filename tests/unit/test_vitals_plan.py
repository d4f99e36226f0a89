"""The self-management plan wire model: strict, self-consistent, and round-trips through JSON unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from vitals import PlanContent, SelfManagementPlan
from vitals.plan import KindZones, Questionnaire


def plan_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "protocol": "heart_failure",
        "schedule": [{"kind": "body_weight", "deadline": "09:00", "weekdays": ["mon", "thu"]}],
        "zones": [{"kind": "body_weight", "unit": "kg", "yellow_high": 92.0, "red_high": 95.0}],
        "advice": [
            {"zone": "green", "nb": "Fortsett.", "en": "Carry on."},
            {"zone": "yellow", "nb": "Ring i morgen.", "en": "Call tomorrow."},
            {"zone": "red", "nb": "Ring nå.", "en": "Call now."},
        ],
        "contacts": [{"name": "Hjertesvikt-poliklinikken", "role": "sykepleier", "phone": "+47 23 07 00 00"}],
    }
    body.update(overrides)
    return body


def test_plan_round_trips_through_the_wire_unchanged() -> None:
    plan = SelfManagementPlan(
        **PlanContent.model_validate(plan_body()).model_dump(),
        version=3,
        issued_at=datetime(2026, 5, 1, 8, 0, tzinfo=UTC),
    )
    wire = plan.to_json()
    assert json.loads(wire)["schema"] == "varde.plan/1"
    assert SelfManagementPlan.model_validate_json(wire) == plan


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"zones": [{"kind": "body_weight", "unit": "lb", "red_high": 200.0}]}, "must be in 'kg'"),
        ({"zones": [{"kind": "spo2", "unit": "%", "red_low": 92.0, "yellow_low": 90.0}]}, "below red_low"),
        ({"zones": [{"kind": "spo2", "unit": "%", "red_low": 20.0}]}, "plausible range"),
        ({"zones": [{"kind": "spo2", "unit": "%"}]}, "set no limit"),
        ({"zones": [{"kind": "spo2", "unit": "%", "red_low": "85"}]}, "valid number"),
        ({"schedule": [{"kind": "spo2", "deadline": "25:00", "weekdays": ["mon"]}]}, "pattern"),
        ({"schedule": [{"kind": "spo2", "deadline": "08:00", "weekdays": ["mon", "mon"]}]}, "listed twice"),
        ({"advice": [{"zone": "green", "nb": "a", "en": "b"}] * 3}, "missing \\['yellow', 'red'\\]"),
        ({"advice": [*plan_body()["advice"], {"zone": "red", "nb": "a", "en": "b"}]}, "one entry per zone"),
        ({"contacts": [{"name": "A", "role": "lege", "phone": "ring meg"}]}, "pattern"),
        ({"patient_id": "1234"}, "Extra inputs"),
        ({"kind": "glucose"}, "Extra inputs"),
    ],
)
def test_invalid_plans_are_refused_with_a_reason(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PlanContent.model_validate(plan_body(**change))


def test_questionnaire_zones_come_from_the_total_score() -> None:
    questionnaire = Questionnaire.model_validate(
        {
            "id": "daily",
            "title_nb": "Daglig",
            "title_en": "Daily",
            "questions": [
                {
                    "id": f"q{i}",
                    "nb": "?",
                    "en": "?",
                    "options": [
                        {"id": "no", "nb": "Nei", "en": "No", "score": 0},
                        {"id": "yes", "nb": "Ja", "en": "Yes", "score": 2},
                    ],
                }
                for i in range(3)
            ],
            "yellow_from": 2,
            "red_from": 4,
        }
    )
    assert questionnaire.max_score == 6
    assert [questionnaire.zone_of(t) for t in (0, 2, 3, 4, 6)] == ["green", "yellow", "yellow", "red", "red"]
    with pytest.raises(ValidationError, match="never be reached"):
        Questionnaire.model_validate({**questionnaire.model_dump(mode="json"), "red_from": 7})


limits = st.floats(min_value=50, max_value=100, allow_nan=False)


@given(st.lists(limits, min_size=1, max_size=4, unique=True))
def test_ordered_spo2_zones_are_accepted_and_survive_json(values: list[float]) -> None:
    names = ("red_low", "yellow_low", "yellow_high", "red_high")
    zones = KindZones.model_validate({"kind": "spo2", "unit": "%", **dict(zip(names, sorted(values), strict=False))})
    assert KindZones.model_validate_json(zones.model_dump_json()) == zones
