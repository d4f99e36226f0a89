"""A storm of refused publishes (PUBACK 0x10 or a failure code, thousands in a row) keeps the publisher alive with
capped, jittered retry delays, on an injected clock: no sleeps, no broker."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from edge_fixtures import make_config
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.agent import Agent
from edge_agent.publisher import REFUSED, UNROUTED, Publisher, _InFlight

STORM = 10_000


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("code", "schedule"), [(0x10, UNROUTED), (0x87, REFUSED)])
def test_ten_thousand_refusals_in_a_row_give_capped_jittered_retries(
    tmp_path: Path, code: int, schedule: object
) -> None:
    agent = Agent(make_config(tmp_path, 1), radio_factory=None)
    clock = _Clock()
    try:
        publisher = Publisher(
            gateway_id=agent.publisher.gateway_id,
            username="gw",
            broker=agent.config.broker,
            settings=agent.config.publisher,
            outbox=agent.outbox,
            plans=agent.plans,
            status=agent.status,
            clock=clock,
            rng=random.Random(11),
        )
        reason = ReasonCode(PacketTypes.PUBACK, identifier=code)
        delays = []
        for mid in range(1, STORM + 1):
            publisher._inflight[mid] = _InFlight(mid, mid, 1)
            publisher._on_publish(publisher._client, None, mid, reason, None)
            retry = publisher._retries.pop()
            delays.append(retry.due - clock.now)
            clock.now += 0.25
        assert publisher.stats.envelopes_refused == STORM
        assert isinstance(schedule, type(REFUSED))
        cap = schedule.max_s * (1 + schedule.jitter)
        assert all(0 < d <= cap for d in delays)
        tail = delays[1_000:]
        assert min(tail) >= schedule.max_s * (1 - schedule.jitter)
        assert len({round(d, 6) for d in tail}) > len(tail) // 2, "the capped delays are not jittered"
        # The first acknowledgement after the storm ends it: the next refusal starts from the first delay again.
        publisher._inflight[STORM + 1] = _InFlight(0, 0, 1)
        publisher._on_publish(publisher._client, None, STORM + 1, ReasonCode(PacketTypes.PUBACK, identifier=0), None)
        publisher._inflight[STORM + 2] = _InFlight(0, 0, 1)
        publisher._on_publish(publisher._client, None, STORM + 2, reason, None)
        assert publisher._retries[-1].due - clock.now <= schedule.first_s * (1 + schedule.jitter)
    finally:
        agent.outbox.close()
        agent.plans.close()
