"""The production notes for HA, backups and retention (deploy/ha/, deploy/prometheus/alerts.yml), checked
statically: the alerts are loaded and use metrics the rules scheduler exports, every `varde` command the systemd
units run exists with the options they pass, the pg_auto_failover unit runs the data directories the README creates,
and (where pg_autoctl is installed) every pg_autoctl flag in the README is one pg_autoctl knows."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from varde.cli import app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BACKUP_METRICS = {
    "varde_backup_last_success_timestamp_seconds",
    "varde_backup_age_seconds",
    "varde_backup_max_age_seconds",
    "varde_backup_too_old",
    "varde_wal_archive_last_success_timestamp_seconds",
    "varde_wal_archive_failures",
}


def test_prometheus_loads_the_alerts_and_they_use_exported_backup_metrics() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = {r["alert"]: r for group in rules["groups"] for r in group["rules"]}
    assert {"VardeBackupTooOld", "VardeWalArchivingFailing"} <= alerts.keys()
    for rule in alerts.values():
        used = set(re.findall(r"varde_[a-z_]+", rule["expr"]))
        assert used and used <= BACKUP_METRICS, rule["expr"]


def test_every_varde_command_in_the_systemd_units_exists() -> None:
    units = sorted((DEPLOY / "ha" / "systemd").glob("varde-*.service"))
    assert {u.stem for u in units} == {"varde-backup-full", "varde-backup-incr", "varde-retention"}
    for unit in units:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read_string(unit.read_text())
        args = shlex.split(parser["Service"]["ExecStart"])
        assert args[0].endswith("/varde")
        result = CliRunner().invoke(app, [*args[1:3], "--help"])
        assert result.exit_code == 0, (unit.name, result.output)
        for option in (a for a in args[3:] if a.startswith("--")):
            assert option in result.output, (unit.name, option)
        timer = unit.with_suffix(".timer")
        assert timer.is_file() and "OnCalendar=" in timer.read_text()


HA_README = DEPLOY / "ha" / "README.md"


def _readme_pg_autoctl_commands(text: str) -> list[tuple[list[str], list[str]]]:
    """(sub-command words, --flags) of every `pg_autoctl` line in the README's shell blocks, continuations joined."""
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    commands = []
    for line in "\n".join(blocks).replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("pg_autoctl "):
            continue
        words = line.split()[1:]
        sub = words[: next((i for i, w in enumerate(words) if w.startswith("-")), len(words))]
        commands.append((sub, sorted(set(re.findall(r"(?<!\S)(--[a-z][a-z-]*)", line)))))
    return commands


def test_the_readme_pg_autoctl_lines_are_found() -> None:
    commands = {" ".join(sub): flags for sub, flags in _readme_pg_autoctl_commands(HA_README.read_text())}
    assert {"create monitor", "create postgres", "show uri"} <= commands.keys()
    assert {"--pgdata", "--monitor", "--dbname", "--ssl-mode"} <= set(commands["create postgres"])


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def test_the_pg_auto_failover_unit_supervises_the_data_directories_the_readme_creates() -> None:
    unit = _unit(DEPLOY / "ha" / "systemd" / "pgautofailover@.service")
    service = unit["Service"]
    assert shlex.split(service["ExecStart"])[1:] == ["run"] and shlex.split(service["ExecReload"])[1:] == ["reload"]
    assert shlex.split(service["ExecStart"])[0] == shlex.split(service["ExecReload"])[0] == "/usr/bin/pg_autoctl"
    assert service["Restart"] == "always", "a supervisor that died is started again"
    assert service["User"] == "postgres"
    pgdata = service["Environment"].removeprefix("PGDATA=")
    assert service["WorkingDirectory"] == pgdata and "%i" in pgdata
    assert unit["Install"]["WantedBy"] == "multi-user.target"

    text = HA_README.read_text()
    created = set(re.findall(r"pg_autoctl create \w+ --pgdata (\S+)", text))
    instances = set(re.findall(r"pgautofailover@([a-z0-9_-]+)", text))
    assert instances == {"monitor", "varde"}
    assert {pgdata.replace("%i", name) for name in instances} == created, "each instance runs a created data dir"


