"""Scenario acceptance: simulated patients measured at home → a real edge Agent → Mosquitto → ingest → rules.

Each test plays days of a scenario as a backlog (timestamps in the past, uploaded at once or day by day, the way a
gateway delivers what it stored) and checks what a nurse would see: the alarms a clinician expects, no alarm for a
patient doing well, refused values in the dead-letter table, every reading stored exactly once.

Most tests hand the acts to the Agent on the fast path (`home.readings_of`, what the edge makes of a decoded
record), so day-by-day playback stays quick; `test_scenario_read_from_virtual_devices_…` takes the GATT path the
demo takes (virtual devices → the edge's device handlers), which `tests/devices/test_virtual_home.py` shows gives
the same readings.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from device_simulators.home import (
    CLOCK_CORRECTED,
    DEVICE_MODELS,
    AgentRunner,
    GatewayLogin,
    edge_config,
    faulty_gateway_envelope,
    home_devices,
    readings_of,
)
from device_simulators.physiology import DeviceType, MeasurementAct, devices_for, plausible
from device_simulators.scenarios import SCENARIOS, default_onset
from device_simulators.virtual_home import VirtualHome, home_source
from edge_agent.agent import Agent
from edge_agent.config import BleConfig
from tests.stack_plugin import Gateway, Tenant, login, publish, wait_for
from vitals import KINDS, DeviceRef, PlanContent, Reading, readings_topic

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Europe/Oslo")
DAYS = 14
SEED = 20261121


def _start() -> datetime:
    """Fifteen days ago, so the fourteen simulated days are all in the past."""
    return datetime.now(UTC) - timedelta(days=DAYS + 1)


@pytest.fixture
def runner() -> Iterator[AgentRunner]:
    with AgentRunner() as r:
        yield r


class Home:
    """One patient's gateway (a real edge Agent) and devices."""

    def __init__(self, runner: AgentRunner, gateway: Gateway, workdir: Path, protocol: str, port: int | None = None):
        self.gateway = gateway
        self.devices: dict[DeviceType, DeviceRef] = home_devices(SEED, devices_for(protocol))  # type: ignore[arg-type]
        login_ = GatewayLogin(gateway.gateway_id, gateway.password, gateway.host, port or gateway.port)
        self.agent = runner.add(Agent(edge_config(login_, workdir, self.devices.values()), radio_factory=None))
        self.refused = 0

    def readings(self, acts: list[MeasurementAct]) -> list[Reading]:
        out: list[Reading] = []
        for act in acts:
            batch = readings_of(
                act,
                gateway_id=self.gateway.gateway_id,
                device=self.devices[act.device_type],
                patient_timezone="Europe/Oslo",
            )
            out.extend(batch.readings)
            self.refused += len(batch.refused)
        return out

    def deliver(self, acts: list[MeasurementAct]) -> list[Reading]:
        readings = self.readings(acts)
        result = self.agent.accept(readings)
        assert result.refused == 0
        return readings


def _stored(db: psycopg.Connection[Any], patient_id: Any) -> int:
    row = db.execute("SELECT count(*) FROM readings WHERE patient_id = %s", (patient_id,)).fetchone()
    return int(row[0]) if row else 0


def _wait_stored(db: psycopg.Connection[Any], patient_id: Any, expected: int, timeout: float = 30.0) -> None:
    wait_for(lambda: _stored(db, patient_id) >= expected, timeout, what=f"{expected} readings stored")
    assert _stored(db, patient_id) == expected


def _alarm_rules(db: psycopg.Connection[Any], patient_id: Any) -> dict[str, str]:
    rows = db.execute("SELECT rule, severity FROM alarms WHERE patient_id = %s", (patient_id,)).fetchall()
    return {r[0]: r[1] for r in rows}


def _by_day(acts: list[MeasurementAct]) -> list[tuple[date, list[MeasurementAct]]]:
    days: dict[date, list[MeasurementAct]] = {}
    for act in acts:
        days.setdefault(act.at.astimezone(ZONE).date(), []).append(act)
    return sorted(days.items())


def _play_day_by_day(home: Home, db: psycopg.Connection[Any], acts: list[MeasurementAct]) -> dict[str, int]:
    """Deliver one day at a time, waiting for each to be stored; rule → index of the day that first raised it."""
    first: dict[str, int] = {}
    total = 0
    for index, (_day, day_acts) in enumerate(_by_day(acts)):
        total += len(home.deliver(day_acts))
        _wait_stored(db, home.gateway.patient_id, total)
        for rule in _alarm_rules(db, home.gateway.patient_id):
            first.setdefault(rule, index)
    return first


