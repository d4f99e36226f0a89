"""The local stack: a private PostgreSQL and Mosquitto under `.varde/`, plus the platform services.

Used by developers, the demo and the tests. Started from the system's binaries (installing the Debian packages when
it runs as root and they are missing); PostgreSQL and Mosquitto run as an unprivileged user when started by root.
`VARDE_DATABASE_URL` / `VARDE_MQTT_URL` point at existing services instead. State: `.varde/stack.json` (addresses,
process ids) and `.varde/secrets.json` (generated passwords), both readable by the owner only.

Mosquitto listens twice on loopback: plain MQTT on `mqtt_port` (the services, simulators and most tests use it) and
MQTT over TLS on `mqtts_port` with a private CA and certificates from `.varde/tls/` (`tls_ca_file` in stack.json),
the way production accepts gateways (deploy/mosquitto/mosquitto.conf has only the TLS listener).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from varde import backup, pgserver
from varde.net import free_port, port_open

SERVICE_USER = "varde"
PG_SUPERUSER = "varde"
PG_DATABASE = "varde"


class StackError(RuntimeError):
    """The stack cannot start; the message says what is missing and how to fix it."""


def _say(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class StackPaths:
    home: Path

    @property
    def stack_file(self) -> Path:
        return self.home / "stack.json"

    @property
    def secrets_file(self) -> Path:
        return self.home / "secrets.json"

    @property
    def logs(self) -> Path:
        return self.home / "logs"


# --- small helpers ----------------------------------------------------------------------------------------------


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state != "Z"


def _wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")


def _read_json(path: Path) -> dict[str, Any]:
    if path.is_file():
        doc = json.loads(path.read_text())
        if isinstance(doc, dict):
            return doc
    return {}


def _write_private_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)


# --- system binaries --------------------------------------------------------------------------------------------


def _is_root() -> bool:
    return os.geteuid() == 0


def _apt_install(packages: list[str], why: str) -> None:
    if not _is_root() or not shutil.which("apt-get"):
        raise StackError(
            f"{why}. Install the Debian package(s) {' '.join(packages)} "
            f"(sudo apt-get install {' '.join(packages)}) or set VARDE_DATABASE_URL / VARDE_MQTT_URL."
        )
    _say(f"{why}: installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=False, env=env, stdout=subprocess.DEVNULL)
    result = subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StackError(f"apt-get install {' '.join(packages)} failed: {result.stderr.strip()[-500:]}")


def find_postgres_bin() -> Path:
    """The directory holding initdb, pg_ctl and postgres (newest installed major version)."""

    def search() -> Path | None:
        dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]), reverse=True)
        for d in dirs:
            if all(Path(d, tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
                return Path(d)
        found = shutil.which("pg_ctl")
        if found and Path(found).resolve().with_name("initdb").exists():
            return Path(found).resolve().parent
        return None

    found = search()
    if found is None:
        _apt_install(["postgresql"], "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")
        found = search()
    if found is None:
        raise StackError("PostgreSQL server binaries still missing after install")
    return found


def find_mosquitto() -> tuple[Path, Path]:
    """The mosquitto binary and its dynamic-security plugin."""

    def search() -> tuple[Path, Path] | None:
        binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        plugins = glob.glob("/usr/lib/*/mosquitto_dynamic_security.so") + glob.glob(
            "/usr/lib/mosquitto_dynamic_security.so"
        )
        if binary and plugins:
            return Path(binary), Path(plugins[0])
        return None

    found = search()
    if found is None:
        _apt_install(["mosquitto"], "Mosquitto broker or its dynamic-security plugin not found")
        found = search()
    if found is None:
        raise StackError("Mosquitto still missing after install")
    return found


# --- the unprivileged service user ------------------------------------------------------------------------------


def _service_user() -> pwd.struct_passwd | None:
    """None when not root (services run as the caller); else the `varde` system user, created if needed."""
    if not _is_root():
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [
            useradd,
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StackError(f"cannot create the unprivileged user {SERVICE_USER!r}: {result.stderr.strip()}")
    return pwd.getpwnam(SERVICE_USER)


def _can_use(user: pwd.struct_passwd, path: Path) -> bool:
    probe = subprocess.run(
        ["test", "-w", str(path), "-a", "-x", str(path)], user=user.pw_uid, group=user.pw_gid, check=False
    )
    return probe.returncode == 0


def _data_root(paths: StackPaths, user: pwd.struct_passwd | None) -> Path:
    """Where PostgreSQL and Mosquitto keep their data: under .varde/, unless the service user cannot reach it."""
    root = paths.home / "data"
    root.mkdir(parents=True, exist_ok=True)
    if user is None:
        return root
    os.chown(root, user.pw_uid, user.pw_gid)
    if _can_use(user, root):
        return root
    digest = hashlib.sha256(str(paths.home).encode()).hexdigest()[:12]
    fallback = Path("/var/lib/varde-stack") / digest
    fallback.mkdir(parents=True, exist_ok=True)
    os.chown(fallback, user.pw_uid, user.pw_gid)
    _say(f"user {SERVICE_USER!r} cannot reach {root}; keeping service data in {fallback}")
    return fallback


def _chown_tree(path: Path, user: pwd.struct_passwd | None) -> None:
    if user is None:
        return
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, user.pw_uid, user.pw_gid)
        for name in dirnames + filenames:
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid, follow_symlinks=False)


def _run_as(user: pwd.struct_passwd | None, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a tool as the service user (when root), from a directory that user can enter."""
    if user is not None:
        kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        kwargs.setdefault("env", {**os.environ, "HOME": str(Path(os.devnull).parent), "USER": user.pw_name})
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)


