"""What makes the demo show the whole product beyond the alarm queue: an active self-management plan for every demo
patient (so the patient's page, the missed-measurement rule and the nurse judge by the same plan), a loopback record
system (so the record delivery page has entries), an on-call receiver the teams' escalations notify, and the demo
nurse as the teams' lead (so the access log screen is there).

The loopback receivers are the standard library's HTTP server in a thread of the demo process, on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg

from store import escalation_targets, journal
from store.settings import Settings

ORGANISATION = ("Demo kommune", "921234567")
ONCALL_LABEL = "Vakthavende sykepleier (demo)"
DEMO_ENDPOINT = "demo-ehr"
# The first scheduled session of each device type → the kind a plan schedules for it.
_KIND_OF_DEVICE = {
    "weight_scale": "body_weight",
    "blood_pressure_monitor": "bp_systolic",
    "pulse_oximeter": "spo2",
    "thermometer": "body_temperature",
    "glucose_meter": "glucose",
}
_WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _say(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


class LoopbackReceiver:
    """A FHIR record system that accepts every Bundle (201/200) and an on-call webhook that prints each notice."""

    def __init__(self) -> None:
        self.documents = 0
        self.notices: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0") or 0))
                if self.path.startswith("/oncall"):
                    text = str(json.loads(body or b"{}").get("text", ""))
                    receiver.notices.append(text)
                    _say(f"on-call notice received: {text}")
                    self.send_response(204)
                    self.end_headers()
                    return
                receiver.documents += 1
                answer = json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": []}).encode()
                self.send_response(201 if self.path.endswith("/Bundle") else 200)
                self.send_header("content-type", "application/fhir+json")
                self.send_header("location", f"{self.path}/{secrets.token_hex(8)}")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="demo-receiver", daemon=True)

    def start(self) -> LoopbackReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def configure_receivers(settings: Settings, teams: Iterable[str], nurse: str, receiver: LoopbackReceiver) -> None:
    """Point the demo teams' record integration and escalation at the loopback receiver (idempotent per run)."""
    from clinician_api.journal.admin import add_endpoint, add_organisation, add_subscription, link_team
    from varde.admin import add_escalation_target, set_team_lead

    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        add_organisation(conn, *ORGANISATION)
        for team in teams:
            link_team(conn, team, ORGANISATION[1])
        endpoint = add_endpoint(
            conn, ORGANISATION[1], DEMO_ENDPOINT, f"{receiver.base}/fhir", backoff_base_seconds=2.0, max_attempts=5
        )
        journal.drop_subscriptions(conn, [endpoint])
        add_subscription(conn, ORGANISATION[1], endpoint, batch_size=50)
        escalation_targets.retire_labelled(conn, ONCALL_LABEL)
    for team in teams:
        add_escalation_target(settings, team, ONCALL_LABEL, "webhook", f"{receiver.base}/oncall")
        set_team_lead(settings, nurse, team)


def retire_receivers(settings: Settings) -> None:
    """When the demo stops its loopback receivers go with it: stop sharing with the demo record system and drop
    the demo's undelivered entries for it (nothing else could ever receive them), so a stack kept running
    (`--keep-stack`) has no journal work aimed at a closed port. Delivered entries stay on the record page."""
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn, conn.transaction():
        endpoints = journal.endpoint_ids(conn, ORGANISATION[1], DEMO_ENDPOINT)
        journal.drop_subscriptions(conn, endpoints)
        journal.drop_undelivered(conn, endpoints)
        escalation_targets.retire_labelled(conn, ONCALL_LABEL)


