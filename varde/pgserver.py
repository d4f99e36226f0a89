"""What the local stack's PostgreSQL servers need beyond the server itself: the extension packages (pg_partman,
pgaudit, pgBackRest, and pg_auto_failover for `--ha`) for the installed major version, and the server settings
that load pgaudit and archive WAL to the pgBackRest repository. Shared by the single server and the HA nodes."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PGAUDIT_LOG = "ddl, role, misc_set"
PGAUDIT_ROLE = "varde_auditor"  # object auditing: its privileges on audit_log say what is logged (migration 0220)


@dataclass(frozen=True, slots=True)
class ServerFiles:
    bindir: Path

    @property
    def major(self) -> int:
        return int(self.bindir.parent.name)

    def _config(self, flag: str) -> Path:
        out = subprocess.run([str(self.bindir / "pg_config"), flag], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
        return (
            Path(f"/usr/share/postgresql/{self.major}")
            if flag == "--sharedir"
            else Path(f"/usr/lib/postgresql/{self.major}/lib")
        )

    def has_extension(self, name: str) -> bool:
        return (self._config("--sharedir") / "extension" / f"{name}.control").is_file()

    def has_library(self, name: str) -> bool:
        return (self._config("--pkglibdir") / f"{name}.so").is_file()


def missing_packages(files: ServerFiles, *, ha: bool = False) -> list[str]:
    """Debian packages the stack needs that are not installed."""
    missing: list[str] = []
    if not files.has_extension("pg_partman"):
        missing.append(f"postgresql-{files.major}-partman")
    if not files.has_library("pgaudit"):
        missing.append(f"postgresql-{files.major}-pgaudit")
    if not shutil.which("pgbackrest"):
        missing.append("pgbackrest")
    if ha:
        if not files.has_extension("pgautofailover"):
            missing.append(f"postgresql-{files.major}-auto-failover")
        if not shutil.which("pg_autoctl"):
            missing.append("pg-auto-failover-cli")
    return missing


def audit_settings() -> dict[str, str]:
    """pgaudit preloaded and logging to the server log DDL, role changes, SET (SET ROLE among them), and every
    UPDATE or DELETE on audit_log."""
    return {
        "shared_preload_libraries": "pgaudit",
        "pgaudit.log": PGAUDIT_LOG,
        "pgaudit.log_relation": "off",
        "pgaudit.role": PGAUDIT_ROLE,
    }


def archive_settings(pgbackrest_config: Path, stanza: str) -> dict[str, str]:
    """WAL archived to the pgBackRest repository as each segment fills (and at most a minute after a write)."""
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": f"pgbackrest --config={pgbackrest_config} --stanza={stanza} archive-push %p",
        "archive_timeout": "60",
    }


def as_options(settings: dict[str, str]) -> list[str]:
    """`-c name=value` arguments for the postgres command line."""
    args: list[str] = []
    for name, value in settings.items():
        args += ["-c", f"{name}={value}"]
    return args
