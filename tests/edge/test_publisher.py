"""The publisher against a private Mosquitto: readings arrive, survive broker outages, status and plan flow."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from edge_fixtures import GW, Broker, Collector, make_config, make_readings, wait_until
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_agent.agent import Agent
from tests.patient.plans import wire
from vitals import GatewayStatus, plan_topic

pytestmark = pytest.mark.integration


@pytest.fixture
def agent(tmp_path: Path, broker: Broker) -> Iterator[Agent]:
    a = Agent(make_config(tmp_path, broker.port), radio_factory=None)
    a.publisher.start()
    try:
        yield a
    finally:
        a.publisher.stop()
        a.outbox.close()
        a.plans.close()


def test_accepted_readings_arrive_and_leave_the_outbox(agent: Agent, collector: Collector) -> None:
    readings = make_readings(250)
    for i in range(0, 250, 10):
        agent.accept(readings[i : i + 10])
    assert wait_until(lambda: collector.unique == 250, 15)
    assert set(collector.ids) == {str(r.id) for r in readings}
    assert wait_until(lambda: agent.outbox.depth == 0, 5)
    assert collector.bad == []


def test_single_reading_goes_out_promptly_without_backlog(agent: Agent, collector: Collector) -> None:
    assert wait_until(lambda: agent.publisher.connected, 10)
    started = time.monotonic()
    agent.accept(make_readings(1))
    assert wait_until(lambda: collector.unique == 1, 5)
    assert time.monotonic() - started < 0.5


def test_backlog_is_batched_into_few_envelopes(tmp_path: Path, broker: Broker, collector: Collector) -> None:
    config = make_config(tmp_path, broker.port, batch_max_readings=500, window=4)
    a = Agent(config, radio_factory=None)
    try:
        a.accept(make_readings(5000))
        a.publisher.start()
        most_in_flight = 0

        def done() -> bool:
            nonlocal most_in_flight
            most_in_flight = max(most_in_flight, a.publisher.inflight)
            return collector.unique == 5000

        assert wait_until(done, 20, interval_s=0.001)
        assert 1 <= most_in_flight <= 4
        assert collector.envelopes <= 12
        assert a.publisher.stats.envelopes_published == collector.envelopes
    finally:
        a.publisher.stop()
        a.outbox.close()
        a.plans.close()


def _outage(agent: Agent, broker: Broker, collector: Collector, down_s: float) -> tuple[int, int]:
    """Feed readings before, during and after a broker outage; returns (accepted, duplicates seen)."""
    accepted: list[str] = []
    stop = threading.Event()

    def feed() -> None:
        n = 0
        while not stop.is_set():
            batch = make_readings(20, start=n)
            agent.accept(batch)
            accepted.extend(str(r.id) for r in batch)
            n += 20
            time.sleep(0.05)

    assert wait_until(lambda: agent.publisher.connected, 10)
    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        time.sleep(1.0)
        broker.stop()
        time.sleep(down_s)
        assert agent.outbox.depth > 0
        broker.start()
        time.sleep(1.0)
    finally:
        stop.set()
        feeder.join(5)
    assert wait_until(lambda: collector.unique == len(accepted), down_s + 30), (
        f"{collector.unique} of {len(accepted)} readings arrived"
    )
    assert set(collector.ids) == set(accepted)
    assert wait_until(lambda: agent.outbox.depth == 0, 10)
    return len(accepted), collector.duplicates


def test_no_reading_lost_when_broker_is_down_for_5_seconds(
    agent: Agent, broker: Broker, collector: Collector, record_property: pytest.RecordProperty
) -> None:
    accepted, duplicates = _outage(agent, broker, collector, 5.0)
    record_property("accepted", accepted)
    record_property("duplicates", duplicates)
    print(f"outage 5s: accepted={accepted} unique_arrived={collector.unique} duplicates={duplicates}")


@pytest.mark.slow
def test_no_reading_lost_when_broker_is_down_for_30_seconds(
    agent: Agent, broker: Broker, collector: Collector, record_property: pytest.RecordProperty
) -> None:
    accepted, duplicates = _outage(agent, broker, collector, 30.0)
    record_property("accepted", accepted)
    record_property("duplicates", duplicates)
    print(f"outage 30s: accepted={accepted} unique_arrived={collector.unique} duplicates={duplicates}")


def test_retained_online_status_carries_depth_version_and_devices(
    tmp_path: Path, broker: Broker, collector: Collector
) -> None:
    a = Agent(make_config(tmp_path, broker.port), radio_factory=None)
    try:
        a.accept(make_readings(3))
        a.note_device("a4:c1:38:00:00:02", battery_percent=64)
        a.publisher.start()
        assert wait_until(lambda: collector.last_status() is not None, 10)
        status = GatewayStatus.model_validate(collector.last_status())
        assert status.state == "online"
        assert status.agent_version
        assert status.outbox_depth is not None and status.outbox_depth <= 3
        assert status.outbox_full is False
        assert [(d.address, d.battery_percent) for d in status.devices] == [("A4:C1:38:00:00:02", 64)]
    finally:
        a.publisher.stop()
        a.outbox.close()
        a.plans.close()
    assert wait_until(lambda: (collector.last_status() or {}).get("state") == "offline", 5)


def test_full_outbox_is_reported_in_status(tmp_path: Path, broker: Broker, collector: Collector) -> None:
    config = make_config(tmp_path, broker.port).model_copy(deep=True)
    a = Agent(config, radio_factory=None)
    a.outbox.max_rows = 100
    try:
        result = a.accept(make_readings(150))
        assert result.refused == 50
        a.publisher.start()
        assert wait_until(lambda: (collector.last_status() or {}).get("outbox_full") is True, 10)
    finally:
        a.publisher.stop()
        a.outbox.close()
        a.plans.close()


def _publish_retained(port: int, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-cloud", protocol=MQTTProtocolVersion.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


def test_retained_plan_is_stored_and_updated_and_never_erased(agent: Agent, broker: Broker) -> None:
    plan_v1 = wire(1)
    _publish_retained(broker.port, plan_topic(GW), plan_v1)
    assert wait_until(lambda: agent.plans.latest() is not None, 10)
    stored = agent.plans.latest()
    assert stored is not None and stored.payload == plan_v1 and stored.topic == plan_topic(GW)

    plan_v2 = wire(2)
    _publish_retained(broker.port, plan_topic(GW), plan_v2)
    assert wait_until(lambda: (p := agent.plans.latest()) is not None and p.payload == plan_v2, 10)

    _publish_retained(broker.port, plan_topic(GW), b"")
    time.sleep(0.5)
    latest = agent.plans.latest()
    assert latest is not None and latest.payload == plan_v2


def test_retained_plan_arrives_on_connect(tmp_path: Path, broker: Broker) -> None:
    _publish_retained(broker.port, plan_topic(GW), wire(7))
    a = Agent(make_config(tmp_path, broker.port), radio_factory=None)
    try:
        a.publisher.start()
        assert wait_until(lambda: a.plans.latest() is not None, 10)
    finally:
        a.publisher.stop()
        a.outbox.close()
        a.plans.close()
    with_plan = Agent(make_config(tmp_path, broker.port), radio_factory=None)
    try:
        stored = with_plan.plans.latest()
        assert stored is not None and stored.payload == wire(7)
    finally:
        with_plan.publisher.stop()
        with_plan.outbox.close()
        with_plan.plans.close()


def test_readings_stay_in_outbox_while_nobody_subscribes(agent: Agent, broker: Broker) -> None:
    assert wait_until(lambda: agent.publisher.connected, 10)
    agent.accept(make_readings(20))
    assert wait_until(lambda: agent.publisher.stats.envelopes_refused >= 1, 10)
    assert agent.outbox.depth == 20
    collector = Collector(broker.port, client_id="late-collector")
    try:
        assert wait_until(lambda: collector.unique == 20, 20)
        assert wait_until(lambda: agent.outbox.depth == 0, 5)
    finally:
        collector.close()


def test_questionnaire_answered_no_subscribers_is_resent_on_its_own_topic_once_a_reading_gets_through(
    agent: Agent, broker: Broker, collector: Collector
) -> None:
    """A PUBACK 0x10 keeps the message for a retry; a later success releases every waiting message at once. The
    release once turned waiting questionnaire messages into readings-lane retries, so the answer was never resent
    (seen as a flaky end-to-end test after a broker restart)."""
    from vitals import questionnaires_topic

    assert wait_until(lambda: agent.publisher.connected, 10)
    agent.questionnaires.put_raw([("q-0001", b'{"answer": 1}', time.time())])
    assert wait_until(lambda: agent.publisher.stats.envelopes_refused >= 1, 10), "nobody subscribes: 0x10"
    received: list[bytes] = []
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="q-listener", protocol=MQTTProtocolVersion.MQTTv5)
    subscribed = threading.Event()
    listener.on_subscribe = lambda *_a: subscribed.set()
    listener.on_message = lambda _c, _u, msg: received.append(bytes(msg.payload))
    listener.connect("127.0.0.1", broker.port)
    listener.subscribe(questionnaires_topic(GW), qos=1)
    listener.loop_start()
    try:
        assert subscribed.wait(10)
        agent.accept(make_readings(1))
        assert wait_until(lambda: collector.unique == 1, 10)
        # released by the reading's success, well before its own back-off (5 s, then 10 s, …) would resend it
        assert wait_until(lambda: received, 4), "the questionnaire message was not resent on its topic"
        assert b'"answer": 1' in received[0]
        assert wait_until(lambda: agent.questionnaires.depth == 0, 5)
    finally:
        listener.loop_stop()
        listener.disconnect()
