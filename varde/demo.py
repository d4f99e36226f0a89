"""`varde demo`: the local stack with two care teams and 25 simulated patients measuring themselves at home.

Each patient has a gateway (its own broker login) running a real edge `Agent`, and a home of virtual BLE devices
(`device_simulators.virtual_home`): the patient's scenario decides what each device measures; the devices hold and
advertise their records with the bytes real ones send; the Agent's own device handlers connect over the simulated
link, decode and hand readings to the outbox and the publisher, as a gateway does with real devices. The last
`backlog_days` are in the devices' memory when the demo starts (so trends, charts and alarms are there when the
dashboard opens), then measurements follow in real time, plus a spot check now and then so the dashboard moves while
someone watches. The demo's patients, gateways and the date its scenarios are anchored to are kept in
`.varde/demo.json` (owner-only): a second run reuses them, and as reading ids are stable, re-delivered readings are
stored once.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import psycopg

from store.settings import Settings
from varde import net
from varde.demo_extras import (
    LoopbackReceiver,
    activate_plan_due_now,
    activate_plans,
    configure_receivers,
    retire_receivers,
)

TIMEZONE = "Europe/Oslo"
ENROLMENT_REASON = "Hjemmeoppfølging etter utskrivning"
"""The episode reason the nurse reads; the scenario each demo patient plays is in the terminal roster only."""
TEAMS = ("Demo: Hjerte og sirkulasjon", "Demo: Lunge og diabetes")
NURSE = "demo.sykepleier"
PHYSICIAN = "demo.lege"
STATE_VERSION = 1
FIRST_NAMES = (
    "Kari", "Ola", "Ingrid", "Per", "Solveig", "Nils", "Astrid", "Knut", "Randi", "Arne", "Berit", "Odd",
    "Liv", "Svein", "Turid", "Bjørn", "Gunnhild", "Terje", "Marit", "Leif", "Sigrid", "Rolf", "Anne", "Jan", "Eli",
)  # fmt: skip
LAST_NAMES = (
    "Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen", "Jensen",
    "Karlsen", "Johnsen", "Pettersen", "Eriksen", "Berg", "Haugen", "Hagen", "Johannessen", "Andreassen", "Jacobsen",
    "Dahl", "Jørgensen", "Halvorsen", "Lund", "Moen",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RosterEntry:
    scenario: str
    team: int
    onset: int | None = None
    """Event day relative to the day the demo was first started (0 = that day, −3 = three days before)."""
    imperial: bool = False
    """A scale in pounds and a thermometer in °F (bought abroad): the gateway converts what they send."""


ROSTER: tuple[RosterEntry, ...] = (
    # Onset four days back: the weight gain is confirmed by the fourth morning's weighing (rules_engine.trends,
    # the lower of two weighings in a row), so the alarm is in the queue at any hour of the first run.
    RosterEntry("heart_failure_decompensation", 0, -4),
    RosterEntry("heart_failure_decompensation", 0, -1),
    RosterEntry("stable_heart_failure", 0),
    RosterEntry("stable_heart_failure", 0, imperial=True),
    RosterEntry("stable_heart_failure", 0),
    RosterEntry("missed_measurements", 0, -1),
    RosterEntry("gateway_offline", 0, -2),
    RosterEntry("sensor_glitches", 0),
    RosterEntry("hypertensive_crisis", 0, -1),
    RosterEntry("stable_hypertension", 0),
    RosterEntry("stable_hypertension", 0),
    RosterEntry("device_clock_wrong", 0, -5),
    RosterEntry("stable_general", 0, imperial=True),
    RosterEntry("copd_exacerbation", 1, -3),
    RosterEntry("copd_exacerbation", 1, 0),
    RosterEntry("stable_copd", 1),
    RosterEntry("stable_copd", 1),
    RosterEntry("stable_copd", 1),
    RosterEntry("hypoglycaemia", 1, -2),
    RosterEntry("hyperglycaemia", 1, -1),
    RosterEntry("stable_diabetes", 1),
    RosterEntry("stable_diabetes", 1),
    RosterEntry("stable_diabetes", 1),
    RosterEntry("stable_general", 1),
    RosterEntry("stable_general", 1),
)

SPOT_CHECK_DEVICE = {
    "general": "pulse_oximeter",
    "heart_failure": "pulse_oximeter",
    "copd": "pulse_oximeter",
    "diabetes": "blood_pressure_monitor",
    "hypertension": "blood_pressure_monitor",
}
"""Not the glucose meter: it numbers its records in the order measured, and spot checks at random moments would
shift the numbers of later scheduled records between runs (their reading ids must stay stable)."""
OFFLINE_HOURS = 24 * 365.0
"""The demo's offline home stays offline while the demo runs (its readings wait in the gateway)."""
AWAY_DAYS = 365
"""The demo's missed-measurement patient went away the day before the demo first started and is still away: the
gateway is online, nothing is measured, and the weighing due just after the demo starts is raised as missed."""
QUIET_RESTART_S = 6 * 3600.0
"""Devices in a home advertise a few times a day: the scanner watchdog should not restart scanning every 2 min."""


