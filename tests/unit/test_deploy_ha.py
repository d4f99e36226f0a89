"""The production notes for HA, backups and retention (deploy/ha/, deploy/prometheus/alerts.yml), checked
statically: the alerts are loaded and use metrics the rules scheduler exports, and every `varde` command the
systemd units run exists with the options they pass."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

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
