"""The zone of a patient's latest value, judged like the rules: strictly beyond a limit breaches it."""

from __future__ import annotations

import pytest

from clinician_api.routes.latest import judge
from clinician_api.schemas import KindProfile, LimitValue
from vitals import Kind


def _limits(
    red_low: float | None, yellow_low: float | None, yellow_high: float | None, red_high: float | None
) -> KindProfile:
    def value(v: float | None) -> LimitValue:
        return LimitValue(value=v, source="protocol" if v is not None else "none")

    return KindProfile(
        kind=Kind.SPO2,
        unit="%",
        red_low=value(red_low),
        yellow_low=value(yellow_low),
        yellow_high=value(yellow_high),
        red_high=value(red_high),
    )


@pytest.mark.parametrize(
    ("value", "zone", "breached"),
    [
        (83.9, "red", "red_low"),
        (84.0, "yellow", "yellow_low"),
        (87.9, "yellow", "yellow_low"),
        (88.0, "green", None),
        (97.0, "green", None),
    ],
)
def test_copd_spo2_zones_at_and_around_the_limits(value: float, zone: str, breached: str | None) -> None:
    assert judge(value, _limits(84, 88, None, None)) == (zone, breached)


def test_high_side_and_red_over_yellow() -> None:
    limits = _limits(41, 50, 110, 130)
    assert judge(130.0, limits) == ("yellow", "yellow_high")
    assert judge(131.0, limits) == ("red", "red_high")
    assert judge(110.0, limits) == ("green", None)


def test_kind_without_limits_is_always_green() -> None:
    assert judge(250.0, _limits(None, None, None, None)) == ("green", None)