class DemoError(RuntimeError):
    pass


def say(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


# --- demo data ----------------------------------------------------------------------------------------------------


def _state_path(home: Path) -> Path:
    return home / "demo.json"


def _write_state(home: Path, state: dict[str, Any]) -> None:
    import os

    path = _state_path(home)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh, indent=2)
    os.replace(tmp, path)


def _read_state(home: Path) -> dict[str, Any] | None:
    path = _state_path(home)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and doc.get("version") == STATE_VERSION else None


def _state_usable(settings: Settings, state: dict[str, Any]) -> bool:
    """Every patient and enabled gateway of the saved demo still exists (the database may have been reset)."""
    from store import gateways

    gateway_ids = [p["gateway_id"] for p in state.get("patients", [])]
    if len(gateway_ids) != len(ROSTER):
        return False
    with psycopg.connect(settings.require_database_url()) as conn:
        return gateways.count_serving(conn, gateway_ids) == len(ROSTER)


def _forget(settings: Settings, state: dict[str, Any]) -> None:
    """Remove an earlier demo's patients (their messages, questionnaire answers, proxies, readings, repeat requests,
    worklist assignments, alarms with their record documents, and gateways); deactivate where that is refused (for
    example by a reservation's append-only history)."""
    from store import erasure, gateways, patients
    from varde.admin import AdminError, delete_gateway_logins
    from varde.broker import BrokerAdminError

    patient_ids = [UUID(p["patient_id"]) for p in state.get("patients", [])]
    gateway_ids = [p["gateway_id"] for p in state.get("patients", [])]
    if not patient_ids:
        return
    with psycopg.connect(settings.require_database_url()) as conn:
        try:
            with conn.transaction():
                erasure.erase_patients(conn, patient_ids)
        except psycopg.Error as exc:
            say(f"could not delete the earlier demo patients ({type(exc).__name__}); deactivating them instead")
            with conn.transaction():
                gateways.disable_of_patients(conn, patient_ids)
                patients.deactivate(conn, patient_ids)
    try:
        delete_gateway_logins(settings, gateway_ids)
    except (AdminError, BrokerAdminError) as exc:
        say(f"could not remove the earlier demo's broker logins: {exc}")


def _create(settings: Settings, today: date, backlog_days: int) -> dict[str, Any]:
    from device_simulators.scenarios import SCENARIOS
    from varde.admin import add_gateways, add_patient, add_team, enrol_patient

    # The devices deliver `backlog_days` of history: the patients have been followed since then, so their episodes,
    # the alarm burden's patient-weeks and the record agree with the readings the nurse sees.
    followed_since = datetime.combine(today - timedelta(days=backlog_days), day_time(0), ZoneInfo(TIMEZONE))

    for team in TEAMS:
        add_team(settings, team)
    patients: list[dict[str, Any]] = []
    for index, entry in enumerate(ROSTER):
        spec = SCENARIOS[entry.scenario]
        name = f"{FIRST_NAMES[index % len(FIRST_NAMES)]} {LAST_NAMES[(index * 7) % len(LAST_NAMES)]}"
        patient_id = add_patient(settings, name, TEAMS[entry.team], spec.protocol, TIMEZONE)
        enrol_patient(settings, patient_id, ENROLMENT_REASON, [spec.protocol], followed_since=followed_since)
        patients.append(
            {
                "patient_id": str(patient_id),
                "name": name,
                "team": TEAMS[entry.team],
                "scenario": entry.scenario,
                "protocol": spec.protocol,
                "seed": 7000 + index,
                "onset": entry.onset,
            }
        )
        say(f"patient {index + 1:2d}/{len(ROSTER)}: {name} ({spec.protocol}, scenario {entry.scenario})")
    creds = add_gateways(settings, [UUID(p["patient_id"]) for p in patients])
    for patient, cred in zip(patients, creds, strict=True):
        patient.update({"gateway_id": cred.gateway_id, "password": cred.password})
    return {"version": STATE_VERSION, "first_day": today.isoformat(), "patients": patients}


