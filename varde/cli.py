"""The `varde` console script. Each sub-command imports what it needs only when it runs,
so a gateway with only `varde[edge]` installed never imports the cloud packages."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn
from uuid import UUID

import typer

from varde import net
from varde.gateway_cli import gateway_app
from vitals.vocabulary import PROTOCOLS

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Varde: digital home monitoring.")
stack_app = typer.Typer(no_args_is_help=True, help="The local stack: PostgreSQL, Mosquitto and the services.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
team_app = typer.Typer(no_args_is_help=True, help="Care teams.")
patient_app = typer.Typer(no_args_is_help=True, help="Patients.")
user_app = typer.Typer(no_args_is_help=True, help="Clinician and admin logins.")
broker_app = typer.Typer(no_args_is_help=True, help="The MQTT broker's service roles and logins.")
ingest_app = typer.Typer(no_args_is_help=True, help="The ingest worker.")
rules_app = typer.Typer(no_args_is_help=True, help="Scheduled rules (missed measurements, escalation).")
api_app = typer.Typer(no_args_is_help=True, help="The clinician API and dashboard.")
sim_app = typer.Typer(no_args_is_help=True, help="Simulated patients, scenarios and fleet load.")
journal_app = typer.Typer(no_args_is_help=True, help="Record integration: journaling to FHIR record systems.")
for sub, name in (
    (stack_app, "stack"),
    (db_app, "db"),
    (team_app, "team"),
    (patient_app, "patient"),
    (user_app, "user"),
    (gateway_app, "gateway"),
    (broker_app, "broker"),
    (ingest_app, "ingest"),
    (rules_app, "rules"),
    (api_app, "api"),
    (sim_app, "sim"),
    (journal_app, "journal"),
):
    app.add_typer(sub, name=name)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _emit(doc: dict[str, Any], as_json: bool, human: str) -> None:
    typer.echo(json.dumps(doc, default=str) if as_json else human)


def _home() -> Path:
    from store.settings import varde_home

    return varde_home()


def _settings() -> Any:
    from store.settings import get_settings

    return get_settings()


# --- stack ------------------------------------------------------------------------------------------------------


@stack_app.command("up")
def stack_up(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Return once everything runs.")] = False,
    services: Annotated[bool, typer.Option(help="Also run ingest, rules and the API.")] = True,
    ha: Annotated[
        bool, typer.Option("--ha", help="PostgreSQL as pg_auto_failover: monitor, primary, synchronous standby.")
    ] = False,
) -> None:
    """Start a private PostgreSQL and Mosquitto (and the services); write .varde/stack.json."""
    from varde import stack

    try:
        state = stack.up(_home(), services=services, ha=ha)
    except stack.StackError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(stack.status(_home()), indent=2))
    if detach:
        return
    typer.echo(f"Varde is running; API at {state.get('api_url')}. Press Ctrl-C to stop.", err=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        stack.down(_home())


@stack_app.command("status")
def stack_status() -> None:
    """Show what runs; exit status 1 when something is down."""
    from varde import stack

    report = stack.status(_home())
    typer.echo(json.dumps(report, indent=2))
    if not report["running"]:
        raise typer.Exit(1)


@stack_app.command("down")
def stack_down() -> None:
    """Stop what `varde stack up` started (data is kept)."""
    from varde import stack

    stack.down(_home())


@stack_app.command("replicas")
def stack_replicas(
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=16, help="API replicas to run.")] = 2,
) -> None:
    """Run API replicas behind HAProxy on this machine (needs `varde stack up`) until Ctrl-C."""
    import signal
    import threading

    from varde import scaleout, stack

    if not stack.load_state(stack.StackPaths(_home())).get("database_url"):
        _fail("the stack is not up: run `varde stack up -d` first")
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # both stop the replicas and the LB, not only this process
        signal.signal(sig, lambda *_: stopping.set())
    try:
        with scaleout.replicas(_home(), count) as pool:
            typer.echo(json.dumps({"lb_url": pool.url, "stats_url": f"http://127.0.0.1:{pool.stats_port}/stats"}))
            typer.echo(f"{count} API replicas behind HAProxy at {pool.url}. Press Ctrl-C to stop.", err=True)
            while not stopping.wait(1):
                pass
    except stack.StackError as exc:
        _fail(str(exc))


# --- db ---------------------------------------------------------------------------------------------------------


@db_app.command("migrate")
def db_migrate(as_json: JsonFlag = False) -> None:
    """Apply pending migrations (safe to re-run)."""
    import psycopg

    from store.migrate import migrate

    with psycopg.connect(_settings().require_database_url()) as conn:
        applied = migrate(conn)
    _emit({"applied": applied}, as_json, f"applied: {', '.join(applied)}" if applied else "database is up to date")


@db_app.command("retention")
def db_retention(
    now: Annotated[str, typer.Option(help="Apply as of this time (ISO 8601; default: the database's clock).")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Drop readings partitions, audit rows and dead letters past their retention (VARDE_RETENTION_*)."""
    from datetime import datetime

    from store.retention import RetentionError, run_retention

    try:
        report = run_retention(_settings(), datetime.fromisoformat(now) if now else None)
    except (RetentionError, ValueError) as exc:
        _fail(str(exc))
    doc = report.as_dict()
    _emit(
        doc,
        as_json,
        f"partitions dropped: {', '.join(report.partitions_dropped) or 'none'}; audit rows deleted: "
        f"{report.audit_rows_deleted}; dead letters deleted: {report.dead_letters_deleted}",
    )