def plan_for(protocol: str, weight_deadline: str | None = None) -> dict[str, Any]:
    """A plan built from the protocol: its scheduled measurements (deadline two hours after the usual time; the
    weight's `weight_deadline` every day when given) and its limits as the plan's zones, with general advice and a
    contact."""
    from device_simulators.physiology import SCHEDULES
    from rules_engine.profiles import PROTOCOL_KINDS, Protocol, effective_limits
    from vitals import KINDS

    schedule: dict[str, dict[str, Any]] = {}
    for session in SCHEDULES[protocol]:  # type: ignore[index]
        kind = _KIND_OF_DEVICE.get(session.device_type)
        if kind is None or kind in schedule:
            continue
        schedule[kind] = {
            "kind": kind,
            "deadline": f"{min(session.hour + 2, 23):02d}:{session.minute:02d}",
            "weekdays": [_WEEKDAYS[d] for d in sorted(session.weekdays)],
            "reminder_minutes_before": 60,
        }
        if kind == "body_weight" and weight_deadline is not None:
            schedule[kind].update(deadline=weight_deadline, weekdays=list(_WEEKDAYS))
    limits = effective_limits(protocol)
    zones = []
    for kind in PROTOCOL_KINDS[Protocol(protocol)]:
        values = limits[kind].as_tuple()
        present = {
            n: v for n, v in zip(("red_low", "yellow_low", "yellow_high", "red_high"), values, strict=True) if v == v
        }
        if present:
            zones.append({"kind": kind.value, "unit": KINDS[kind].unit, **present})
    return {
        "protocol": protocol,
        # The demo's COPD patients have confirmed hypercapnic respiratory failure with an 88–92 % target, the one
        # case RCP's NEWS2 reserves SpO2 scale 2 for; a clinician sets it in the plan (default scale 1).
        **({"spo2_scale": 2} if protocol == "copd" else {}),
        "timezone": "Europe/Oslo",
        "schedule": list(schedule.values()),
        "zones": zones,
        "advice": [
            {"zone": "green", "nb": "Fortsett som før.", "en": "Carry on as before."},
            {"zone": "yellow", "nb": "Mål på nytt om en time. Ring sykepleier hvis det ikke går over.",
             "en": "Measure again in an hour. Call the nurse if it does not settle."},
            {"zone": "red", "nb": "Ring sykepleier nå. Ved brystsmerter eller pustebesvær: ring 113.",
             "en": "Call the nurse now. With chest pain or breathlessness: call 113."},
        ],
        "contacts": [{"name": "Oppfølgingstjenesten", "role": "sykepleier", "phone": "+47 21 00 00 00"}],
    }  # fmt: skip


@contextmanager
def _clinician(api_url: str, username: str, password: str) -> Iterator[httpx.Client]:
    """An API client signed in as the clinician."""
    with httpx.Client(base_url=api_url.rstrip("/"), timeout=30.0) as client:
        token = client.post("/api/v1/auth/token", data={"username": username, "password": password})
        token.raise_for_status()
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


def activate_plans(api_url: str, username: str, password: str, patients: Iterable[dict[str, Any]]) -> int:
    """Give every demo patient without an active plan the protocol's plan, through the API a clinician uses (so it
    is audited and published retained to the gateway). Returns how many were activated."""
    with _clinician(api_url, username, password) as client:
        activated = 0
        for patient in patients:
            path = f"/api/v1/patients/{patient['patient_id']}/plans"
            if any(p["status"] == "active" for p in client.get(path).raise_for_status().json()["items"]):
                continue
            draft = client.post(path, json=plan_for(patient["protocol"])).raise_for_status().json()
            client.post(f"{path}/{draft['version']}/activate").raise_for_status()
            activated += 1
    return activated


MISSED_AFTER = timedelta(seconds=45)
"""The demo's missed weighing: due at least this long after its plan is activated, at the next whole minute."""


def due_soon(now: datetime, timezone: str) -> str:
    """The local HH:MM of the first whole minute at least `MISSED_AFTER` after `now`."""
    local = (now + MISSED_AFTER).astimezone(ZoneInfo(timezone))
    due = (local - timedelta(microseconds=1)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return f"{due:%H:%M}"


def activate_plan_due_now(
    api_url: str, username: str, password: str, patient: dict[str, Any], timezone: str, now: datetime | None = None
) -> str:
    """A new version of the patient's plan (each run) with the daily weighing due within two minutes, local time:
    the patient who is away measures nothing, so the rules raise the missed weighing while someone watches (a
    deadline before a plan's activation is never judged). Returns the deadline, HH:MM."""
    deadline = due_soon(now or datetime.now(UTC), timezone)
    path = f"/api/v1/patients/{patient['patient_id']}/plans"
    with _clinician(api_url, username, password) as client:
        draft = client.post(path, json=plan_for(patient["protocol"], weight_deadline=deadline)).raise_for_status()
        client.post(f"{path}/{draft.json()['version']}/activate").raise_for_status()
    return deadline
