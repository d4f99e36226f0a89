"""The patient page's "measure again": shown from a `varde.repeat/1` message, gone once the patient has measured that
kind again (no broker needed) or the request is past due; kept across a restart of the agent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.edge.edge_fixtures import free_port
from tests.patient.gateway import RunningAgent, gateway_config, reading, wait_for
from vitals import Kind, RepeatRequest


def _ask(kind: Kind, measured_at: datetime, due_in: timedelta = timedelta(minutes=30)) -> bytes:
    now = datetime.now(UTC)
    return RepeatRequest(
        id=uuid.uuid4(), kind=kind, measured_at=measured_at, requested_at=now, due_at=now + due_in
    ).to_json()


def test_measure_again_is_shown_until_the_kind_is_measured_again_and_survives_a_restart(tmp_path: Path) -> None:
    config = gateway_config(tmp_path, "127.0.0.1", free_port())
    first = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    with RunningAgent(config) as gw:
        gw.agent.screen.receive_receipt(_ask(Kind.PULSE_RATE, first))
        gw.agent.screen.receive_receipt(_ask(Kind.BP_SYSTOLIC, first))
        gw.agent.screen.receive_receipt(_ask(Kind.SPO2, first, due_in=timedelta(minutes=-1)))  # past due
        gw.agent.screen.receive_receipt(b'{"schema": "varde.repeat/1", "kind": "spo2"}')  # refused, logged
        asks = wait_for(lambda: gw.state()["repeat"], what="the requests on the page")
        assert [(a["kind"], a["nb"]) for a in asks] == [
            ("bp_systolic", "Mål blodtrykket en gang til. Sitt stille i fem minutter først."),
            ("pulse_rate", "Mål pulsen en gang til. Sitt stille i fem minutter først."),
        ]
        assert asks[1]["en"] == "Please measure your pulse once more. Sit still for five minutes first."
        gw.agent.accept([reading(Kind.PULSE_RATE, 80, measured_at=first - timedelta(minutes=5))])  # an older one
        assert [a["kind"] for a in gw.state()["repeat"]] == ["bp_systolic", "pulse_rate"]
        gw.agent.accept([reading(Kind.PULSE_RATE, 80, measured_at=first + timedelta(minutes=1))])
        assert [a["kind"] for a in gw.state()["repeat"]] == ["bp_systolic"]
    with RunningAgent(config) as gw:
        assert [a["kind"] for a in gw.state()["repeat"]] == ["bp_systolic"]
        # Measured before the request arrived (the newest measurement is of that kind and later): not asked.
        gw.agent.accept([reading(Kind.GLUCOSE, 5.1, measured_at=first + timedelta(minutes=1))])
        gw.agent.screen.receive_receipt(_ask(Kind.GLUCOSE, first))
        assert [a["kind"] for a in gw.state()["repeat"]] == ["bp_systolic"]