def ensure_demo_data(settings: Settings, home: Path, *, backlog_days: int, fresh: bool = False) -> dict[str, Any]:
    """The demo's teams, patients and gateways: reused from `.varde/demo.json` when still valid, else created."""
    today = datetime.now(ZoneInfo(TIMEZONE)).date()
    state = _read_state(home)
    if state is not None and not fresh and _state_usable(settings, state):
        say(f"reusing the demo patients first created on {state['first_day']}")
        return state
    if state is not None:
        say("removing the earlier demo patients")
        _forget(settings, state)
    state = _create(settings, today, backlog_days)
    _write_state(home, state)
    return state


def reset_logins(settings: Settings) -> dict[str, str]:
    """A nurse and a physician in both demo teams, with freshly generated passwords."""
    from varde.admin import add_user

    logins = {NURSE: secrets.token_urlsafe(9), PHYSICIAN: secrets.token_urlsafe(9)}
    add_user(settings, NURSE, "nurse", list(TEAMS), logins[NURSE], "Demo sykepleier")
    add_user(settings, PHYSICIAN, "physician", list(TEAMS), logins[PHYSICIAN], "Demo lege")
    return logins


PATIENT_LOGIN = "pasient"
RELATIVE_LOGIN = "parorende"
# Synthetic identity numbers for the demo's patient app logins (not valid Norwegian numbers: month 70).
_DEMO_PATIENT_NID = "01700000001"
_DEMO_RELATIVE_NID = "01700000002"
_DEMO_PROXY_RIGHTS = ("read_measurements", "read_plan", "write_messages")
_DEMO_PROXY_LASTS = timedelta(days=30)


def reset_citizen_logins(settings: Settings, state: dict[str, Any]) -> dict[str, str]:
    """Local logins of the patient app (offline demo, no national sign-in): the first demo patient, and a relative
    holding a proxy (measurements, plan, messages) for 30 days; fresh passwords each run."""
    from clinician_api.passwords import hash_password
    from store import citizens, patients, proxies

    logins = {PATIENT_LOGIN: secrets.token_urlsafe(9), RELATIVE_LOGIN: secrets.token_urlsafe(9)}
    first = state["patients"][0]
    patient_id = UUID(first["patient_id"])
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn, conn.transaction():
        patients.move_national_id(conn, _DEMO_PATIENT_NID, patient_id)
        as_patient = citizens.upsert_password_login(
            conn, _DEMO_PATIENT_NID, first["name"], PATIENT_LOGIN, hash_password(logins[PATIENT_LOGIN])
        )
        relative = citizens.upsert_password_login(
            conn, _DEMO_RELATIVE_NID, "Demo pårørende", RELATIVE_LOGIN, hash_password(logins[RELATIVE_LOGIN])
        )
        proxies.revoke_held_by(conn, relative)
        proxies.insert(
            conn,
            patient_id,
            relative,
            relation="datter",
            rights=_DEMO_PROXY_RIGHTS,
            valid_until=datetime.now(UTC) + _DEMO_PROXY_LASTS,
            citizen_id=as_patient,
            user_id=None,
            basis=None,
        )
    return logins


# --- the homes ----------------------------------------------------------------------------------------------------


@dataclass
class DemoHome:
    patient: dict[str, Any]
    agent: Any
    home: Any
    stats: Any


