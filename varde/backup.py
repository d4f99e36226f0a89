"""Backups and point-in-time recovery with pgBackRest: the repository configuration of the local stack, full and
incremental backups (`varde db backup`), restore to a moment into a fresh instance (`varde db restore --to`).

The local stack archives WAL into a repository under its data directory (`.varde/data/backup/repo`); production
points `VARDE_PGBACKREST_CONFIG` at a configuration whose repository is an object store (docs/operations.md). Each
completed backup is recorded in `backup_runs` (`store.backup_status`), so the services report the newest backup's
age in /metrics without access to the repository.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shlex
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import psycopg

from store import server
from varde import pgserver

BackupKind = Literal["full", "diff", "incr"]
STANZA = "varde"


class BackupError(RuntimeError):
    """A backup or restore step failed; the message names the step and pgBackRest's own words."""


@dataclass(frozen=True, slots=True)
class Repository:
    """How to run pgBackRest against one PostgreSQL cluster: its configuration, the stanza, and as whom."""

    config: Path
    stanza: str = STANZA
    run_as: str | None = None
    password: str | None = None

    def run(self, *args: str, timeout: float = 3600) -> str:
        cmd = ["pgbackrest", f"--config={self.config}", f"--stanza={self.stanza}", "--log-level-console=warn", *args]
        env = {**os.environ}
        if self.password:
            env["PGPASSWORD"] = self.password
        kwargs: dict[str, Any] = {}
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[], cwd=str(self.config.parent))
            env.update(HOME=str(self.config.parent), USER=user.pw_name)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False, **kwargs)
        if done.returncode != 0:
            detail = (done.stderr.strip() or done.stdout.strip())[-800:]
            raise BackupError(f"pgbackrest {args[0]} failed (exit {done.returncode}): {detail}")
        return str(done.stdout)

    def info(self) -> list[dict[str, Any]]:
        """pgBackRest's backups of this stanza, oldest first."""
        doc = json.loads(self.run("--output=json", "info"))
        stanza = next((s for s in doc if s.get("name") == self.stanza), None)
        return list(stanza.get("backup", [])) if stanza else []


# --- the local stack's repository -------------------------------------------------------------------------------


def local_config_path(data_root: Path) -> Path:
    return data_root / "backup" / "pgbackrest.conf"


def write_local_config(
    data_root: Path, pgdata: Path, port: int, socket_dir: Path, pg_user: str, *, more: Sequence[tuple[Path, int]] = ()
) -> Path:
    """pgBackRest configuration of the stack's cluster: repository, logs and locks under `data_root/backup`; two full
    backups kept (with their incrementals and the WAL needed to recover to any moment since the older one). `more`:
    the other nodes of an HA formation (pgBackRest backs up whichever is primary)."""
    base = data_root / "backup"
    for sub in ("repo", "log", "lock", "spool"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    config = local_config_path(data_root)
    config.write_text(
        "\n".join(
            [
                "[global]",
                f"repo1-path={base / 'repo'}",
                "repo1-retention-full=2",
                f"log-path={base / 'log'}",
                f"lock-path={base / 'lock'}",
                f"spool-path={base / 'spool'}",
                "compress-type=lz4",
                "start-fast=y",
                "archive-timeout=120",
                "",
                f"[{STANZA}]",
                f"pg1-path={pgdata}",
                f"pg1-port={port}",
                f"pg1-socket-path={socket_dir}",
                f"pg1-user={pg_user}",
                *(
                    line
                    for i, (path, node_port) in enumerate(more, start=2)
                    for line in (
                        f"pg{i}-path={path}",
                        f"pg{i}-port={node_port}",
                        f"pg{i}-socket-path={socket_dir}",
                        f"pg{i}-user={pg_user}",
                    )
                ),
                "",
            ]
        )
    )
    os.chmod(config, 0o600)
    return config


def server_settings(data_root: Path) -> dict[str, str]:
    """The settings the stack's PostgreSQL starts with: pgaudit, and WAL archived to the local repository."""
    return {**pgserver.audit_settings(), **pgserver.archive_settings(local_config_path(data_root), STANZA)}


def ensure_stanza(repo: Repository) -> None:
    """Create the stanza once (idempotent) so the archiver has somewhere to push WAL."""
    repo.run("stanza-create")


def repository_from_state(state: dict[str, Any], postgres_password: str | None) -> Repository | None:
    backup = state.get("backup") or {}
    if not backup.get("config"):
        return None
    return Repository(Path(backup["config"]), backup.get("stanza", STANZA), backup.get("run_as"), postgres_password)


def configured_repository(home: Path, settings: Any) -> Repository | None:
    """The repository backups go to, if any is configured: `VARDE_PGBACKREST_CONFIG`, else the one `varde stack up`
    wrote for the stack in `home`. Needs no PostgreSQL binaries (the rules scheduler asks this)."""
    from varde import stack

    if settings.pgbackrest_config:
        return Repository(Path(settings.pgbackrest_config), settings.pgbackrest_stanza)
    paths = stack.StackPaths(home)
    password = (stack._read_json(paths.secrets_file) or {}).get("postgres_password")
    return repository_from_state(stack.load_state(paths), password)


# --- backup -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackupResult:
    kind: BackupKind
    label: str
    started_at: datetime
    finished_at: datetime
    size_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "size_bytes": self.size_bytes,
        }