def _unknown_flags(sub: list[str], flags: list[str]) -> list[str]:
    """The flags `pg_autoctl SUB --help` does not list (it prints its help on stderr)."""
    done = subprocess.run(["pg_autoctl", *sub, "--help"], capture_output=True, text=True, timeout=30)
    usage = done.stdout + done.stderr
    assert done.returncode == 0 and f"pg_autoctl {' '.join(sub)}" in usage, (sub, usage[:300])
    return [f for f in flags if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", usage)]


needs_pg_autoctl = pytest.mark.skipif(shutil.which("pg_autoctl") is None, reason="pg-auto-failover-cli not installed")


@needs_pg_autoctl
def test_every_pg_autoctl_flag_in_the_readme_is_one_pg_autoctl_knows() -> None:
    assert shutil.which("pg_autoctl") == "/usr/bin/pg_autoctl", "the unit's ExecStart path"
    for sub, flags in [*_readme_pg_autoctl_commands(HA_README.read_text()), (["run"], []), (["reload"], [])]:
        assert not _unknown_flags(sub, flags), f"pg_autoctl {' '.join(sub)}: unknown flags"


@needs_pg_autoctl
def test_the_flag_check_finds_a_flag_pg_autoctl_does_not_know() -> None:
    assert _unknown_flags(["create", "postgres"], ["--pgdata", "--ssl", "--replication-quorum-x"]) == [
        "--ssl",
        "--replication-quorum-x",
    ]


PROMETHEUS = DEPLOY / "prometheus"
DATABASE_RECEIVER = "varde-database-operators"


def _alerts() -> dict[str, dict[str, str]]:
    """Each alert of alerts.yml with the labels Alertmanager routes on."""
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return {r["alert"]: {"alertname": r["alert"], **r.get("labels", {})} for g in rules["groups"] for r in g["rules"]}


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    found = re.fullmatch(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"(.*)"\s*', matcher)
    assert found, f"matcher not understood: {matcher}"
    name, op, want = found.groups()
    have = labels.get(name, "")
    if op in ("=~", "!~"):
        return bool(re.fullmatch(want, have)) == (op == "=~")
    return (have == want) == (op == "=")


def _receiver(route: dict[str, Any], labels: dict[str, str], inherited: str = "") -> str:
    """The receiver Alertmanager's route tree picks: the first child route whose matchers all hold, recursively."""
    receiver = route.get("receiver", inherited)
    for child in route.get("routes", []):
        if all(_matches(m, labels) for m in child.get("matchers", [])):
            return _receiver(child, labels, receiver)
    return receiver


def _unpaged(config: dict[str, Any]) -> list[str]:
    """The database alerts that would not reach the database operators' receiver."""
    database = [a for a in _alerts() if a in ("VardeBackupTooOld", "VardeWalArchivingFailing")]
    return [a for a in database if _receiver(config["route"], _alerts()[a]) != DATABASE_RECEIVER]


def test_alertmanager_routes_the_backup_alerts_to_the_database_operators() -> None:
    config = yaml.safe_load((PROMETHEUS / "alertmanager.yml").read_text())
    assert _unpaged(config) == []
    receivers = {r["name"]: r for r in config["receivers"]}
    for name in {config["route"]["receiver"], *(_receiver(config["route"], labels) for labels in _alerts().values())}:
        assert receivers[name].get("webhook_configs") or receivers[name].get("email_configs"), name
    prometheus = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = [
        t for am in prometheus["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]
    ]
    assert targets == ["alertmanager:9093"], "Prometheus sends its alerts to Alertmanager"


def test_a_backup_alert_left_to_the_default_route_is_found() -> None:
    config = yaml.safe_load((PROMETHEUS / "alertmanager.yml").read_text())
    config["route"]["routes"][0]["matchers"] = ['alertname = "VardeWalArchivingFailing"']
    assert _unpaged(config) == ["VardeBackupTooOld"]


@pytest.mark.skipif(shutil.which("amtool") is None, reason="prometheus-alertmanager (amtool) not installed")
def test_amtool_accepts_the_alertmanager_config_and_routes_as_the_check_above() -> None:
    path = PROMETHEUS / "alertmanager.yml"
    done = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load(path.read_text())
    for labels in _alerts().values():
        pairs = [f"{k}={v}" for k, v in labels.items()]
        routed = subprocess.run(
            ["amtool", "config", "routes", "test", f"--config.file={path}", *pairs],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert routed.returncode == 0 and routed.stdout.split() == [_receiver(config["route"], labels)], routed.stdout