def _span(state: dict[str, Any], backlog_days: int) -> tuple[datetime, int, int]:
    """Scenario start (local midnight, `backlog_days` before the first day), days to generate, index of that day."""
    first_day = date.fromisoformat(state["first_day"])
    start = datetime.combine(first_day - timedelta(days=backlog_days), day_time(0), ZoneInfo(TIMEZONE))
    today = datetime.now(ZoneInfo(TIMEZONE)).date()
    days = (today - start.date()).days + 2
    return start, days, backlog_days


def _spot_checks(model: Any, home: Any, device_type: str, every_s: float, phase_s: float, stats: Any) -> Any:
    """A source that takes an extra measurement now and then on one of the patient's devices."""
    from device_simulators.physiology import rng

    async def spot(_agent: Any) -> None:
        await asyncio.sleep(phase_s)
        for count in range(1_000_000):
            now = datetime.now(UTC).replace(microsecond=0)
            home.measure(model.act(now, device_type, "spot_check", rng(model.seed, "spot", now.isoformat())))
            stats.acts += 1
            await asyncio.sleep(every_s * (0.8 + 0.4 * ((count * 7919) % 100) / 100))

    return spot


def start_homes(
    runner: Any,
    settings: Settings,
    home: Path,
    state: dict[str, Any],
    *,
    backlog_days: int,
    spot_check_s: float,
    patient_page_port: int | None = None,
) -> list[DemoHome]:
    from device_simulators.home import FeedStats, GatewayLogin, edge_config
    from device_simulators.physiology import devices_for
    from device_simulators.scenarios import SCENARIOS
    from device_simulators.virtual_home import VirtualHome, home_source
    from edge_agent.agent import Agent
    from edge_agent.config import BleConfig, PatientScreenConfig

    start, days, first_index = _span(state, backlog_days)
    workdir = home / "demo" / "gateways"
    homes = []
    for index, patient in enumerate(state["patients"]):
        spec = SCENARIOS[patient["scenario"]]
        onset = None if patient["onset"] is None else first_index + int(patient["onset"])
        silent = patient["scenario"] == "gateway_offline"
        away = patient["scenario"] == "missed_measurements"
        if away:
            from device_simulators.scenarios import missed_measurements

            acts = missed_measurements(patient["seed"], start, days, onset_day=onset, gap_days=AWAY_DAYS)
        elif silent:
            # The home's internet went down on the onset day and is still down: the nurse sees the silence.
            from device_simulators.scenarios import gateway_offline

            acts = gateway_offline(patient["seed"], start, days, onset_day=onset, hours=OFFLINE_HOURS)
        else:
            acts = spec.acts(patient["seed"], start, days, onset)
        devices = VirtualHome(
            patient["seed"], devices_for(spec.protocol), timezone=TIMEZONE, imperial=ROSTER[index].imperial
        )
        login = GatewayLogin(patient["gateway_id"], patient["password"], settings.mqtt_host, settings.mqtt_port)
        config = edge_config(
            login,
            workdir,
            devices.configs(),
            patient_timezone=TIMEZONE,
            ble=BleConfig(quiet_restart_s=QUIET_RESTART_S),
            # The first patient's gateway shows its local page (as a tablet in that home would); the others
            # have none, since every page on one machine would need a port of its own.
            patient_screen=PatientScreenConfig(port=patient_page_port) if index == 0 and patient_page_port else None,
        )
        agent = Agent(config, radio_factory=devices.radio)
        stats = FeedStats()
        sources = [home_source(devices, acts, stats=stats)]
        if spot_check_s > 0 and not (silent or away):
            device_type = SPOT_CHECK_DEVICE[spec.protocol]
            model = spec.model(patient["seed"], start, days, onset)
            phase = spot_check_s * index / len(state["patients"])
            sources.append(_spot_checks(model, devices, device_type, spot_check_s, phase, stats))
        runner.add(agent, sources)
        homes.append(DemoHome(patient, agent, devices, stats))
    return homes