# --- PostgreSQL -------------------------------------------------------------------------------------------------


def _start_postgres(
    paths: StackPaths, state: dict[str, Any], secret: dict[str, Any], user: pwd.struct_passwd | None
) -> None:
    if os.environ.get("VARDE_DATABASE_URL"):
        state["database_url"] = os.environ["VARDE_DATABASE_URL"]
        state["postgres"] = {"external": True}
        _say("PostgreSQL: using VARDE_DATABASE_URL")
        return
    bindir = find_postgres_bin()
    _ensure_server_packages(bindir, ha=False)
    root = Path(state.get("data_root") or _data_root(paths, user))
    state["data_root"] = str(root)
    pgdata = root / "pg"
    sockdir = root / "pg-run"
    sockdir.mkdir(parents=True, exist_ok=True)
    _chown_tree(sockdir, user)
    password = secret.setdefault("postgres_password", secrets.token_urlsafe(24))
    pg = state.setdefault("postgres", {})
    port = pg.get("port")
    if port and pid_alive(_postmaster_pid(pgdata)) and port_open("127.0.0.1", port):
        _say(f"PostgreSQL: already running on port {port}")
    else:
        if not (pgdata / "PG_VERSION").exists():
            pgdata.mkdir(parents=True, exist_ok=True)
            _chown_tree(pgdata, user)
            pwfile = root / "pg-initpw"
            pwfile.write_text(password)
            _chown_tree(root, user)
            os.chmod(pwfile, 0o600)
            done = _run_as(
                user,
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(pgdata),
                    "-U",
                    PG_SUPERUSER,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                ],
                cwd=str(root),
            )
            pwfile.unlink()
            if done.returncode != 0:
                raise StackError(f"initdb failed: {done.stderr.strip()[-800:]}")
            _say(f"PostgreSQL: initialised a private cluster in {pgdata}")
        port = free_port(port)
        logfile = paths.logs / "postgres.log"
        # postgres itself, not pg_ctl: the log file is opened here and handed over, so it can live under
        # .varde/logs even where the service user could not open it.
        log = open(logfile, "ab")  # noqa: SIM115 - handed to the child process
        kwargs: dict[str, Any] = {"cwd": str(root)}
        if user is not None:
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        proc = subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D",
                str(pgdata),
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "-k",
                str(sockdir),
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=256MB",
                "-c",
                "logging_collector=off",
                *pgserver.as_options(backup.server_settings(root)),
            ],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kwargs,
        )
        log.close()
        _wait_until(lambda: _pg_ready(port) or proc.poll() is not None, 60, "PostgreSQL to accept connections")
        if proc.poll() is not None:
            raise StackError(f"PostgreSQL exited at start (code {proc.returncode}); see {logfile}")
        pg["port"] = port
        _say(f"PostgreSQL: started on 127.0.0.1:{port}")
    pg.update({"bindir": str(bindir), "pgdata": str(pgdata), "port": port, "run_as": user.pw_name if user else None})
    admin_url = f"postgresql://{PG_SUPERUSER}:{password}@127.0.0.1:{port}/postgres"
    state["database_url"] = f"postgresql://{PG_SUPERUSER}:{password}@127.0.0.1:{port}/{PG_DATABASE}"
    _ensure_database(admin_url)
    _ensure_backup_repository(root, pgdata, port, sockdir, user, state, password)


