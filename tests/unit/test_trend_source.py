"""Which source answers a trend query, and the whole UTC hours the hourly aggregate may answer for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from store.trends import HOURLY_AGGREGATE_SQL, READINGS_SQL, choose_source, sql_for, whole_hours_inside


@pytest.mark.parametrize(
    ("has_aggregate", "whole_hours", "expected"),
    [
        (True, True, "hourly_aggregate"),
        (True, False, "readings"),
        (False, True, "readings"),
        (False, False, "readings"),
    ],
)
def test_aggregate_is_used_only_where_it_exists_and_the_zone_is_in_whole_hours(
    has_aggregate: bool, whole_hours: bool, expected: str
) -> None:
    assert choose_source(has_aggregate, whole_hours) == expected


def test_each_source_has_its_own_sql() -> None:
    assert sql_for("readings") == READINGS_SQL and "readings_hourly" not in READINGS_SQL
    assert sql_for("hourly_aggregate") == HOURLY_AGGREGATE_SQL and "FROM readings_hourly" in HOURLY_AGGREGATE_SQL


def test_whole_hours_inside_a_range_are_rounded_inwards_in_utc() -> None:
    start = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    assert whole_hours_inside(start, start + timedelta(hours=3)) == (
        datetime(2026, 3, 1, 11, tzinfo=UTC),
        datetime(2026, 3, 1, 13, tzinfo=UTC),
    )
    on_the_hour = datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert whole_hours_inside(on_the_hour, on_the_hour + timedelta(hours=2)) == (
        on_the_hour,
        on_the_hour + timedelta(hours=2),
    )


def test_a_range_inside_one_hour_has_no_whole_hours() -> None:
    start = datetime(2026, 3, 1, 10, 5, tzinfo=UTC)
    inner_start, inner_end = whole_hours_inside(start, start + timedelta(minutes=30))
    assert inner_start == inner_end


def test_whole_hours_are_utc_hours_even_when_the_range_is_given_in_a_half_hour_zone() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    start = datetime(2026, 3, 1, 10, 0, tzinfo=india)  # 04:30 UTC
    inner_start, inner_end = whole_hours_inside(start, start + timedelta(hours=2))
    assert inner_start == datetime(2026, 3, 1, 5, tzinfo=UTC)
    assert inner_end == datetime(2026, 3, 1, 6, tzinfo=UTC)
