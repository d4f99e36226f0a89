from __future__ import annotations

import pytest

from vitals import INGEST_SHARED_SUBSCRIPTION, parse_topic, plan_topic, readings_topic, status_topic


def test_topics_follow_the_wire_contract() -> None:
    assert readings_topic("gw-0001") == "varde/v1/gw/gw-0001/readings"
    assert status_topic("gw-0001") == "varde/v1/gw/gw-0001/status"
    assert plan_topic("gw-0001") == "varde/v1/gw/gw-0001/plan"
    assert INGEST_SHARED_SUBSCRIPTION == "$share/ingest/varde/v1/gw/+/readings"
    assert parse_topic("varde/v1/gw/gw-0001/readings") == ("gw-0001", "readings")


@pytest.mark.parametrize(
    "topic",
    [
        "varde/v1/gw/+/readings",
        "varde/v1/gw/gw-0001/other",
        "varde/v2/gw/gw-0001/readings",
        "gw-0001/readings",
        "varde/v1/gw/GW-1/readings",
        "varde/v1/gw/gw-1/readings/extra",
    ],
)
def test_non_contract_topics_are_refused(topic: str) -> None:
    with pytest.raises(ValueError, match=r"topic|gateway id"):
        parse_topic(topic)


def test_wildcards_cannot_be_gateway_ids() -> None:
    with pytest.raises(ValueError):
        readings_topic("gw-#")