def _wait_for_backlog(homes: list[DemoHome], timeout_s: float) -> None:
    """Until every gateway has read its devices' backlog and the cloud has acknowledged it; progress on stderr."""
    from device_simulators.virtual_home import readings_read

    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        read = sum(readings_read(h.agent) for h in homes)
        held = sum(h.home.held() for h in homes)
        waiting = sum(h.agent.outbox.depth for h in homes)
        loading = sum(1 for h in homes if h.stats.acts == 0 and h.stats.pending)
        line = (
            f"backlog: {read} readings read from the devices over BLE, {held} records still in the devices, "
            f"{waiting} readings in gateway outboxes"
        )
        if line != last:
            say(line)
            last = line
        if loading == 0 and held == 0 and waiting == 0 and read:
            return
        time.sleep(1.0)
    say(f"backlog not fully delivered after {timeout_s:.0f} s; the gateways keep trying")


def _alarm_summary(settings: Settings, state: dict[str, Any]) -> dict[str, list[str]]:
    from store import alarms

    ids = [UUID(p["patient_id"]) for p in state["patients"]]
    with psycopg.connect(settings.require_database_url()) as conn:
        rows = alarms.open_rules(conn, ids)
    by_patient: dict[str, list[str]] = {}
    for row in rows:
        by_patient.setdefault(str(row.patient_id), []).append(row.rule)
    return by_patient


# --- the command ------------------------------------------------------------------------------------------------


