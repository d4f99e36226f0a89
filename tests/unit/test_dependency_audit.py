"""`make audit`'s verdict on pip-audit's report (deploy/dependency_audit.py), with the index answers given here."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dependency_audit", ROOT / "deploy" / "dependency_audit.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _skipped(name: str, version: str) -> dict[str, str]:
    return {"name": name, "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} ({version})"}


_ADVISORY = {"id": "PYSEC-2099-1", "aliases": ["CVE-2099-0001"], "fixed_in": ["2.0.1"], "withdrawn": None}


def _index(answers: dict[str, tuple[str, list[dict[str, Any]] | None]]) -> Any:
    return lambda name: answers[name]


def test_a_vulnerability_pip_audit_reports_fails_the_audit(audit: ModuleType) -> None:
    report = {
        "dependencies": [{"name": "jinja2", "version": "3.1.0", "vulns": [{"id": "GHSA-x", "fix_versions": ["3.1.5"]}]}]
    }
    verdict = audit.judge(report, _index({}), set())
    assert verdict.failed and verdict.vulnerable == ["jinja2 3.1.0: GHSA-x (fixed in 3.1.5)"]


def test_a_skipped_package_at_the_latest_release_is_audited_from_the_project_json(audit: ModuleType) -> None:
    report = {"dependencies": [_skipped("starlette", "2.0.0"), _skipped("h11", "0.16.0")]}
    verdict = audit.judge(report, _index({"starlette": ("2.0.0", [_ADVISORY]), "h11": ("0.16.0", [])}), set())
    assert verdict.audited == 2 and verdict.failed
    assert verdict.vulnerable == ["starlette 2.0.0: PYSEC-2099-1 (fixed in 2.0.1)"]


def test_an_ignored_advisory_is_ignored_by_id_or_alias(audit: ModuleType) -> None:
    report = {"dependencies": [_skipped("starlette", "2.0.0")]}
    for ignored in ("PYSEC-2099-1", "CVE-2099-0001"):
        verdict = audit.judge(report, _index({"starlette": ("2.0.0", [_ADVISORY])}), {ignored})
        assert not verdict.failed and verdict.vulnerable == []


def test_an_older_version_than_the_index_has_is_listed_as_not_audited(audit: ModuleType) -> None:
    report = {"dependencies": [_skipped("numpy", "2.4.6"), _skipped("h11", "0.16.0")]}
    verdict = audit.judge(report, _index({"numpy": ("2.5.5", []), "h11": ("0.16.0", [])}), set())
    assert verdict.not_audited == ["numpy 2.4.6 (index latest: 2.5.5)"]
    assert verdict.audited == 1 and not verdict.failed


def test_nothing_audited_is_a_failure_not_a_pass(audit: ModuleType) -> None:
    report = {
        "dependencies": [_skipped("h11", "0.16.0"), {"name": "varde", "skip_reason": "distribution marked as editable"}]
    }
    verdict = audit.judge(report, _index({"h11": ("unreachable (timed out)", None)}), set())
    assert verdict.audited == 0 and verdict.failed


def test_every_ignored_advisory_in_the_makefile_has_a_comment() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:.*\baudit\b", makefile, re.MULTILINE), "make test runs the audit"
    block = makefile[makefile.index("AUDIT_IGNORE :=") :].split("\naudit:")[0]
    for line in block.splitlines()[1:]:
        if "--ignore-vuln" in line:
            assert "#" in line, f"ignored advisory without a reason: {line.strip()}"
