"""Back-off delays follow the class of the failure, grow, cap and are jittered within bounds."""

from __future__ import annotations

import random

import pytest

from edge_agent.backoff import BROKER, Schedule, delay_for, schedule_for
from edge_agent.link import (
    AdapterUnavailableError,
    BondingRequiredError,
    ConnectionDroppedError,
    DeviceNotFoundError,
    LinkError,
    OutOfConnectionSlotsError,
)


def test_errors_needing_a_person_wait_longer_than_transient_ones() -> None:
    def first(exc: Exception) -> float:
        return schedule_for(exc).first_s

    assert first(ConnectionDroppedError("x")) < first(DeviceNotFoundError("x"))
    assert first(DeviceNotFoundError("x")) <= first(OutOfConnectionSlotsError("x"))
    assert first(OutOfConnectionSlotsError("x")) < first(AdapterUnavailableError("x"))
    assert first(AdapterUnavailableError("x")) < first(BondingRequiredError("x"))


def test_unknown_errors_get_the_default_schedule() -> None:
    assert schedule_for(LinkError("x")) == schedule_for(RuntimeError("x"))


@pytest.mark.parametrize("error", [ConnectionDroppedError("x"), AdapterUnavailableError("x"), RuntimeError("x")])
def test_delay_grows_then_caps_within_jitter(error: Exception) -> None:
    schedule = schedule_for(error)
    rng = random.Random(7)
    delays = [delay_for(error, attempt, rng) for attempt in range(20)]
    for attempt, delay in enumerate(delays):
        base = min(schedule.max_s, schedule.first_s * schedule.factor**attempt)
        assert base * (1 - schedule.jitter) <= delay <= base * (1 + schedule.jitter)
    assert max(delays) <= schedule.max_s * (1 + schedule.jitter)
    assert delays[-1] >= schedule.max_s * (1 - schedule.jitter)


def test_jitter_spreads_a_fleet() -> None:
    rng = random.Random(1)
    delays = {round(BROKER.delay(3, rng), 3) for _ in range(50)}
    assert len(delays) > 40


def test_schedule_without_jitter_is_exact() -> None:
    schedule = Schedule(first_s=1.0, max_s=10.0, factor=3.0, jitter=0.0)
    assert [schedule.delay(a) for a in range(4)] == [1.0, 3.0, 9.0, 10.0]


@pytest.mark.parametrize("schedule", [BROKER, Schedule(first_s=5.0, max_s=300.0), Schedule(0.5, 60.0, factor=1.5)])
def test_any_attempt_number_gives_a_capped_delay_not_an_overflow(schedule: Schedule) -> None:
    rng = random.Random(3)
    for attempt in (1_023, 1_024, 1_100, 10_000, 10**9):
        delay = schedule.delay(attempt, rng)
        assert schedule.max_s * (1 - schedule.jitter) <= delay <= schedule.max_s * (1 + schedule.jitter)