def _api_alarms(api_url: str, tenant: Tenant) -> list[dict[str, Any]]:
    headers = login(api_url, tenant.nurse, tenant.nurse_password)
    response = httpx.get(f"{api_url}/api/v1/alarms", headers=headers, params={"lang": "en"})
    response.raise_for_status()
    return [a for a in response.json()["items"] if a["patient_id"] == str(tenant.patients[0])]


# --- a patient doing well ------------------------------------------------------------------------------------------


def _tenant(make_tenant: Any, db: psycopg.Connection[Any], protocol: str) -> Tenant:
    """A tenant of one patient; the simulated COPD patients live at 92–93 %, so their clinician has set NEWS2
    SpO2 scale 2 (target 88–92 %) in an active plan (written straight into the table: the rules read it there)."""
    from tests.integration.api.support import a_plan

    tenant: Tenant = make_tenant(protocol=protocol)
    if protocol == "copd":
        body = PlanContent.model_validate(a_plan(zones=[], spo2_scale=2))
        db.execute(
            "INSERT INTO self_management_plans (patient_id, version, body, status, activated_at) "
            "VALUES (%s, 1, %s, 'active', now())",
            (tenant.patients[0], body.model_dump_json()),
        )
    return tenant


@pytest.mark.parametrize("protocol", ["heart_failure", "copd", "diabetes", "hypertension", "general"])
def test_stable_patient_raises_no_alarm_over_fourteen_days(
    protocol: str, make_tenant: Any, runner: AgentRunner, db: psycopg.Connection[Any], tmp_path: Path, api_url: str
) -> None:
    tenant = _tenant(make_tenant, db, protocol)
    home = Home(runner, tenant.gateways[0], tmp_path, protocol)
    acts = SCENARIOS[f"stable_{protocol}"].generate(SEED, _start(), DAYS)
    first = _play_day_by_day(home, db, acts)
    assert first == {}
    assert _api_alarms(api_url, tenant) == []
    assert home.refused == 0


# --- alarm scenarios -----------------------------------------------------------------------------------------------


def test_heart_failure_decompensation_raises_weight_gain_alarm_on_day_three_or_four(
    make_tenant: Any, runner: AgentRunner, db: psycopg.Connection[Any], tmp_path: Path, api_url: str
) -> None:
    spec = SCENARIOS["heart_failure_decompensation"]
    tenant: Tenant = make_tenant(protocol=spec.protocol)
    home = Home(runner, tenant.gateways[0], tmp_path, spec.protocol)
    first = _play_day_by_day(home, db, spec.generate(SEED, _start(), DAYS))
    onset = default_onset(DAYS)
    # The ESC's "> 2 kg in 3 days", confirmed by the next weighing (one scale read in clothes is not a gain).
    assert first["trend.weight_gain"] - onset + 1 in (3, 4)
    assert min(first.values()) >= onset, f"an alarm before the decompensation began: {first}"
    assert set(first) <= spec.allowed_rules
    weight = [a for a in _api_alarms(api_url, tenant) if a["rule"] == "trend.weight_gain"]
    assert len(weight) == 1 and weight[0]["severity"] == "yellow"
    assert "kg" in weight[0]["explanation"]


@pytest.mark.parametrize("name", ["copd_exacerbation", "hypoglycaemia", "hyperglycaemia", "hypertensive_crisis"])
def test_alarm_scenario_raises_the_alarms_a_clinician_expects(
    name: str, make_tenant: Any, runner: AgentRunner, db: psycopg.Connection[Any], tmp_path: Path, api_url: str
) -> None:
    spec = SCENARIOS[name]
    tenant = _tenant(make_tenant, db, spec.protocol)
    home = Home(runner, tenant.gateways[0], tmp_path, spec.protocol)
    first = _play_day_by_day(home, db, spec.generate(SEED, _start(), DAYS))
    assert not spec.missing(set(first)) and set(first) <= spec.allowed_rules, first
    assert min(first.values()) >= default_onset(DAYS), f"an alarm before the event began: {first}"
    seen = {a["rule"] for a in _api_alarms(api_url, tenant)}
    assert not spec.missing(seen), seen