def backup(repo: Repository, kind: BackupKind, database_url: str) -> BackupResult:
    """Take a backup and record it in `backup_runs`. An incremental one without a full one before it becomes full
    (pgBackRest's rule), and is recorded as what it became."""
    repo.run(f"--type={kind}", "backup")
    newest = repo.info()[-1]
    result = BackupResult(
        kind=newest["type"],
        label=newest["label"],
        started_at=datetime.fromtimestamp(newest["timestamp"]["start"], UTC),
        finished_at=datetime.fromtimestamp(newest["timestamp"]["stop"], UTC),
        size_bytes=int(newest.get("info", {}).get("size", 0)),
    )
    from store.backup_status import record_run

    with psycopg.connect(database_url) as conn:
        record_run(conn, result.kind, result.label, result.started_at, result.finished_at, str(repo.config))
    return result


# --- restore ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestoredInstance:
    pgdata: Path
    port: int
    database_url: str
    log: Path
    stop_command: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "pgdata": str(self.pgdata),
            "port": self.port,
            "database_url": self.database_url,
            "log": str(self.log),
            "stop_command": self.stop_command,
        }


def restore(
    repo: Repository,
    to: datetime,
    target: Path,
    *,
    bindir: Path,
    port: int,
    socket_dir: Path,
    pg_user: str,
    password: str,
    database: str,
    timeout: float = 600,
) -> RestoredInstance:
    """Restore the cluster as it was at `to` into the empty directory `target` and start it on `port`: recovery
    replays the archived WAL up to `to`, then promotes. The original cluster is not touched."""
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"restore target {target} is not empty")
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    if repo.run_as:
        user = pwd.getpwnam(repo.run_as)
        os.chown(target, user.pw_uid, user.pw_gid)
    os.chmod(target, 0o700)
    when = to.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    repo.run(
        f"--pg1-path={target}",
        "--type=time",
        f"--target={when}",
        "--target-action=promote",
        "--archive-mode=off",
        "restore",
    )
    log = target.parent / f"{target.name}.log"
    log.touch()
    if repo.run_as:
        user = pwd.getpwnam(repo.run_as)
        os.chown(log, user.pw_uid, user.pw_gid)
    # pg_ctl hands -o to a shell: each argument quoted.
    server_args = ["-p", str(port), "-h", "127.0.0.1", "-k", str(socket_dir)]
    # Recovery refuses a lower max_connections than the backed-up server had (the stack's is 200).
    settings = {
        "max_connections": "500",
        "shared_buffers": "128MB",
        "logging_collector": "off",  # the log goes to `log` (an HA node's copy would log inside its data directory)
        **pgserver.audit_settings(),
    }
    options = " ".join(shlex.quote(a) for a in server_args + pgserver.as_options(settings))
    start = [
        str(bindir / "pg_ctl"),
        "-D",
        str(target),
        "-l",
        str(log),
        "-o",
        options,
        "-w",
        "-t",
        "120",
        "start",
    ]
    try:
        _run_tool(repo, start, "pg_ctl start of the restored instance")
    except BackupError as exc:
        raise BackupError(f"{exc}; {_recovery_failure(log)}") from exc
    url = f"postgresql://{pg_user}:{password}@127.0.0.1:{port}/{database}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                if not server.in_recovery(conn):
                    break
        except psycopg.OperationalError:
            pass
        if time.monotonic() > deadline:
            raise BackupError(f"the restored instance did not finish recovery in {timeout:.0f} s; see {log}")
        if not (target / "postmaster.pid").exists():
            raise BackupError(f"the restored instance stopped: {_recovery_failure(log)}")
        time.sleep(0.5)
    stop = f"{bindir / 'pg_ctl'} -D {target} stop -m fast"
    return RestoredInstance(target, port, url, log, stop)


