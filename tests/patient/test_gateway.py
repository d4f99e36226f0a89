"""The patient side of a running edge agent against a private Mosquitto: the plan arrives retained and is kept
only when good, readings are judged at once also with the broker down, questionnaire answers survive a restart and
an outage and are then published, and a nurse's receipt is shown, as is the notice that the team answered a message."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.edge.edge_fixtures import Broker
from tests.patient.gateway import RunningAgent, Subscriber, gateway_config, publish, reading, wait_for
from tests.patient.plans import wire
from vitals import (
    Kind,
    Receipt,
    parse_questionnaire_envelope,
    plan_topic,
    questionnaires_topic,
    receipts_topic,
    status_topic,
)

pytestmark = pytest.mark.integration
GW = "gw-test-0001"


def test_the_plan_arrives_retained_and_a_bad_one_never_replaces_it(tmp_path: Path, broker: Broker) -> None:
    cloud = Subscriber(broker.port, [status_topic(GW)])
    try:
        publish(broker.port, plan_topic(GW), wire(1), retain=True)
        config = gateway_config(tmp_path, "127.0.0.1", broker.port)
        with RunningAgent(config) as gw:
            wait_for(lambda: (gw.state()["plan"] or {}).get("version") == 1, what="plan version 1 on the page")
            wait_for(lambda: any(s.get("plan_version") == 1 for s in cloud.on(status_topic(GW))), what="status v1")
            tampered = json.loads(wire(2))
            tampered["zones"][0]["red_high"] = 140.0
            publish(broker.port, plan_topic(GW), json.dumps(tampered).encode(), retain=True)
            state = wait_for(lambda: (s := gw.state())["plan_problem"] and s, what="the refusal on the page")
            assert state["plan"]["version"] == 1 and "checksum mismatch" in state["plan_problem"]
            wait_for(
                lambda: any("checksum" in (s.get("plan_problem") or "") for s in cloud.on(status_topic(GW))),
                what="the refusal in the gateway status",
            )
        # After a restart the broker hands over the same bad retained plan: the stored good one stays in use.
        with RunningAgent(config) as gw:
            wait_for(lambda: gw.state()["plan_problem"], what="the retained bad plan judged again")
            assert gw.state()["plan"]["version"] == 1
            publish(broker.port, plan_topic(GW), wire(2), retain=True)
            wait_for(lambda: (gw.state()["plan"] or {}).get("version") == 2, what="plan version 2")
            assert gw.state()["plan_problem"] is None
    finally:
        cloud.close()


def test_a_red_reading_shows_the_plans_red_advice_within_a_second_with_the_broker_down(
    tmp_path: Path, broker: Broker
) -> None:
    publish(broker.port, plan_topic(GW), wire(1), retain=True)
    with RunningAgent(gateway_config(tmp_path, "127.0.0.1", broker.port)) as gw:
        wait_for(lambda: gw.state()["plan"], what="the plan")
        broker.stop()
        wait_for(lambda: not gw.state()["connected"], what="the gateway to notice the broker is gone")
        started = time.monotonic()
        gw.agent.accept([reading(Kind.BODY_WEIGHT, 86.4)])
        latest = wait_for(lambda: gw.state()["latest"], timeout=1.0, what="the reading on the page")
        assert time.monotonic() - started < 1.0
        assert latest["zone"] == "red"
        assert latest["advice"]["nb"] == "Vekten har økt mye. Ring hjertesviktpoliklinikken nå."
        assert [(p["kind"], p["value"], p["unit"], p["zone"]) for p in latest["parts"]] == [
            ("body_weight", "86.4", "kg", "red")
        ]
        state = gw.state()
        assert state["pending"]["readings"] == 1
        weight = next(i for i in state["schedule"] if i["key"] == "body_weight")
        assert weight["state"] == "done"


def test_a_questionnaire_answer_survives_a_restart_and_a_broker_outage(tmp_path: Path, broker: Broker) -> None:
    cloud = Subscriber(broker.port, [questionnaires_topic(GW)])
    publish(broker.port, plan_topic(GW), wire(1), retain=True)
    config = gateway_config(tmp_path, "127.0.0.1", broker.port)
    try:
        with RunningAgent(config) as gw:
            wait_for(lambda: gw.state()["plan"], what="the plan")
            broker.stop()
            status, saved = gw.answer("hf-symptoms", {"breath": "a-lot", "swelling": "yes"})
            assert status == 201, saved
            assert (saved["score"], saved["zone"], saved["plan_version"]) == (5, "red", 1)
            assert gw.state()["pending"]["questionnaires"] == 1
        with RunningAgent(config) as gw:
            state = gw.state()
            assert state["pending"]["questionnaires"] == 1
            last = state["questionnaires"][0]["last"]
            assert (last["score"], last["zone"]) == (5, "red")
            assert last["advice"]["en"] == "Call the nurse now."
            broker.start()
            wait_for(lambda: cloud.on(questionnaires_topic(GW)), timeout=30, what="the response at the cloud")
            wait_for(lambda: gw.state()["pending"]["questionnaires"] == 0, what="the queue to drain after PUBACK")
        raw = next(p for t, p in cloud.messages if t == questionnaires_topic(GW))
        envelope = parse_questionnaire_envelope(raw, GW)
        assert [str(r.id) for r in envelope.responses] == [saved["id"]]
        assert envelope.responses[0].answers[0].option == "a-lot"
    finally:
        cloud.close()


def test_a_nurses_receipt_is_shown_with_the_local_time(tmp_path: Path, broker: Broker) -> None:
    publish(broker.port, plan_topic(GW), wire(1), retain=True)
    with RunningAgent(gateway_config(tmp_path, "127.0.0.1", broker.port)) as gw:
        wait_for(lambda: gw.state()["plan"], what="the plan")
        oslo = ZoneInfo("Europe/Oslo")
        at = datetime.now(oslo).replace(hour=10, minute=42, second=0, microsecond=0).astimezone(UTC)
        receipt = Receipt(id=uuid.uuid4(), at=at, nb="Målingene dine er sett.", en="Your readings were seen.")
        publish(broker.port, receipts_topic(GW), receipt.to_json())
        shown = wait_for(lambda: gw.state()["receipt"], what="the receipt")
        assert shown["nb"] == "Målingene dine ble sett av sykepleier kl. 10:42"
        assert shown["en"] == "Your measurements were seen by the nurse at 10:42"
        publish(broker.port, receipts_topic(GW), b'{"schema": "varde.receipt/1"}')
        time.sleep(0.3)
        assert gw.state()["receipt"] == shown

        # The team answered a message in Min oppfølging: the page says so (never what), beside the readings receipt.
        answered = Receipt(id=uuid.uuid4(), event="message_answered", at=at, nb="Svar.", en="Answered.")
        publish(broker.port, receipts_topic(GW), answered.to_json())
        notice = wait_for(lambda: gw.state()["message"], what="the message notice")
        assert notice["nb"] == "Behandlingsteamet svarte på meldingen din kl. 10:42. Les svaret i Min oppfølging."
        assert notice["en"] == "The care team answered your message at 10:42. Read the answer in My follow-up."
        assert gw.state()["receipt"] == shown
    with RunningAgent(gateway_config(tmp_path, "127.0.0.1", broker.port)) as gw:
        assert (gw.state()["receipt"], gw.state()["message"]) == (shown, notice), "both kept across a restart"
