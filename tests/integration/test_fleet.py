"""The fleet load generator against the live stack: its envelopes are real (stored once each by ingest) and the
broker binds each connection to its own gateway's login."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from device_simulators.fleet import EnvelopeCutter, Fleet, FleetError, FleetGateway
from store.settings import Settings
from tests.stack_plugin import wait_for
from varde.admin import provision_fleet
from vitals import parse_envelope

pytestmark = pytest.mark.integration


def test_fleet_readings_are_acked_and_stored_exactly_once_by_ingest(
    settings: Settings, db: psycopg.Connection[Any]
) -> None:
    created = provision_fleet(settings, 3, team="Fleet test")
    gateways = [FleetGateway(c.gateway_id, c.password, c.mqtt_host, c.mqtt_port) for c in created]
    with Fleet(gateways, batch=20, window=4) as fleet:
        report = fleet.run(1000, 2.0)
    assert report.connections == 3
    assert report.puback_failures == {} and report.unacked == 0
    assert report.readings_acked == report.readings_sent >= 1800
    assert report.no_matching_subscribers == 0  # ingest is subscribed

    def stored() -> int:
        row = db.execute(
            "SELECT count(*) FROM readings WHERE gateway_id = ANY(%s)", ([g.gateway_id for g in gateways],)
        ).fetchone()
        return int(row[0]) if row else 0

    wait_for(lambda: stored() >= report.readings_acked, 60, what="every fleet reading stored")
    assert stored() == report.readings_acked
    dead = db.execute(
        "SELECT count(*) FROM rejected_messages WHERE gateway_id = ANY(%s)", ([g.gateway_id for g in gateways],)
    ).fetchone()
    assert dead is not None and dead[0] == 0


def test_fleet_refuses_to_run_with_a_login_the_broker_does_not_know(settings: Settings) -> None:
    (creds,) = provision_fleet(settings, 1, team="Fleet test")
    wrong = FleetGateway(creds.gateway_id, "not-the-password", creds.mqtt_host, creds.mqtt_port)
    with pytest.raises(FleetError, match="refused"):
        Fleet([wrong], connect_timeout_s=10).connect()


def test_envelope_cutter_makes_valid_envelopes_with_unique_ids() -> None:
    cutter = EnvelopeCutter("gw-cut-0001", 7, 30, "0badcafe")
    seen: set[str] = set()
    for second in ("2026-03-01T10:00:00Z", "2026-03-01T10:00:01Z"):
        payload = cutter.cut(second.encode())
        parsed = parse_envelope(payload, "gw-cut-0001", now=datetime(2026, 3, 1, 10, 1, tzinfo=UTC))
        assert parsed.rejected == [] and len(parsed.readings) == 30
        assert all(r.measured_at.isoformat().startswith(second[:19]) for r in parsed.readings)
        seen |= {str(r.id) for r in parsed.readings}
    assert len(seen) == 60