def _recovery_failure(log: Path) -> str:
    """The server's own reason, with the fix for the common one (a moment later than the archived WAL)."""
    fatal = [line for line in log.read_text(errors="replace").splitlines() if "FATAL:" in line]
    reason = fatal[-1].split("FATAL:", 1)[1].strip() if fatal else f"see {log}"
    if "recovery target was reached" in reason:
        reason += (
            " — the archived WAL does not reach past that moment yet (recovery stops at the first commit after it): "
            "wait for archive_timeout (60 s) or call pg_switch_wal() on the primary after a write, "
            "then restore again"
        )
    return reason


def stop_restored(repo: Repository, bindir: Path, target: Path) -> None:
    _run_tool(repo, [str(bindir / "pg_ctl"), "-D", str(target), "-m", "fast", "-w", "stop"], "pg_ctl stop")


def _run_tool(repo: Repository, args: list[str], what: str) -> None:
    kwargs: dict[str, Any] = {}
    if repo.run_as:
        user = pwd.getpwnam(repo.run_as)
        kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[], cwd=str(repo.config.parent))
    done = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise BackupError(f"{what} failed: {(done.stderr.strip() or done.stdout.strip())[-800:]}")


def new_restore_dir(data_root: Path) -> Path:
    return data_root / "restores" / f"restore-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"


# --- what the commands run against ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """The repository and the cluster's login, from VARDE_PGBACKREST_CONFIG or else the local stack's state."""

    repo: Repository
    database_url: str
    bindir: Path
    data_root: Path | None
    socket_dir: Path

    @property
    def login(self) -> dict[str, str]:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(self.database_url)
        return {k: str(parts.get(k) or "") for k in ("user", "password", "dbname")}


def resolve(home: Path, settings: Any) -> Target:
    from varde import stack

    database_url = settings.require_database_url()
    state = stack.load_state(stack.StackPaths(home))
    password = (stack._read_json(stack.StackPaths(home).secrets_file) or {}).get("postgres_password")
    pg = state.get("postgres") or {}
    bindir = Path(pg["bindir"]) if pg.get("bindir") else stack.find_postgres_bin()
    data_root = Path(state["data_root"]) if state.get("data_root") else None
    if settings.pgbackrest_config:
        repo = Repository(Path(settings.pgbackrest_config), settings.pgbackrest_stanza)
        return Target(repo, database_url, bindir, data_root, Path("/var/run/postgresql"))
    if (state.get("postgres") or {}).get("ha") and data_root is not None:
        local = repository_from_state(state, password)
        if local is not None:
            return Target(local, database_url, bindir, data_root, data_root / "ha" / "run")
    local = repository_from_state(state, password)
    if local is None or data_root is None:
        raise BackupError(
            "no backup repository: run `varde stack up` (it configures pgBackRest) or set VARDE_PGBACKREST_CONFIG"
        )
    return Target(local, database_url, bindir, data_root, data_root / "pg-run")