@db_app.command("backup")
def db_backup(
    kind: Annotated[str, typer.Option("--type", help="full|diff|incr (incr without a full one before it: full).")] = (
        "incr"
    ),
    as_json: JsonFlag = False,
) -> None:
    """Back the database cluster up with pgBackRest and record it (its age is in /metrics)."""
    from varde import backup

    if kind not in ("full", "diff", "incr"):
        _fail(f"--type must be full, diff or incr, not {kind!r}")
    try:
        target = backup.resolve(_home(), _settings())
        result = backup.backup(target.repo, kind, target.database_url)  # type: ignore[arg-type]
    except backup.BackupError as exc:
        _fail(str(exc))
    _emit(result.as_dict(), as_json, f"{result.kind} backup {result.label} ({result.size_bytes} bytes)")


@db_app.command("restore")
def db_restore(
    to: Annotated[
        str, typer.Option("--to", help="Recover to this moment (ISO 8601 with offset, e.g. 2026-12-06T21:00:00+00:00).")
    ],
    target_dir: Annotated[
        Path | None, typer.Option("--target", help="Empty directory for the restored cluster.")
    ] = None,
    port: Annotated[int, typer.Option(help="Port of the restored instance (0: a free one).")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Restore the cluster as it was at TIME into a fresh instance (the running one is left alone) and start it."""
    from datetime import datetime

    from varde import backup, stack

    try:
        moment = datetime.fromisoformat(to)
    except ValueError:
        _fail(f"--to: {to!r} is not an ISO 8601 time")
    if moment.tzinfo is None:
        _fail("--to needs an offset (…+00:00 or …Z), so the moment is not ambiguous")
    try:
        target = backup.resolve(_home(), _settings())
        if target_dir is None and target.data_root is None:
            _fail("--target is needed outside the local stack")
        directory = target_dir or backup.new_restore_dir(target.data_root)  # type: ignore[arg-type]
        login = target.login
        restored = backup.restore(
            target.repo,
            moment,
            directory,
            bindir=target.bindir,
            port=port or net.free_port(),
            socket_dir=target.socket_dir,
            pg_user=login["user"],
            password=login["password"],
            database=login["dbname"],
        )
    except backup.BackupError as exc:
        _fail(str(exc))
    doc = restored.as_dict()
    doc["database_url"] = stack._mask_password(restored.database_url)
    _emit(
        doc,
        as_json,
        f"restored to {moment.isoformat()} in {directory}; port {restored.port}; stop: {restored.stop_command}",
    )


# --- administration ---------------------------------------------------------------------------------------------


@broker_app.command("init")
def broker_init(
    ingest_worker: Annotated[
        list[str], typer.Option(help="Id of an ingest worker that connects (repeat for each; its --worker-id).")
    ],
    api_replica: Annotated[
        list[str], typer.Option(help="Name of an API replica that connects (repeat for each; its VARDE_API_REPLICA).")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Create the service roles and one login per ingest worker and API replica, each bound to its own client id,
    on a broker run outside `varde stack` (idempotent: unchanged logins are left alone)."""
    from varde.admin import AdminError, init_broker
    from varde.broker import BrokerAdminError

    try:
        logins = init_broker(_settings(), {"ingest": ingest_worker, "api": api_replica})
    except (AdminError, BrokerAdminError) as exc:
        _fail(str(exc))
    _emit({"logins": logins}, as_json, f"broker ready: service logins {', '.join(logins)}")


@team_app.command("add")
def team_add(name: str, as_json: JsonFlag = False) -> None:
    """Create a care team (idempotent)."""
    from varde.admin import add_team

    team_id = add_team(_settings(), name)
    _emit({"team_id": str(team_id), "name": name}, as_json, f"team {name}: {team_id}")


@team_app.command("escalation")
def team_escalation(
    team: str,
    channel: Annotated[str, typer.Option(help="sms|email|webhook")],
    address: Annotated[str, typer.Option(help="Phone number, e-mail address or http(s) URL.")],
    label: Annotated[str, typer.Option(help="Who this is, as the dashboard shows it.")] = "Vakthavende sykepleier",
    as_json: JsonFlag = False,
) -> None:
    """Add whom the team's escalated alarms notify (the on-call nurse). No patient data is sent."""
    from varde.admin import AdminError, add_escalation_target

    try:
        target_id = add_escalation_target(_settings(), team, label, channel, address)
    except AdminError as exc:
        _fail(str(exc))
    _emit({"target_id": str(target_id)}, as_json, f"escalation target {label} ({channel}): {target_id}")


@team_app.command("lead")
def team_lead(
    team: str,
    username: str,
    remove: Annotated[bool, typer.Option("--remove", help="No longer a lead.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Make a member the team's lead: leads read the access log of the team's patients in the dashboard."""
    from varde.admin import AdminError, set_team_lead

    try:
        set_team_lead(_settings(), username, team, not remove)
    except AdminError as exc:
        _fail(str(exc))
    _emit({"team": team, "username": username, "lead": not remove}, as_json, f"{username} lead of {team}: {not remove}")


@patient_app.command("add")
def patient_add(
    name: Annotated[str, typer.Option(help="Display name (never logged).")],
    team: Annotated[str, typer.Option(help="Care team name or id.")],
    protocol: Annotated[str, typer.Option(help="|".join(PROTOCOLS))] = "general",
    timezone: Annotated[str, typer.Option(help="IANA time zone of the patient.")] = "Europe/Oslo",
    as_json: JsonFlag = False,
) -> None:
    """Enrol a patient in a care team."""
    from varde.admin import AdminError, add_patient

    try:
        patient_id = add_patient(_settings(), name, team, protocol, timezone)
    except AdminError as exc:
        _fail(str(exc))
    _emit({"patient_id": str(patient_id)}, as_json, f"patient {patient_id}")


@user_app.command("add")
def user_add(
    username: str,
    role: Annotated[str, typer.Option(help="nurse|physician|admin|data_export")],
    team: Annotated[list[str], typer.Option(help="Care team (repeat for several).")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    display_name: Annotated[str, typer.Option(help="Name shown in the dashboard.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create or update a clinician login."""
    from varde.admin import AdminError, add_user

    if not password_stdin:
        _fail("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\n")
    try:
        user_id = add_user(_settings(), username, role, team, password, display_name)
    except (AdminError, ValueError) as exc:
        _fail(str(exc))
    _emit({"user_id": str(user_id)}, as_json, f"user {username}: {user_id}")


def _set_user_enabled(username: str, enabled: bool, as_json: bool) -> None:
    from varde.admin import AdminError, set_user_enabled

    try:
        user_id, changed = set_user_enabled(_settings(), username, enabled)
    except AdminError as exc:
        _fail(str(exc))
    state = "enabled" if enabled else "disabled"
    human = f"user {username}: {state}" + ("" if changed else " (already)")
    _emit({"user_id": str(user_id), "username": username, "enabled": enabled, "changed": changed}, as_json, human)


@user_app.command("disable")
def user_disable(username: str, as_json: JsonFlag = False) -> None:
    """Disable a login: sign-in is refused and the user's tokens are refused at their next request (audited)."""
    _set_user_enabled(username, False, as_json)


@user_app.command("enable")
def user_enable(username: str, as_json: JsonFlag = False) -> None:
    """Enable a disabled login again (audited)."""
    _set_user_enabled(username, True, as_json)


# --- services ---------------------------------------------------------------------------------------------------


MetricsPort = Annotated[
    int | None,
    typer.Option(help="Port of /metrics, /healthz and /readyz (0: none; default $VARDE_METRICS_PORT, else none)."),
]


@ingest_app.command("run")
def ingest_run(
    metrics_port: MetricsPort = None,
    worker_id: Annotated[
        str | None, typer.Option(help="Stable id of this worker (default: $VARDE_INGEST_WORKER_ID or the host name).")
    ] = None,
    drain: Annotated[
        bool, typer.Option("--drain", help="Take over the worker id's session, store what it holds, end it.")
    ] = False,
    batch_readings: Annotated[
        int | None,
        typer.Option(min=1, help="Readings per transaction at most (larger: more throughput, more latency)."),
    ] = None,
) -> None:
    """Run one ingest worker (several share the load; each keeps a stable worker id)."""
    from ingest_service.worker import run_worker

    run_worker(metrics_port=metrics_port, worker_id=worker_id, drain_only=drain, batch_readings=batch_readings)


@rules_app.command("run")
def rules_run(metrics_port: MetricsPort = None) -> None:
    """Run the scheduled rules; one leader at a time holds the advisory lock."""
    from rules_engine.scheduler import run_scheduler

    run_scheduler(metrics_port=metrics_port)


@rules_app.command("personal-limits")
def rules_personal_limits() -> None:
    """Recompute the personal baselines now (the scheduler's leader does it daily); prints the versions written."""
    import psycopg

    from rules_engine.baselines import recompute_personal_limits

    with psycopg.connect(_settings().require_database_url()) as conn:
        written = recompute_personal_limits(conn)
    typer.echo(f"personal limits: {written} new version(s)")


@rules_app.command("replay")
def rules_replay(
    readings: Annotated[Path, typer.Argument(help="CSV: patient_id,kind,value,unit,measured_at (canonical units).")],
    protocol: Annotated[
        str | None,
        typer.Option(
            help="Protocol of every patient (default: the plan's, else per patient: heart failure for daily "
            "weighing, general otherwise)."
        ),
    ] = None,
    plan: Annotated[
        Path | None, typer.Option(help="Self-management plan JSON whose zones (and schedule) apply to all patients.")
    ] = None,
    resolve_after: Annotated[
        str, typer.Option(help="A nurse resolves each alarm this long after it was raised.")
    ] = "24h",
    repeat_timeout: Annotated[
        str, typer.Option(help="How long a single yellow reading waits for a repeat before its alarm opens.")
    ] = "30m",
    batch: Annotated[
        str, typer.Option(help="Arrival batch per patient (readings within it reach ingest together); 1s: per act.")
    ] = "1s",
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Report bad rows on stderr and go on (default: stop at the first).")
    ] = False,
) -> None:
    """Replay readings offline through the rules as ingest would have evaluated them; one JSON line per alarm.

    Exit codes: 0 done; 1 bad input (a bad row unless --skip-invalid, a bad header, plan or protocol, an unreadable
    file); 2 bad usage.
    """
    from rules_engine.evaluation import RuleInputs
    from rules_engine.profiles import protocol_code
    from rules_engine.replay import (
        ReplaySettings,
        infer_protocols,
        load_plan,
        parse_duration,
        read_readings_csv,
        replay,
        uniform_inputs,
    )
    from vitals.readings_csv import CsvRowError

    try:
        settings = ReplaySettings(
            resolve_after_s=parse_duration(resolve_after),
            repeat_timeout_s=parse_duration(repeat_timeout),
            batch_s=parse_duration(batch),
        )
    except ValueError as exc:
        _fail(str(exc), 2)
    try:
        content = load_plan(plan.read_text(encoding="utf-8")) if plan is not None else None
    except (OSError, ValueError) as exc:
        _fail(f"{plan}: {exc}")
    chosen = protocol or (content.protocol if content is not None else "inferred")
    try:
        if chosen != "inferred":
            protocol_code(chosen)
    except ValueError as exc:
        _fail(str(exc))
    try:
        with readings.open(encoding="utf-8-sig", newline="") as lines:
            parsed, skipped = read_readings_csv(lines, skip_invalid=skip_invalid)
    except CsvRowError as exc:
        _fail(f"{readings}: {exc}")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"{readings}: {exc}")
    for error in skipped:
        typer.echo(f"skipped: {readings}: {error}", err=True)
    if chosen == "inferred":
        inferred = infer_protocols(parsed)
        inputs = RuleInputs(protocols=inferred)
        counts = {name: inferred.count(name) for name in sorted(set(inferred))}
        chosen = "inferred: " + ", ".join(f"{n} {name}" for name, n in counts.items())
    else:
        inputs = uniform_inputs(len(parsed.patient_ids), chosen, content)
    result = replay(parsed, inputs, settings, schedule=content)
    out = sys.stdout
    for alarm in result.alarms:
        out.write(json.dumps(alarm.to_json()) + "\n")
    out.flush()
    typer.echo(
        f"replayed {result.readings} readings of {len(parsed.patient_ids)} patients ({chosen}) in "
        f"{result.seconds:.2f} s ({result.readings_per_minute:,.0f} readings/min): {len(result.alarms)} alarms"
        + (f", {len(skipped)} rows skipped" if skipped else ""),
        err=True,
    )


@api_app.command("run")
def api_run(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    metrics_port: MetricsPort = None,
) -> None:
    """Serve the clinician API and dashboard (metrics only on the separate --metrics-port, never on --port)."""
    import uvicorn

    from clinician_api.ops import serve_api_ops
    from vitals.logs import setup_logging

    setup_logging()
    serve_api_ops(metrics_port)
    # X-Forwarded-For/-Proto only from the configured proxies (VARDE_FORWARDED_ALLOW_IPS); none by default, so a
    # client talking to the API directly cannot claim another address or https.
    proxies = _settings().trusted_proxies
    uvicorn.run(
        "clinician_api.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies,
    )


# --- simulators ---------------------------------------------------------------------------------------------------


@sim_app.command("list")
def sim_list(as_json: JsonFlag = False) -> None:
    """The scenario library: name, protocol, the alarms it should raise."""
    from device_simulators.scenarios import SCENARIOS

    rows = [
        {
            "name": s.name,
            "protocol": s.protocol,
            "expected_rules": sorted(s.expected_rules),
            "expected_any": sorted(s.expected_any),
            "summary": s.summary,
        }
        for s in SCENARIOS.values()
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        expected = ", ".join(row["expected_rules"])
        if row["expected_any"]:
            expected = ", ".join(filter(None, [expected, "one of " + " / ".join(row["expected_any"])]))
        expected = expected or "no alarm"
        typer.echo(f"{row['name']:<30} {row['protocol']:<14} {expected}")


@sim_app.command("scenario")
def sim_scenario(
    name: Annotated[str, typer.Argument(help="Scenario name (see `varde sim list`).")],
    seed: Annotated[int, typer.Option(help="Patient seed: the same seed gives the same acts.")] = 1,
    days: Annotated[int, typer.Option(min=1, max=366, help="Days to generate.")] = 14,
    start: Annotated[str, typer.Option(help="First day (ISO date or time, UTC); default: DAYS days ago.")] = "",
) -> None:
    """Print a scenario's measurement acts as JSON Lines."""
    from datetime import UTC, datetime, timedelta

    from device_simulators.physiology import dumps_acts
    from device_simulators.scenarios import scenario

    try:
        spec = scenario(name)
        first = datetime.fromisoformat(start) if start else datetime.now(UTC) - timedelta(days=days)
    except ValueError as exc:
        _fail(str(exc))
    if first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    sys.stdout.buffer.write(dumps_acts(spec.generate(seed, first, days)))


@sim_app.command("provision")
def sim_provision(
    gateways: Annotated[int, typer.Option(min=1, max=100_000, help="How many gateways (one patient each).")],
    team: Annotated[str, typer.Option(help="Care team the load patients belong to.")] = "Fleet",
    as_json: JsonFlag = False,
) -> None:
    """Bulk-provision gateways with their own broker logins; prints their credentials (keep the output private)."""
    from varde.admin import AdminError, provision_fleet
    from varde.broker import BrokerAdminError

    try:
        created = provision_fleet(_settings(), gateways, team=team)
    except (AdminError, BrokerAdminError) as exc:
        _fail(str(exc))
    doc = {"team": team, "gateways": [c.as_dict() for c in created]}
    _emit(doc, as_json, "\n".join(f"{c.gateway_id} {c.password}" for c in created))


@sim_app.command("fleet")
def sim_fleet(
    gateways: Annotated[int, typer.Option(min=1, max=10_000, help="Gateways, one MQTT connection each.")] = 20,
    rate: Annotated[
        float, typer.Option(help="Readings per second in total (0: as fast as the windows allow).")
    ] = 20000,
    seconds: Annotated[float, typer.Option(min=0.1, max=86_400, help="How long to publish.")] = 10,
    batch: Annotated[int, typer.Option(min=1, max=2000, help="Readings per envelope.")] = 50,
    window: Annotated[int, typer.Option(min=1, max=1024, help="Unacknowledged envelopes per connection.")] = 16,
    gateways_file: Annotated[
        Path | None, typer.Option(help="Reuse gateways from `varde sim provision --json` output instead.")
    ] = None,
) -> None:
    """Publish real readings envelopes as N gateways (MQTT v5, QoS 1, their own logins); print a JSON report."""
    from device_simulators.fleet import Fleet, FleetError, FleetGateway, load_gateways
    from varde.admin import AdminError, provision_fleet
    from varde.broker import BrokerAdminError

    try:
        if gateways_file is not None:
            fleet_gateways = load_gateways(json.loads(gateways_file.read_text()), gateways)
        else:
            created = provision_fleet(_settings(), gateways)
            fleet_gateways = [FleetGateway(c.gateway_id, c.password, c.mqtt_host, c.mqtt_port) for c in created]
        with Fleet(fleet_gateways, batch=batch, window=window) as fleet:
            report = fleet.run(rate or None, seconds)
    except (AdminError, BrokerAdminError, FleetError, OSError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps(report.as_dict()))
    if report.puback_failures or report.unacked:
        raise typer.Exit(1)


@sim_app.command("peripheral")
def sim_peripheral(
    kind: Annotated[
        str,
        typer.Option(help="blood_pressure, pulse_oximeter, weight_scale, thermometer, glucose_meter or heart_rate."),
    ] = "blood_pressure",
    transport: Annotated[
        str, typer.Option(help="Bumble HCI transport of the controller: usb:0, hci-socket:0, serial:/dev/ttyACM0, …")
    ] = "usb:0",
    address: Annotated[str | None, typer.Option(help="Random static address to advertise (default per kind).")] = None,
    passkey: Annotated[str | None, typer.Option(help="Six-digit passkey; the glucose meter always has one.")] = None,
    every: Annotated[float, typer.Option(min=1, help="Seconds between measurements.")] = 60.0,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many measurements.")] = None,
) -> None:
    """Run one virtual health device on a real Bluetooth controller (needs `varde[bumble]`), for a real gateway."""
    import asyncio

    try:
        from device_simulators.dongle import DongleError, run_peripheral
    except ImportError as exc:
        _fail(f"the virtual devices need Bumble: pip install 'varde[bumble]' ({exc})")
    try:
        asyncio.run(run_peripheral(kind, transport, address=address, passkey=passkey, every_s=every, count=count))
    except DongleError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass


@app.command("demo")
def demo(
    action: Annotated[str, typer.Argument(help="run (default), or stop: end a demo running elsewhere.")] = "run",
    backlog_days: Annotated[int, typer.Option(min=1, max=60, help="Days of history delivered at start.")] = 14,
    spot_check_minutes: Annotated[
        float, typer.Option(min=0, help="Each patient also measures about this often (0: only the schedule).")
    ] = 5.0,
    fresh: Annotated[bool, typer.Option("--fresh", help="Remove the earlier demo patients and start anew.")] = False,
    keep_stack: Annotated[bool, typer.Option("--keep-stack", help="Leave the stack running on exit.")] = False,
) -> None:
    """The local stack with 2 care teams and 25 simulated patients at home; Ctrl-C (or `varde demo stop` from
    another terminal, also for a demo started in the background) stops everything."""
    import logging

    from varde.demo import DemoError, run_demo, stop_demo

    if action == "stop":
        try:
            say = stop_demo(_home())
        except DemoError as exc:
            _fail(str(exc))
        typer.echo(say)
        return
    if action != "run":
        _fail(f"unknown action {action!r}; use `varde demo` or `varde demo stop`")

    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(message)s")

    try:
        run_demo(
            _home(),
            backlog_days=backlog_days,
            spot_check_minutes=spot_check_minutes,
            fresh=fresh,
            keep_stack=keep_stack,
        )
    except DemoError as exc:
        _fail(str(exc))


# --- journal (record integration) --------------------------------------------------------------------------------


@journal_app.command("run")
def journal_run(
    poll_seconds: Annotated[float, typer.Option(help="Longest sleep between passes when nothing wakes it.")] = 5.0,
    metrics_port: MetricsPort = None,
) -> None:
    """Run one journal worker: feed measurement subscriptions and deliver the outbox (several may run)."""
    from clinician_api.journal.worker import run_worker

    run_worker(poll_seconds=poll_seconds, metrics_port=metrics_port)


def _journal_conn() -> Any:
    import psycopg

    return psycopg.connect(_settings().require_database_url())


@journal_app.command("organisation")
def journal_organisation(
    name: str,
    org_number: Annotated[str, typer.Option(help="Organisation number (9 digits).")],
    team: Annotated[list[str] | None, typer.Option(help="Care team that belongs to it (repeat for several).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add an organisation (idempotent by organisation number) and link care teams to it."""
    from clinician_api.journal.admin import JournalConfigError, add_organisation, link_team

    try:
        with _journal_conn() as conn:
            organisation_id = add_organisation(conn, name, org_number)
            for t in team or []:
                link_team(conn, t, str(organisation_id))
    except JournalConfigError as exc:
        _fail(str(exc))
    _emit({"organisation_id": str(organisation_id)}, as_json, f"organisation {name}: {organisation_id}")


@journal_app.command("endpoint")
def journal_endpoint(
    organisation: Annotated[str, typer.Option(help="Organisation number, id or name.")],
    name: Annotated[str, typer.Option(help="Name of the endpoint within the organisation.")],
    base_url: Annotated[str, typer.Option(help="FHIR R4 base URL of the record system.")],
    token_url: Annotated[str | None, typer.Option(help="OAuth2 token endpoint (client credentials).")] = None,
    client_id: Annotated[str | None, typer.Option(help="OAuth2 client id.")] = None,
    client_secret: Annotated[
        str | None, typer.Option(help="Where the client secret is: env:NAME or file:/path (never the secret).")
    ] = None,
    scope: Annotated[str | None, typer.Option(help="OAuth2 scope.")] = None,
    alarms: Annotated[bool, typer.Option(help="Journal resolved alarms here.")] = True,
    max_attempts: Annotated[int, typer.Option(help="Attempts before an entry is dead-lettered.")] = 30,
    backoff_base: Annotated[float, typer.Option(help="First retry delay in seconds (doubles each time).")] = 5.0,
    backoff_max: Annotated[float, typer.Option(help="Longest retry delay in seconds.")] = 900.0,
    as_json: JsonFlag = False,
) -> None:
    """Add or update an organisation's record endpoint."""
    from clinician_api.journal.admin import JournalConfigError, add_endpoint

    try:
        with _journal_conn() as conn:
            endpoint_id = add_endpoint(
                conn,
                organisation,
                name,
                base_url,
                token_url=token_url,
                client_id=client_id,
                client_secret_ref=client_secret,
                scope=scope,
                journal_alarms=alarms,
                max_attempts=max_attempts,
                backoff_base_seconds=backoff_base,
                backoff_max_seconds=backoff_max,
            )
    except JournalConfigError as exc:
        _fail(str(exc))
    _emit({"endpoint_id": str(endpoint_id)}, as_json, f"endpoint {name}: {endpoint_id}")


@journal_app.command("subscribe")
def journal_subscribe(
    organisation: Annotated[str, typer.Option(help="Organisation number, id or name.")],
    endpoint: Annotated[str, typer.Option(help="Endpoint id.")],
    kind: Annotated[list[str] | None, typer.Option(help="Measurement kind (repeat; default all).")] = None,
    batch_size: Annotated[int, typer.Option(help="Most Observations per Bundle.")] = 100,
    bundle_type: Annotated[str, typer.Option(help="transaction or collection.")] = "transaction",
    as_json: JsonFlag = False,
) -> None:
    """Share the organisation's new measurements with an endpoint (from now on)."""
    from clinician_api.journal.admin import JournalConfigError, add_subscription

    try:
        with _journal_conn() as conn:
            subscription_id = add_subscription(
                conn, organisation, UUID(endpoint), kinds=kind, batch_size=batch_size, bundle_type=bundle_type
            )
    except (JournalConfigError, ValueError) as exc:
        _fail(str(exc))
    _emit({"subscription_id": str(subscription_id)}, as_json, f"subscription {subscription_id}")


# --- edge ---------------------------------------------------------------------------------------------------------


@app.command("decode")
def decode(
    characteristic: Annotated[str, typer.Argument(help="16-bit UUID such as 2a35, or the full 128-bit form.")],
    hex_bytes: Annotated[str, typer.Argument(help="The characteristic value as hex (spaces or colons allowed).")],
) -> None:
    """Decode one GATT characteristic value into readings in canonical units (JSON on stdout)."""
    from edge_agent.decode_cli import decode_command

    raise typer.Exit(decode_command(characteristic, hex_bytes))


def _edge_app() -> typer.Typer:
    from edge_agent.cli import app as edge

    return edge


def main() -> None:
    # The edge sub-app is attached only when asked for, so other commands never import the edge runtime.
    if len(sys.argv) > 1 and sys.argv[1] == "edge":
        app.add_typer(_edge_app(), name="edge")
    else:
        app.add_typer(typer.Typer(help="The home gateway agent (run, check-config, pair, enrol)."), name="edge")
    app()
