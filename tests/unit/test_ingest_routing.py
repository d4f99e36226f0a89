"""Ingest routes a message by its topic's channel through `parse_topic` and one handler table: each channel it
subscribes to has a judge, anything else is a dead letter that says why (no database needed to decide)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from ingest_service import worker as worker_mod
from ingest_service.worker import _JUDGES, Delivery, IngestWorker
from vitals import Reason
from vitals.topics import (
    INGEST_QUESTIONNAIRES_SUBSCRIPTION,
    INGEST_SHARED_SUBSCRIPTION,
    STATUS_WILDCARD,
    gateway_topic,
)

GATEWAY = "gw-routing-01"


def _delivery(topic: str, payload: bytes = b"{}") -> Delivery:
    return Delivery(mid=1, qos=1, topic=topic, payload=payload, received_at=datetime.now(UTC), generation=0)


def _judged(topic: str, payload: bytes = b"{}") -> Any:
    # No registry is reached on these paths: a stand-in worker is enough.
    return IngestWorker._judge(SimpleNamespace(), _delivery(topic, payload))  # type: ignore[arg-type]


def test_every_channel_ingest_subscribes_to_has_a_judge_and_no_other() -> None:
    subscribed = {
        s.rsplit("/", 1)[-1] for s in (INGEST_SHARED_SUBSCRIPTION, INGEST_QUESTIONNAIRES_SUBSCRIPTION, STATUS_WILDCARD)
    }
    assert set(_JUDGES) == subscribed == {"readings", "questionnaires", "status"}


@pytest.mark.parametrize("channel", ["plan", "receipts"])
def test_a_channel_that_goes_to_the_gateway_is_a_dead_letter(channel: Any) -> None:
    judged = _judged(gateway_topic(GATEWAY, channel))
    assert not judged.rows and not judged.responses and judged.status is None
    [letter] = judged.dead
    assert (letter.reason, letter.gateway_id) == (Reason.BAD_TOPIC.value, GATEWAY)
    assert f"{channel} messages go to the gateway" in letter.detail


@pytest.mark.parametrize("topic", ["varde/v1/gw/GW-UPPER/readings", "varde/v2/gw/gw-routing-01/readings", "other"])
def test_a_topic_that_is_not_a_gateway_s_is_a_dead_letter_without_a_gateway(topic: str) -> None:
    [letter] = _judged(topic).dead
    assert (letter.reason, letter.gateway_id) == (Reason.BAD_TOPIC.value, None)


def test_a_status_is_judged_by_the_status_judge() -> None:
    payload = json.dumps({"state": "online", "agent_version": "1.4.0", "devices": []}).encode()
    judged = _judged(gateway_topic(GATEWAY, "status"), payload)
    assert judged.channel == "status" and judged.dead == []
    assert judged.status is not None and judged.status[0] == GATEWAY


def test_a_readings_message_reaches_the_readings_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def judge(topic: str, *_: Any, **__: Any) -> Any:
        seen.append(topic)
        return SimpleNamespace(rows=[], dead=[], sent_at=None)

    monkeypatch.setattr(worker_mod, "judge", judge)
    topic = gateway_topic(GATEWAY, "readings")
    judged = IngestWorker._judge(SimpleNamespace(_registry=SimpleNamespace(lookup=None)), _delivery(topic))  # type: ignore[arg-type]
    assert seen == [topic] and judged.channel == "readings"