def run_demo(
    home: Path,
    *,
    backlog_days: int = 14,
    spot_check_minutes: float = 5.0,
    fresh: bool = False,
    keep_stack: bool = False,
    exit_after_s: float | None = None,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the demo until Ctrl-C (or `exit_after_s`); returns what it set up. `on_ready` is called with the
    summary once everything is up and before the wait, while the gateways and loopback receivers still run."""
    from device_simulators.home import AgentRunner
    from varde import stack

    say("starting the local stack (PostgreSQL, Mosquitto, ingest, rules, API)")
    try:
        # The rules service waits for the homes' backlog (below): a demo stopped yesterday, started again today,
        # would otherwise judge the deadlines since then before the readings measured meanwhile have arrived.
        stack_state = stack.up(home, services=True, hold=("rules",))
    except stack.StackError as exc:
        raise DemoError(str(exc)) from None
    settings = Settings()
    runner = AgentRunner()
    stop = _install_sigterm()
    pid_file = _write_pid(home)
    receiver = LoopbackReceiver().start()
    try:
        state = ensure_demo_data(settings, home, backlog_days=backlog_days, fresh=fresh)
        logins = reset_logins(settings)
        configure_receivers(settings, TEAMS, NURSE, receiver)
        say(f"record system and on-call receiver on loopback: {receiver.base}")
        citizen_logins = reset_citizen_logins(settings, state)
        # COPD patients' plans (SpO2 scale 2) before their readings arrive, so NEWS2 judges the backlog on the
        # scale their clinician set; the others after the backlog (see below).
        copd = [p for p in state["patients"] if p["protocol"] == "copd"]
        try:
            activate_plans(str(stack_state.get("api_url")), PHYSICIAN, logins[PHYSICIAN], copd)
        except httpx.HTTPError as exc:
            say(f"could not activate the COPD demo plans: {exc}")
        runner.start()
        say(f"starting {len(state['patients'])} gateways, each reading its patient's virtual devices")
        patient_page_port = net.free_port()
        homes = start_homes(
            runner,
            settings,
            home,
            state,
            backlog_days=backlog_days,
            spot_check_s=spot_check_minutes * 60,
            patient_page_port=patient_page_port,
        )
        _wait_for_backlog(homes, timeout_s=180)
        # After the backlog: the plans' schedules are judged against readings that have arrived, so only what was
        # really not measured counts as missed (and never a deadline before the plan's activation).
        api_url = str(stack_state.get("api_url"))
        away = [p for p in state["patients"] if p["scenario"] == "missed_measurements"]
        try:
            others = [p for p in state["patients"] if p not in away]
            activated = activate_plans(api_url, PHYSICIAN, logins[PHYSICIAN], others)
            say(f"self-management plans activated: {activated} (the others were active already)")
            for patient in away:
                due = activate_plan_due_now(api_url, PHYSICIAN, logins[PHYSICIAN], patient, TIMEZONE)
                say(f"{patient['name']} is away from home: the plan's weighing is due at {due}, then raised as missed")
        except httpx.HTTPError as exc:
            say(f"could not activate the demo plans: {exc}")
        stack.start_service(home, "rules")
        alarms = _alarm_summary(settings, state)
        summary = {
            "dashboard": stack_state.get("api_url"),
            "patient_page": {"url": f"http://127.0.0.1:{patient_page_port}/", "name": state["patients"][0]["name"]},
            "logins": logins,
            "patient_app": {"url": f"{stack_state.get('api_url')}/min/", "logins": citizen_logins},
            "patients": [
                {
                    **{k: p[k] for k in ("name", "team", "scenario", "gateway_id", "patient_id")},
                    "alarms": alarms.get(p["patient_id"], []),
                }
                for p in state["patients"]
            ],
        }
        _print_summary(summary)
        if on_ready is not None:
            on_ready(summary)
        deadline = None if exit_after_s is None else time.monotonic() + exit_after_s
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            stop.wait(1.0)
        return summary
    except KeyboardInterrupt:
        say("stopping")
        return {}
    finally:
        say("stopping the gateways")
        runner.stop()
        receiver.stop()
        try:
            retire_receivers(settings)
        except psycopg.Error as exc:
            say(f"could not retire the demo's record system: {type(exc).__name__}")
        pid_file.unlink(missing_ok=True)
        if not keep_stack:
            stack.down(home)


_SHOWN = ("name", "team", "scenario", "gateway_id", "patient_id")


def _pid_path(home: Path) -> Path:
    return home / "demo.pid"


def _write_pid(home: Path) -> Path:
    import os

    path = _pid_path(home)
    path.write_text(f"{os.getpid()}\n")
    return path


def stop_demo(home: Path, timeout_s: float = 120.0) -> str:
    """End a demo running from another terminal or in the background (`make demo &`, where Ctrl-C cannot reach
    it): SIGTERM to the pid in `.varde/demo.pid`, then wait until it has stopped the gateways and the stack."""
    import os

    path = _pid_path(home)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        raise DemoError(f"no demo is running (no {path})") from None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return f"the demo (pid {pid}) had already ended"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return f"demo (pid {pid}) stopped"
        time.sleep(0.5)
    raise DemoError(f"the demo (pid {pid}) did not stop within {timeout_s:.0f} s")


def _install_sigterm() -> Any:
    """SIGTERM (`varde demo stop`) stops the demo as Ctrl-C does, also while it is still setting up or waiting
    for the backlog: the event ends the wait, the KeyboardInterrupt whatever the main thread is blocked in."""
    import threading

    stop = threading.Event()

    def on_sigterm(*_: Any) -> None:
        stop.set()
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_sigterm)
    return stop


def _print_summary(summary: dict[str, Any]) -> None:
    lines = ["", f"Dashboard: {summary['dashboard']}/", ""]
    for username, password in summary["logins"].items():
        role = "nurse" if username == NURSE else "physician"
        lines.append(f"  {role:<10} {username:<18} password: {password}")
    page = summary.get("patient_page")
    if page:
        lines += ["", f"Patient page of {page['name']}'s gateway (what the patient sees at home): {page['url']}"]
    app = summary.get("patient_app")
    if app:
        name = summary["patients"][0]["name"] if summary.get("patients") else "the first patient"
        lines += ["", f"Min oppfølging, the patient app (local demo sign-in, works offline): {app['url']}"]
        lines.append(f"  {'patient':<10} {PATIENT_LOGIN:<18} password: {app['logins'][PATIENT_LOGIN]}   ({name})")
        lines.append(
            f"  {'relative':<10} {RELATIVE_LOGIN:<18} password: {app['logins'][RELATIVE_LOGIN]}   (proxy for {name})"
        )
    lines += ["", f"  {'patient':<22} {'scenario':<30} open alarms"]
    for p in summary["patients"]:
        lines.append(f"  {p['name']:<22} {p['scenario']:<30} {', '.join(p['alarms']) or '-'}")
    lines += [
        "",
        "Gateways keep measuring in real time. Press Ctrl-C to stop everything, or run `.venv/bin/varde demo stop`",
        "from another terminal (also for a demo started in the background).",
        "",
    ]
    print("\n".join(lines), flush=True)