def _ensure_server_packages(bindir: Path, *, ha: bool) -> None:
    missing = pgserver.missing_packages(pgserver.ServerFiles(bindir), ha=ha)
    if missing:
        _apt_install(missing, "PostgreSQL extensions or tools the stack needs are missing")
        missing = pgserver.missing_packages(pgserver.ServerFiles(bindir), ha=ha)
        if missing:
            raise StackError(f"still missing after install: {' '.join(missing)}")


def _ensure_backup_repository(
    root: Path, pgdata: Path, port: int, sockdir: Path, user: pwd.struct_passwd | None, state: dict[str, Any], pw: str
) -> None:
    """The pgBackRest repository the server archives its WAL to (varde/backup.py)."""
    config = backup.write_local_config(root, pgdata, port, sockdir, PG_SUPERUSER)
    _chown_tree(root / "backup", user)
    repo = backup.Repository(config, run_as=user.pw_name if user else None, password=pw)
    state["backup"] = {"config": str(config), "stanza": repo.stanza, "run_as": repo.run_as}
    try:
        backup.ensure_stanza(repo)
    except backup.BackupError as exc:
        # A server started before archiving was configured keeps running; backups wait for its restart.
        _say(f"backups unavailable until PostgreSQL restarts with WAL archiving: {exc}")


def _start_ha(paths: StackPaths, state: dict[str, Any], secret: dict[str, Any], user: pwd.struct_passwd | None) -> None:
    from varde import ha

    if os.environ.get("VARDE_DATABASE_URL"):
        raise StackError("--ha runs its own PostgreSQL formation: unset VARDE_DATABASE_URL")
    if (state.get("postgres") or {}).get("pgdata"):
        raise StackError(f"{paths.home} holds a single PostgreSQL; give --ha a home of its own (VARDE_HOME)")
    bindir = find_postgres_bin()
    _ensure_server_packages(bindir, ha=True)
    root = Path(state.get("data_root") or _data_root(paths, user))
    state["data_root"] = str(root)
    try:
        cluster = ha.start_cluster(root, state, secret, user, bindir, PG_DATABASE, free_port)
    except ha.HAError as exc:
        raise StackError(str(exc)) from exc
    state["postgres"] = {"ha": True, "bindir": str(bindir), "run_as": user.pw_name if user else None}
    state["database_url"] = cluster.database_url(str(secret["postgres_password"]), PG_DATABASE)
    _say(f"PostgreSQL: pg_auto_failover formation up, primary {cluster.primary()}")