def test_alarm_severity_follows_the_plan_limits_when_a_whole_backlog_arrives_at_once(
    make_tenant: Any, runner: AgentRunner, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    for name, rule, red_below in (
        ("copd_exacerbation", "threshold.spo2.low", 84.0),
        ("hypoglycaemia", "threshold.glucose.low", 3.0),
    ):
        spec = SCENARIOS[name]
        tenant = _tenant(make_tenant, db, spec.protocol)
        home = Home(runner, tenant.gateways[0], tmp_path / name, spec.protocol)
        acts = spec.generate(SEED, _start(), DAYS)
        total = len(home.deliver(acts))
        _wait_stored(db, home.gateway.patient_id, total)
        lowest = min(v for a in acts for k, v in a.values if k == rule.split(".")[1])
        assert _alarm_rules(db, home.gateway.patient_id)[rule] == ("red" if lowest < red_below else "yellow")


def test_scenario_read_from_virtual_devices_by_the_edge_handlers_raises_the_alarms_a_clinician_expects(
    make_tenant: Any, runner: AgentRunner, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    # Glucose records fetched through the Record Access Control Point of a bonded meter, cuff and scale indicated.
    spec = SCENARIOS["hypoglycaemia"]
    tenant: Tenant = make_tenant(protocol=spec.protocol)
    gateway = tenant.gateways[0]
    acts = spec.generate(SEED, _start(), DAYS)
    home = VirtualHome(SEED, devices_for(spec.protocol))
    login_ = GatewayLogin(gateway.gateway_id, gateway.password, gateway.host, gateway.port)
    config = edge_config(login_, tmp_path, home.configs(), ble=BleConfig(quiet_restart_s=3600))
    runner.add(Agent(config, radio_factory=home.radio), [home_source(home, acts)])
    assert all(plausible(a) for a in acts)
    _wait_stored(db, gateway.patient_id, sum(len(a.values) for a in acts), timeout=60)
    assert home.held() == 0
    raised = set(_alarm_rules(db, gateway.patient_id))
    assert not spec.missing(raised) and raised <= spec.allowed_rules, raised
    models = db.execute(
        "SELECT DISTINCT device_type, device_model FROM readings WHERE patient_id = %s", (gateway.patient_id,)
    ).fetchall()
    assert dict(models) == {t: DEVICE_MODELS[t] for t in devices_for(spec.protocol)}
    assert all(c.model is None for c in config.devices), "the model came from the devices, not the configuration"


# --- what must not become an alarm ---------------------------------------------------------------------------------


def test_sensor_glitches_are_refused_at_the_edge_and_dead_lettered_from_a_faulty_gateway(
    make_tenant: Any, runner: AgentRunner, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    spec = SCENARIOS["sensor_glitches"]
    acts = spec.generate(SEED, _start(), DAYS)
    glitches = [a for a in acts if not plausible(a)]
    assert glitches

    # Through a real gateway: the edge refuses the values no body can have; their good siblings go on.
    tenant: Tenant = make_tenant(protocol=spec.protocol)
    home = Home(runner, tenant.gateways[0], tmp_path, spec.protocol)
    total = len(home.deliver(acts))
    _wait_stored(db, home.gateway.patient_id, total)
    assert home.refused > 0
    assert total == sum(len(a.values) for a in acts) - home.refused
    assert _alarm_rules(db, home.gateway.patient_id) == {}

    # Through a gateway whose firmware checks nothing: every glitch ends in the dead-letter table.
    faulty: Tenant = make_tenant(protocol=spec.protocol)
    gateway = faulty.gateways[0]
    devices = home_devices(SEED, devices_for(spec.protocol))
    for act in glitches:
        payload = faulty_gateway_envelope([act], gateway_id=gateway.gateway_id, devices=devices)
        assert publish(gateway, readings_topic(gateway.gateway_id), payload) < 0x80

    def dead() -> list[tuple[str, int]]:
        return db.execute(
            "SELECT reason, reading_count FROM rejected_messages WHERE gateway_id = %s", (gateway.gateway_id,)
        ).fetchall()

    with_nan = [a for a in glitches if any(math.isnan(v) for _, v in a.values)]
    without_nan = [a for a in glitches if a not in with_nan]
    # A NaN makes the whole message invalid JSON (one dead letter for it); otherwise each bad value is one.
    expected = len(with_nan) + sum(1 for a in without_nan for k, v in a.values if not KINDS[k].is_plausible(v))
    rows = wait_for(lambda: len(dead()) >= expected and dead(), what="dead letters")
    assert len(rows) == expected
    assert {reason for reason, _ in rows} == {"implausible_value", "bad_json"}
    good_siblings = sum(1 for a in without_nan for k, v in a.values if KINDS[k].is_plausible(v))
    _wait_stored(db, gateway.patient_id, good_siblings)
    assert _alarm_rules(db, gateway.patient_id) == {}


def test_missed_measurements_store_what_was_measured_and_raise_no_threshold_alarm(
    make_tenant: Any, runner: AgentRunner, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    spec = SCENARIOS["missed_measurements"]
    tenant: Tenant = make_tenant(protocol=spec.protocol)
    home = Home(runner, tenant.gateways[0], tmp_path, spec.protocol)
    acts = spec.generate(SEED, _start(), DAYS)
    first = _play_day_by_day(home, db, acts)
    assert first == {}
    days = db.execute(
        "SELECT count(DISTINCT (measured_at AT TIME ZONE 'Europe/Oslo')::date) FROM readings WHERE patient_id = %s",
        (tenant.patients[0],),
    ).fetchone()
    assert days is not None and days[0] == DAYS - 2


# --- the gateway's own troubles ------------------------------------------------------------------------------------


class _Uplink:
    """The home's internet connection: a loopback TCP relay to the broker that can be cut and restored."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(8)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            everything = [*self._sockets, *([self._listener] if self._listener else [])]
            self._sockets, self._listener = [], None
        for sock in everything:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                inside, _ = listener.accept()
            except OSError:
                return
            outside = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [inside, outside]
            for a, b in ((inside, outside), (outside, inside)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
            except OSError:
                break
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def test_gateway_offline_for_hours_uploads_its_backlog_and_every_reading_is_stored_once(
    make_tenant: Any, runner: AgentRunner, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    spec = SCENARIOS["gateway_offline"]
    tenant: Tenant = make_tenant(protocol=spec.protocol)
    gateway = tenant.gateways[0]
    uplink = _Uplink(gateway.port)
    uplink.restore()
    home = Home(runner, gateway, tmp_path, spec.protocol, port=uplink.port)
    acts = sorted(spec.generate(SEED, _start(), DAYS), key=lambda a: a.upload_after)
    delayed = [a for a in acts if a.upload_after - a.at > timedelta(minutes=1)]
    outage_start = min(a.at for a in delayed)
    before = [a for a in acts if a.upload_after < outage_start]
    during = [a for a in acts if a.at >= outage_start and a in delayed]
    after = [a for a in acts if a not in before and a not in during]
    assert before and during and after

    stored = len(home.deliver(before))
    _wait_stored(db, gateway.patient_id, stored)
    wait_for(lambda: home.agent.publisher.connected, what="the gateway online")

    uplink.cut()
    wait_for(lambda: not home.agent.publisher.connected, what="the gateway to notice it is offline")
    offline = len(home.deliver(during))
    assert home.agent.outbox.depth == offline
    assert _stored(db, gateway.patient_id) == stored

    uplink.restore()
    total = stored + offline + len(home.deliver(after))
    _wait_stored(db, gateway.patient_id, total, timeout=60)
    wait_for(lambda: home.agent.outbox.depth == 0, what="the outbox drained")

    # The devices are read again after the outage (records still in their memory): nothing is stored twice.
    home.deliver(acts)
    wait_for(lambda: home.agent.outbox.depth == 0, what="the re-sent records acknowledged")
    assert _stored(db, gateway.patient_id) == total
    uplink.cut()


def test_device_clock_wrong_by_decades_is_corrected_by_the_gateway_and_refused_when_trusted(
    make_tenant: Any, runner: AgentRunner, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    spec = SCENARIOS["device_clock_wrong"]
    acts = spec.generate(SEED, _start(), DAYS)
    wrong = [a for a in acts if a.device_time.year < 2010]
    assert wrong

    tenant: Tenant = make_tenant(protocol=spec.protocol)
    home = Home(runner, tenant.gateways[0], tmp_path, spec.protocol)
    readings = home.deliver(acts)
    _wait_stored(db, tenant.patients[0], len(readings))
    rows = db.execute(
        "SELECT measured_at, flags FROM readings WHERE patient_id = %s AND device_type = 'blood_pressure_monitor'",
        (tenant.patients[0],),
    ).fetchall()
    corrected = {r[0] for r in rows if CLOCK_CORRECTED in r[1]}
    assert corrected == {a.at for a in wrong}
    assert {r[0] for r in rows} == {a.at for a in acts if a.device_type == "blood_pressure_monitor"}
    assert _alarm_rules(db, tenant.patients[0]) == {}

    faulty: Tenant = make_tenant(protocol=spec.protocol)
    gateway = faulty.gateways[0]
    payload = faulty_gateway_envelope(wrong, gateway_id=gateway.gateway_id, devices=home.devices)
    assert publish(gateway, readings_topic(gateway.gateway_id), payload) < 0x80

    def too_old() -> int:
        row = db.execute(
            "SELECT count(*) FROM rejected_messages WHERE gateway_id = %s AND reason = 'too_old'", (gateway.gateway_id,)
        ).fetchone()
        return int(row[0]) if row else 0

    wait_for(lambda: too_old() == sum(len(a.values) for a in wrong), what="too-old dead letters")
    assert _stored(db, gateway.patient_id) == 0
