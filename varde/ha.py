"""High availability for the local stack (`varde stack up --ha`) with pg_auto_failover: a monitor and two data
nodes, a primary and a synchronous standby, on free loopback ports, each run by its own `pg_autoctl run` supervisor
as the service user. The services connect with the formation's multi-host URL (`target_session_attrs=read-write`),
so after a failover their new connections find the new primary; a commit is acknowledged only once the standby has
the WAL (synchronous replication), so a reading PUBACKed before the primary died is on the node that takes over.

The monitor's health checks are tightened for a machine where the nodes share one host (failover within about ten
seconds instead of half a minute); production keeps pg_auto_failover's defaults (docs/operations.md, deploy/ha/).

Its statements (role passwords, server settings, the monitor's node table, whether a node answers) are
`store.server`'s.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from store import server
from varde import pgserver

MONITOR = "monitor"
NODES = ("node1", "node2")
FORMATION = "default"
MONITOR_DB = "pg_auto_failover"

# Monitor settings for failover on one machine (pg_auto_failover's defaults: 5 s period, 20 s unhealthy, 30 s demote).
FAST_FAILOVER = {
    "pgautofailover.health_check_period": "1000",
    "pgautofailover.health_check_timeout": "1000",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "500",
    "pgautofailover.node_considered_unhealthy_timeout": "3000",
    "pgautofailover.primary_demote_timeout": "5000",
}
# Small instances: pg_autoctl would size shared_buffers for a host of their own.
NODE_TUNING = {
    "shared_buffers": "'128MB'",
    "work_mem": "'4MB'",
    "maintenance_work_mem": "'64MB'",
    "effective_cache_size": "'512MB'",
    "max_connections": "200",
}


class HAError(RuntimeError):
    """The HA cluster cannot start or answer; the message names the step and the log to read."""


class Cluster:
    """The three instances under `<data_root>/ha`: their directories, ports, environment and processes."""

    def __init__(self, data_root: Path, state: dict[str, Any], user: pwd.struct_passwd | None, bindir: Path) -> None:
        self.base = data_root / "ha"
        self.state = state.setdefault("ha", {})
        self.user = user
        self.bindir = bindir
        self.logs = self.base / "logs"
        self.sockdir = self.base / "run"

    # --- plumbing -----------------------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.bindir}:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(self.base),
            "USER": self.user.pw_name if self.user else os.environ.get("USER", ""),
            "XDG_CONFIG_HOME": str(self.base / "config"),
            "XDG_DATA_HOME": str(self.base / "share"),
            "XDG_RUNTIME_DIR": str(self.base / "xdg-run"),
            "PGPASSFILE": str(self.base / "pgpass"),
            "PGHOST": str(self.sockdir),
            "PG_CONFIG": str(self.bindir / "pg_config"),
            "LANG": "C.UTF-8",
        }

    def _as_user(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def run(self, args: list[str], what: str, timeout: float = 300) -> str:
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=str(self.base),
            timeout=timeout,
            check=False,
            **self._as_user(),
        )
        if done.returncode != 0:
            raise HAError(f"{what} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")
        return str(done.stdout)

    def pgdata(self, name: str) -> Path:
        return self.base / name

    def port(self, name: str) -> int:
        return int(self.state[name]["port"])

    def _chown(self, path: Path) -> None:
        if self.user is not None and path.is_file():
            os.chown(path, self.user.pw_uid, self.user.pw_gid)
        elif self.user is not None:
            for dirpath, _dirs, files in os.walk(path):
                os.chown(dirpath, self.user.pw_uid, self.user.pw_gid)
                for f in files:
                    with contextlib.suppress(FileNotFoundError):
                        os.chown(os.path.join(dirpath, f), self.user.pw_uid, self.user.pw_gid)

    def prepare(self, passwords: dict[str, str], free_port: Any) -> None:
        for sub in ("config", "share", "xdg-run", "logs", "run"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.sockdir, 0o700)  # local connections are trusted: only the service user reaches the sockets
        pgpass = self.base / "pgpass"
        pgpass.write_text(
            "".join(
                f"*:*:*:{role}:{passwords[key]}\n"
                for role, key in (
                    ("autoctl_node", "ha_monitor_password"),
                    ("pgautofailover_replicator", "ha_replication_password"),
                    ("varde", "postgres_password"),
                )
            )
        )
        os.chmod(pgpass, 0o600)
        for name in (MONITOR, *NODES):
            entry = self.state.setdefault(name, {})
            if not entry.get("port"):
                entry["port"] = free_port()
        self._chown(self.base)

    def local(self, name: str, dbname: str = "postgres") -> psycopg.Connection[Any]:
        """A connection over the node's socket as the cluster's superuser (trusted locally)."""
        return psycopg.connect(
            host=str(self.sockdir),
            port=self.port(name),
            user="varde",
            dbname=dbname,
            autocommit=True,
            connect_timeout=3,
        )

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def _initdb(self, name: str, password: str) -> None:
        pgdata = self.pgdata(name)
        pgdata.mkdir(parents=True, exist_ok=True)
        self._chown(pgdata)
        os.chmod(pgdata, 0o700)
        pwfile = self.base / f".{name}-pw"
        pwfile.write_text(password)
        self._chown(pwfile)
        os.chmod(pwfile, 0o600)
        try:
            self.run(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(pgdata),
                    "-U",
                    "varde",
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ],
                f"initdb of {name}",
            )
        finally:
            pwfile.unlink()
        with open(pgdata / "postgresql.conf", "a") as conf:
            conf.write(f"unix_socket_directories = '{self.sockdir}'\n")
        settings = dict(NODE_TUNING)
        if name != MONITOR:
            settings.update({k: f"'{v}'" for k, v in pgserver.audit_settings().items()})
            # Copied to the standby by its base backup; only the primary archives (archive_mode = on).
            archive = pgserver.archive_settings(self.base.parent / "backup" / "pgbackrest.conf", "varde")
            settings.update({k: f"'{v}'" for k, v in archive.items()})
        with open(pgdata / "postgresql.auto.conf", "a") as auto:
            auto.writelines(f"{k} = {v}\n" for k, v in settings.items())
        self._chown(pgdata)

    def start(self, name: str) -> None:
        entry = self.state[name]
        if _alive(entry.get("pid")):
            return
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child process
        proc = subprocess.Popen(
            ["pg_autoctl", "run", "--pgdata", str(self.pgdata(name))],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=self.env(),
            cwd=str(self.base),
            start_new_session=True,
            **self._as_user(),
        )
        log.close()
        entry["pid"] = proc.pid

    def monitor_uri(self) -> str:
        return f"postgres://autoctl_node@127.0.0.1:{self.port(MONITOR)}/{MONITOR_DB}?sslmode=require"

    def start_monitor(self, passwords: dict[str, str]) -> None:
        pgdata = self.pgdata(MONITOR)
        if not (pgdata / "postgresql-auto-failover.conf").exists():
            if not (pgdata / "PG_VERSION").exists():
                self._initdb(MONITOR, passwords["postgres_password"])
            self.run(
                [
                    "pg_autoctl",
                    "create",
                    "monitor",
                    "--pgdata",
                    str(pgdata),
                    "--pgport",
                    str(self.port(MONITOR)),
                    "--hostname",
                    "127.0.0.1",
                    "--auth",
                    "scram-sha-256",
                    "--ssl-self-signed",
                ],
                "pg_autoctl create monitor",
            )
            self.run(
                ["pg_autoctl", "config", "set", "--pgdata", str(pgdata), "postgresql.listen_addresses", "127.0.0.1"],
                "pg_autoctl config set (monitor)",
            )
        self.start(MONITOR)
        self._wait(lambda: self._answers(MONITOR, MONITOR_DB), 120, "the pg_auto_failover monitor", MONITOR)
        with self.local(MONITOR, MONITOR_DB) as conn:
            server.set_role_password(conn, "autoctl_node", passwords["ha_monitor_password"])
            server.set_server_settings(conn, FAST_FAILOVER)

    def start_node(self, name: str, passwords: dict[str, str], database: str) -> None:
        """Create the node in the formation if it is new (the first one becomes primary, the next one its standby
        by pg_basebackup) and run it; a node created earlier is left for the caller to start."""
        pgdata = self.pgdata(name)
        if not (pgdata / "postgresql-auto-failover.conf").exists():
            first = name == NODES[0] and not self._registered()
            if first and not (pgdata / "PG_VERSION").exists():
                self._initdb(name, passwords["postgres_password"])
            self.run(
                [
                    "pg_autoctl",
                    "create",
                    "postgres",
                    "--pgdata",
                    str(pgdata),
                    "--pgport",
                    str(self.port(name)),
                    "--listen",
                    "127.0.0.1",
                    "--hostname",
                    "127.0.0.1",
                    "--username",
                    "varde",
                    "--dbname",
                    database,
                    "--name",
                    name,
                    "--formation",
                    FORMATION,
                    "--monitor",
                    self.monitor_uri(),
                    "--auth",
                    "scram-sha-256",
                    "--ssl-self-signed",
                ],
                f"pg_autoctl create postgres ({name})",
                timeout=600,
            )
            self.start(name)
            self._wait(lambda: self._answers(name), 180, f"data node {name}", name)

    def set_replication_passwords(self, passwords: dict[str, str]) -> None:
        # A new formation's first node is "single" and not yet health-checked: it is the one to set it on.
        primary = self.primary() or NODES[0]
        if not self._answers(primary):
            return  # an existing formation coming back: the password was set when it was made
        with self.local(primary) as conn:
            server.set_role_password(conn, "pgautofailover_replicator", passwords["ha_replication_password"])

    def wait_for_roles(self, timeout: float = 180) -> None:
        """Until one node is primary and the other secondary (synchronous replication in place)."""

        def settled() -> bool:
            states = sorted(
                str(n.get("reported_state")) for n in self.nodes() if n.get("reported_state") == n.get("assigned_state")
            )
            # The monitor remembers the states reported before a stop: the nodes must answer as well.
            return states == ["primary", "secondary"] and all(self._answers(n) for n in NODES)

        self._wait(settled, timeout, "a primary and a synchronous standby", MONITOR)

    def stop(self) -> None:
        """Standby, primary, monitor: each supervisor stops its PostgreSQL with a fast shutdown."""
        primary = self.primary()
        order = [n for n in NODES if n != primary] + ([primary] if primary else []) + [MONITOR]
        for name in order:
            pid = (self.state.get(name) or {}).get("pid")
            if pid is not None and _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 60
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.2)
                if _alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
            (self.state.get(name) or {}).pop("pid", None)

    def kill(self, name: str) -> int:
        """SIGKILL a node's supervisor and its PostgreSQL (the whole process group): the host died."""
        pid = int(self.state[name]["pid"])
        postmaster = _postmaster_pid(self.pgdata(name))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        if postmaster and _alive(postmaster):
            with contextlib.suppress(ProcessLookupError):
                os.kill(postmaster, signal.SIGKILL)
        self.state[name].pop("pid", None)
        return postmaster or pid

    # --- what the monitor knows ---------------------------------------------------------------------------------

    def _registered(self) -> bool:
        try:
            return bool(self.nodes())
        except (HAError, psycopg.Error):
            return False

    def nodes(self) -> list[dict[str, Any]]:
        """The monitor's view: name, port, reported and assigned state, health."""
        with self.local(MONITOR, MONITOR_DB) as conn:
            found = server.failover_nodes(conn, FORMATION)
        return [
            {
                "name": n.name,
                "port": n.port,
                "reported_state": n.reported_state,
                "assigned_state": n.assigned_state,
                "healthy": n.health == 1,
            }
            for n in found
        ]

    def primary(self) -> str | None:
        try:
            for node in self.nodes():
                if node["assigned_state"] in ("primary", "wait_primary", "single") and node["healthy"]:
                    return str(node["name"])
        except psycopg.Error:
            return None
        return None

    def database_url(self, password: str, database: str) -> str:
        hosts = ",".join(f"127.0.0.1:{self.port(n)}" for n in NODES)
        return f"postgresql://varde:{password}@{hosts}/{database}?target_session_attrs=read-write&sslmode=require"

    def status(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "monitor": {
                "port": self.state.get(MONITOR, {}).get("port"),
                "up": _alive(self.state.get(MONITOR, {}).get("pid")),
            }
        }
        try:
            known = {n["name"]: n for n in self.nodes()}
            report["monitor"]["answers"] = True
        except psycopg.Error:
            known = {}
            report["monitor"]["answers"] = False
        for name in NODES:
            entry = self.state.get(name) or {}
            node = known.get(name, {})
            report[name] = {
                "port": entry.get("port"),
                "up": _alive(entry.get("pid")),
                "role": node.get("reported_state", "unknown"),
                "assigned": node.get("assigned_state", "unknown"),
                "healthy": node.get("healthy", False),
            }
        return report

    # --- waiting ------------------------------------------------------------------------------------------------

    def _answers(self, name: str, dbname: str = "postgres") -> bool:
        try:
            with self.local(name, dbname) as conn:
                return server.answers(conn)
        except psycopg.Error:
            return False

    def _wait(self, check: Any, timeout: float, what: str, log_of: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except (psycopg.Error, HAError):
                pass
            pid = (self.state.get(log_of) or {}).get("pid")
            if pid and not _alive(pid):
                raise HAError(f"{what}: pg_autoctl exited; see {self.logs / (log_of + '.log')}")
            time.sleep(0.5)
        raise HAError(f"timed out after {timeout:.0f} s waiting for {what}; see {self.logs / (log_of + '.log')}")


def start_cluster(
    data_root: Path,
    state: dict[str, Any],
    secret: dict[str, Any],
    user: pwd.struct_passwd | None,
    bindir: Path,
    database: str,
    free_port: Any,
) -> Cluster:
    """Start (or confirm) the monitor and both nodes; returns with a primary and a synchronous standby."""
    import secrets as _secrets

    for key in ("postgres_password", "ha_monitor_password", "ha_replication_password"):
        secret.setdefault(key, _secrets.token_urlsafe(24))
    passwords = {k: str(secret[k]) for k in ("postgres_password", "ha_monitor_password", "ha_replication_password")}
    cluster = Cluster(data_root, state, user, bindir)
    cluster.prepare(passwords, free_port)
    cluster.start_monitor(passwords)
    cluster.start_node(NODES[0], passwords, database)
    cluster.set_replication_passwords(passwords)
    cluster.start_node(NODES[1], passwords, database)
    # An existing formation: both supervisors at once, since either node may be the primary the other waits for.
    for name in NODES:
        cluster.start(name)
    cluster.wait_for_roles()
    _ensure_backup_repository(cluster, state, passwords["postgres_password"])
    return cluster


def _ensure_backup_repository(cluster: Cluster, state: dict[str, Any], password: str) -> None:
    """One pgBackRest stanza for both data nodes: WAL from whichever is primary, backups from the primary."""
    from varde import backup

    first, *rest = NODES
    config = backup.write_local_config(
        cluster.base.parent,
        cluster.pgdata(first),
        cluster.port(first),
        cluster.sockdir,
        "varde",
        more=[(cluster.pgdata(n), cluster.port(n)) for n in rest],
    )
    cluster._chown(cluster.base.parent / "backup")
    repo = backup.Repository(config, run_as=cluster.user.pw_name if cluster.user else None, password=password)
    state["backup"] = {"config": str(config), "stanza": repo.stanza, "run_as": repo.run_as}
    try:
        backup.ensure_stanza(repo)
    except backup.BackupError as exc:
        raise HAError(f"pgBackRest stanza for the formation: {exc}") from exc


# --- fault control on a running stack (the failover drill) ----------------------------------------------------


def _with_cluster(home: Path, act: Any) -> Any:
    from varde import stack

    cluster = stack.ha_cluster(home)
    if cluster is None:
        raise HAError(f"{home} was not started with --ha")
    try:
        return act(cluster)
    finally:
        state = stack.load_state(stack.StackPaths(home))
        state["ha"] = cluster.state
        stack._write_private_json(stack.StackPaths(home).stack_file, state)


def kill_node(home: Path, name: str) -> int:
    """SIGKILL a data node's supervisor and postmaster (the host dies); returns the postmaster's pid."""
    return int(_with_cluster(home, lambda c: c.kill(name)))


def restart_node(home: Path, name: str) -> None:
    """Start a node's `pg_autoctl run` again: a demoted primary rejoins as standby (pg_rewind if needed)."""
    _with_cluster(home, lambda c: c.start(name))


def _alive(pid: int | None) -> bool:
    from varde.stack import pid_alive

    return pid_alive(pid)


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