def ha_cluster(home: Path) -> Any:
    """The HA formation of a stack started with --ha (varde.ha.Cluster), or None."""
    from varde import ha

    state = load_state(StackPaths(home))
    pg = state.get("postgres") or {}
    if not pg.get("ha"):
        return None
    user = pwd.getpwnam(pg["run_as"]) if pg.get("run_as") else None
    return ha.Cluster(Path(state["data_root"]), state, user, Path(pg["bindir"]))


def _pg_ready(port: int) -> bool:
    import psycopg

    try:
        psycopg.connect(f"host=127.0.0.1 port={port} dbname=postgres user=nobody connect_timeout=1").close()
    except psycopg.OperationalError as exc:
        # Authentication failure means the server is up and answering.
        return "password" in str(exc) or "authentication" in str(exc) or "role" in str(exc)
    return True


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _ensure_database(admin_url: str) -> None:
    import psycopg

    from store import server

    with psycopg.connect(admin_url, autocommit=True) as conn:
        server.ensure_database(conn, PG_DATABASE)


def _stop_postgres(state: dict[str, Any]) -> None:
    pg = state.get("postgres") or {}
    if pg.get("external") or not pg.get("pgdata"):
        return
    pid = _postmaster_pid(Path(pg["pgdata"]))
    if not pid_alive(pid):
        return
    assert pid is not None
    os.kill(pid, signal.SIGINT)  # "fast" shutdown: roll back open transactions, checkpoint, exit
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGQUIT)
    _say("PostgreSQL: stopped")


# --- Mosquitto --------------------------------------------------------------------------------------------------


def _start_mosquitto(
    paths: StackPaths, state: dict[str, Any], secret: dict[str, Any], user: pwd.struct_passwd | None
) -> None:
    from varde.broker import DynSecAdmin
    from varde.tls import ensure_local_pki

    logins = {name: secret.setdefault(f"mqtt_{name}_password", secrets.token_urlsafe(24)) for name in ("ingest", "api")}
    own = _own_instances(state)
    if os.environ.get("VARDE_MQTT_URL"):
        state["mqtt"] = {"external": True}
        _say("Mosquitto: using VARDE_MQTT_URL")
        return
    binary, plugin = find_mosquitto()
    root = Path(state.get("data_root") or _data_root(paths, user))
    state["data_root"] = str(root)
    mdir = root / "mqtt"
    (mdir / "data").mkdir(parents=True, exist_ok=True)
    admin_password = secret.setdefault("mqtt_admin_password", secrets.token_urlsafe(24))
    dynsec_file = mdir / "dynamic-security.json"
    if not dynsec_file.exists():
        ctrl = shutil.which("mosquitto_ctrl") or "/usr/bin/mosquitto_ctrl"
        if not Path(ctrl).exists():
            _apt_install(["mosquitto-clients"], "mosquitto_ctrl (to initialise dynamic security) not found")
        done = subprocess.run(
            [ctrl, "dynsec", "init", str(dynsec_file), "admin", admin_password],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise StackError(f"mosquitto_ctrl dynsec init failed: {done.stderr.strip() or done.stdout.strip()}")
    pki = ensure_local_pki(paths.home / "tls")
    (mdir / "tls").mkdir(mode=0o700, exist_ok=True)
    for name, source in (
        ("ca.crt", pki.ca_cert),
        ("broker.crt", pki.cert("broker")),
        ("broker.key", pki.key("broker")),
    ):
        shutil.copyfile(source, mdir / "tls" / name)
        os.chmod(mdir / "tls" / name, 0o600)
    mq = state.setdefault("mqtt", {})
    port = mq.get("port")
    tls_port = mq.get("tls_port")
    if pid_alive(mq.get("pid")) and not (tls_port and port_open("127.0.0.1", tls_port)):
        _stop_pid(mq.get("pid"), "Mosquitto (started without the TLS listener)")
    if not (port and pid_alive(mq.get("pid")) and port_open("127.0.0.1", port)):
        port = free_port(port)
        tls_port = free_port(tls_port)
        while tls_port == port:
            tls_port = free_port()
        logfile = paths.logs / "mosquitto.log"
        conf = mdir / "mosquitto.conf"
        conf.write_text(
            "\n".join(
                [
                    "per_listener_settings false",
                    "allow_anonymous false",
                    f"listener {port} 127.0.0.1",
                    f"listener {tls_port} 127.0.0.1",
                    f"cafile {mdir / 'tls' / 'ca.crt'}",
                    f"certfile {mdir / 'tls' / 'broker.crt'}",
                    f"keyfile {mdir / 'tls' / 'broker.key'}",
                    f"plugin {plugin}",
                    f"plugin_opt_config_file {dynsec_file}",
                    "persistence true",
                    f"persistence_location {mdir / 'data'}/",
                    "autosave_interval 30",
                    "max_queued_messages 200000",
                    "max_inflight_messages 0",
                    "max_packet_size 1048576",
                    "log_dest stderr",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type subscribe",
                    "log_type unsubscribe",
                    "log_timestamp_format %Y-%m-%dT%H:%M:%S",
                    "",
                ]
            )
        )
        _chown_tree(mdir, user)
        log = open(logfile, "ab")  # noqa: SIM115 - handed to the child process
        kwargs: dict[str, Any] = {}
        if user is not None:
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        proc = subprocess.Popen(
            [str(binary), "-c", str(conf)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kwargs,
        )
        log.close()
        _wait_until(
            lambda: (port_open("127.0.0.1", port) and port_open("127.0.0.1", tls_port)) or proc.poll() is not None,
            15,
            "Mosquitto",
        )
        if proc.poll() is not None:
            raise StackError(f"Mosquitto exited at start (code {proc.returncode}); see {logfile}")
        mq.update({"pid": proc.pid, "port": port, "tls_port": tls_port})
        _say(f"Mosquitto: started on 127.0.0.1:{port} (TLS on {tls_port})")
    else:
        _say(f"Mosquitto: already running on port {port}")
    state["mqtt_host"] = "127.0.0.1"
    state["mqtt_port"] = port
    state["mqtts_port"] = tls_port
    state["tls_ca_file"] = str(pki.ca_cert)
    with DynSecAdmin("127.0.0.1", port, "admin", admin_password) as admin:
        admin.ensure_service_logins(logins, {service: [name] for service, name in own.items()})
        bound = admin.bind_gateway_client_ids()
    if bound:
        _say(f"Mosquitto: bound {len(bound)} gateway login(s) to their own client id")


def _own_instances(state: dict[str, Any]) -> dict[str, str]:
    """The instance names of the stack's own ingest worker and API (fixed at the first `up`, kept in stack.json):
    each connects with its own broker login bound to `varde-<service>-<name>`."""
    from store.settings import default_instance_name, ingest_worker_id

    own: dict[str, str] = state.setdefault("service_instances", {})
    own.setdefault("ingest", ingest_worker_id())
    own.setdefault("api", os.environ.get("VARDE_API_REPLICA") or default_instance_name())
    return own


@contextlib.contextmanager
def _broker_admin(home: Path) -> Iterator[Any]:
    from varde.broker import DynSecAdmin

    state, secret = load_state(StackPaths(home)), _read_json(StackPaths(home).secrets_file)
    if (state.get("mqtt") or {}).get("external") or not state.get("mqtt_port"):
        raise StackError("the stack runs no Mosquitto of its own; make the service logins on the broker in use")
    with DynSecAdmin("127.0.0.1", int(state["mqtt_port"]), "admin", str(secret["mqtt_admin_password"])) as admin:
        yield admin


def ensure_service_instances(home: Path, instances: dict[str, list[str]]) -> list[str]:
    """Broker logins for more service instances beside the stack's own (a second ingest worker, API replicas),
    each bound to its own client id; idempotent, and a running instance is not disconnected. Returns the logins."""
    secret = _read_json(StackPaths(home).secrets_file)
    passwords = {service: str(secret[f"mqtt_{service}_password"]) for service in instances}
    with _broker_admin(home) as admin:
        ensured: list[str] = admin.ensure_service_logins(passwords, instances)
        return ensured


def retire_service_instances(home: Path, instances: dict[str, list[str]]) -> None:
    """Delete the broker logins of instances that are gone (kicking any connection still using one)."""
    from store.settings import instance_login

    with _broker_admin(home) as admin:
        admin.delete_service_logins([instance_login(f"varde-{s}", n) for s, names in instances.items() for n in names])


def _stop_pid(pid: int | None, name: str, timeout: float = 15) -> None:
    if not pid_alive(pid):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _say(f"{name}: stopped")


# --- platform services ------------------------------------------------------------------------------------------

SERVICES: dict[str, list[str]] = {
    "ingest": ["ingest", "run"],
    "rules": ["rules", "run"],
    "api": ["api", "run"],
    "journal": ["journal", "run"],
}


def _start_services(paths: StackPaths, state: dict[str, Any], names: list[str]) -> None:
    services = state.setdefault("services", {})
    env = {**os.environ, "VARDE_HOME": str(paths.home), "PYTHONUNBUFFERED": "1"}
    for name in names:
        current = services.get(name) or {}
        if pid_alive(current.get("pid")):
            _say(f"{name}: already running (pid {current['pid']})")
            continue
        args = list(SERVICES[name])
        metrics_port = free_port(current.get("metrics_port"))
        args += ["--metrics-port", str(metrics_port)]
        own = _own_instances(state)
        if name == "ingest":
            args += ["--worker-id", own["ingest"]]
        if name == "api":
            port = free_port(state.get("api_port"))
            state["api_port"] = port
            state["api_url"] = f"http://127.0.0.1:{port}"
            args += ["--port", str(port)]
        _write_private_json(paths.stack_file, state)
        log = open(paths.logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child process
        proc = subprocess.Popen(
            [sys.executable, "-m", "varde", *args],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**env, "VARDE_API_REPLICA": own["api"]} if name == "api" else env,
        )
        log.close()
        services[name] = {
            "pid": proc.pid,
            "log": str(paths.logs / f"{name}.log"),
            "metrics_port": metrics_port,
            "metrics_url": f"http://127.0.0.1:{metrics_port}/metrics",
        }
        _say(f"{name}: started (pid {proc.pid}, log {paths.logs / f'{name}.log'})")
    if "api" in names:
        port = int(state["api_port"])
        pid = services["api"]["pid"]
        _wait_until(lambda: port_open("127.0.0.1", port) or not pid_alive(pid), 60, "the API to listen")
        if not pid_alive(pid):
            raise StackError(f"the API exited at start; see {paths.logs / 'api.log'}")


# --- public commands --------------------------------------------------------------------------------------------


def load_state(paths: StackPaths) -> dict[str, Any]:
    return _read_json(paths.stack_file)


def up(home: Path, *, services: bool = True, ha: bool = False, hold: Collection[str] = ()) -> dict[str, Any]:
    """Start (or confirm) every part of the stack; returns the stack state. `ha`: PostgreSQL as a pg_auto_failover
    formation (monitor, primary, synchronous standby) instead of one server; a home started so stays so. `hold`:
    services not started yet (`start_service` later); one already running keeps running."""
    paths = StackPaths(home)
    paths.logs.mkdir(parents=True, exist_ok=True)
    user = _service_user()
    # Traversable but not listable, so the service user reaches its data dir; state files themselves are 0600.
    os.chmod(home, 0o711 if user is not None else 0o700)
    state = load_state(paths)
    secret = _read_json(paths.secrets_file)
    secret.setdefault("jwt_secret", secrets.token_urlsafe(48))
    try:
        if ha or (state.get("postgres") or {}).get("ha"):
            _start_ha(paths, state, secret, user)
        else:
            _start_postgres(paths, state, secret, user)
        _start_mosquitto(paths, state, secret, user)
    finally:
        _write_private_json(paths.secrets_file, _public_secrets(secret))
        _write_private_json(paths.stack_file, state)
    _migrate(state["database_url"])
    if services:
        _start_services(paths, state, [name for name in SERVICES if name not in hold])
    _write_private_json(paths.stack_file, state)
    return state


def _public_secrets(secret: dict[str, Any]) -> dict[str, Any]:
    """secrets.json also carries the service logins under the names the settings object reads."""
    doc = dict(secret)
    doc.update(
        {
            "mqtt_admin_username": "admin",
            "mqtt_ingest_username": "varde-ingest",
            "mqtt_ingest_password": secret.get("mqtt_ingest_password"),
            "mqtt_api_username": "varde-api",
            "mqtt_api_password": secret.get("mqtt_api_password"),
        }
    )
    return doc


def _migrate(database_url: str) -> list[str]:
    import psycopg

    from store.migrate import migrate

    with psycopg.connect(database_url) as conn:
        applied = migrate(conn)
    if applied:
        _say(f"database: applied migrations {', '.join(applied)}")
    return applied


def status(home: Path) -> dict[str, Any]:
    paths = StackPaths(home)
    state = load_state(paths)
    report: dict[str, Any] = {"home": str(home), "running": False, "components": {}}
    if not state:
        return report
    comps: dict[str, Any] = report["components"]
    pg = state.get("postgres") or {}
    cluster = ha_cluster(home) if pg.get("ha") else None
    if cluster is not None:
        ha_report = cluster.status()
        ha_report["up"] = ha_report["monitor"]["answers"] and cluster.primary() is not None
        comps["postgres"] = {"ha": True, **ha_report}
    elif pg.get("external"):
        comps["postgres"] = {"external": True}
    elif pg.get("port"):
        comps["postgres"] = {"port": pg["port"], "up": port_open("127.0.0.1", pg["port"])}
    mq = state.get("mqtt") or {}
    if mq.get("external"):
        comps["mqtt"] = {"external": True}
    elif mq.get("port"):
        comps["mqtt"] = {
            "port": mq["port"],
            "pid": mq.get("pid"),
            "up": pid_alive(mq.get("pid")) and port_open("127.0.0.1", mq["port"]),
        }
    for name, svc in (state.get("services") or {}).items():
        comps[name] = {"pid": svc.get("pid"), "up": pid_alive(svc.get("pid")), "log": svc.get("log")}
        if svc.get("metrics_port"):
            comps[name]["metrics_url"] = svc.get("metrics_url")
            comps[name]["ready"] = _ready(int(svc["metrics_port"])) if comps[name]["up"] else False
    report["running"] = bool(comps) and all(c.get("up", True) for c in comps.values())
    for key in ("database_url", "mqtt_host", "mqtt_port", "mqtts_port", "tls_ca_file", "api_url"):
        report[key] = state.get(key)
    if report["database_url"]:
        report["database_url"] = _mask_password(report["database_url"])
    return report


def _ready(metrics_port: int) -> bool:
    """Whether a service's /readyz answers 200 (PostgreSQL reachable, broker connected where it needs one)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/readyz", timeout=3) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _mask_password(url: str) -> str:
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme_user = head.rsplit(":", 1)[0]
    return f"{scheme_user}:***@{tail}"


def down(home: Path) -> None:
    paths = StackPaths(home)
    state = load_state(paths)
    if not state:
        _say("nothing to stop")
        return
    _note_stop(paths)
    for name, svc in (state.get("services") or {}).items():
        _stop_pid(svc.get("pid"), name)
    state["services"] = {}
    state.pop("api_url", None)
    mq = state.get("mqtt") or {}
    if not mq.get("external"):
        _stop_pid(mq.get("pid"), "Mosquitto")
        mq.pop("pid", None)
    _stop_postgres(state)
    cluster = ha_cluster(home)
    if cluster is not None:
        cluster.state = state["ha"]
        cluster.stop()
        _say("PostgreSQL formation: stopped")
    _write_private_json(paths.stack_file, state)


def _note_stop(paths: StackPaths) -> None:
    """Append who stopped the stack (time, pid, command line, call site) to logs/stack-stops.log: a stack stopped
    under running tests or a running demo must be explainable afterwards."""
    import traceback

    with contextlib.suppress(OSError):
        paths.logs.mkdir(parents=True, exist_ok=True)
        where = "".join(traceback.format_stack(limit=12)[:-2])
        with (paths.logs / "stack-stops.log").open("a") as out:
            out.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} pid={os.getpid()} argv={sys.argv!r}\n{where}\n")


@contextlib.contextmanager
def running(home: Path, *, services: bool = True, ha: bool = False) -> Iterator[dict[str, Any]]:
    """Bring the stack up for the duration of a block, stopping only what this block started."""
    before = status(home)
    try:
        state = up(home, services=services, ha=ha)
    except BaseException:
        if not before["running"]:
            down(home)  # what a failed start left running
        raise
    try:
        yield state
    finally:
        if not before["running"]:
            down(home)


# --- fault control (used by the fault tests and by operators restarting one part) ------------------------------


def kill_service(home: Path, name: str, sig: int = signal.SIGKILL) -> int | None:
    """Send `sig` to a platform service (ingest, rules, api); returns the pid signalled."""
    paths = StackPaths(home)
    state = load_state(paths)
    pid: int | None = ((state.get("services") or {}).get(name) or {}).get("pid")
    if pid is None or not pid_alive(pid):
        return None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    _wait_until(lambda: not pid_alive(pid), 30, f"{name} to exit")
    return pid


def start_service(home: Path, name: str) -> None:
    paths = StackPaths(home)
    state = load_state(paths)
    _start_services(paths, state, [name])
    _write_private_json(paths.stack_file, state)


def stop_broker(home: Path) -> None:
    """Stop Mosquitto cleanly (it saves its persistent sessions and retained messages); its port stays reserved."""
    paths = StackPaths(home)
    state = load_state(paths)
    mq = state.get("mqtt") or {}
    _stop_pid(mq.get("pid"), "Mosquitto")
    mq.pop("pid", None)
    _write_private_json(paths.stack_file, state)


def start_broker(home: Path) -> None:
    """Start Mosquitto again on the port it had."""
    paths = StackPaths(home)
    state = load_state(paths)
    secret = _read_json(paths.secrets_file)
    _start_mosquitto(paths, state, secret, _service_user())
    _write_private_json(paths.stack_file, state)


def restart_broker(home: Path) -> None:
    """Stop Mosquitto cleanly and start it again on the same port."""
    stop_broker(home)
    start_broker(home)


def stop_postgres(home: Path) -> None:
    """Fast shutdown of the private PostgreSQL (fault tests: an outage of a chosen length)."""
    _stop_postgres(load_state(StackPaths(home)))


def start_postgres(home: Path) -> None:
    """Start the private PostgreSQL again on the same port."""
    paths = StackPaths(home)
    state = load_state(paths)
    _start_postgres(paths, state, _read_json(paths.secrets_file), _service_user())
    _write_private_json(paths.stack_file, state)


def restart_postgres(home: Path) -> None:
    """Fast shutdown and start of the private PostgreSQL on the same port."""
    paths = StackPaths(home)
    state = load_state(paths)
    _stop_postgres(state)
    secret = _read_json(paths.secrets_file)
    _start_postgres(paths, state, secret, _service_user())
    _write_private_json(paths.stack_file, state)
