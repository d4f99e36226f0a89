"""Dependency audit for `make audit`: pip-audit over the installed environment, failing on any known vulnerability
that is not on the explicit ignore list (`--ignore-vuln ID`, passed through from the Makefile).

Some package indexes (mirrors) serve PyPI's project JSON but not the per-version JSON that pip-audit asks for, and
pip-audit then skips the package ("not found on PyPI") and reports success. A skip is not a pass: for each skipped
package whose installed version is the index's latest release, the advisories PyPI lists for that release (the
`vulnerabilities` of the project JSON) are checked instead. Packages that still cannot be audited (older than the
index's latest release, e.g. because the latest needs a newer Python) are listed; the run fails on any known
vulnerability, and when no package at all could be audited.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

PYPI = "https://pypi.org/pypi"
_NOT_ON_PYPI = "Dependency not found on PyPI"


def _pip_audit(ignored: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner", "off", "--skip-editable"]
    for vuln_id in ignored:
        command += ["--ignore-vuln", vuln_id]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if not done.stdout.strip():
        raise SystemExit(f"pip-audit failed (exit {done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _latest_release_advisories(name: str) -> tuple[str, list[dict[str, Any]] | None]:
    """The index's latest version of `name` and PyPI's advisories for it (None when unreachable)."""
    try:
        with urllib.request.urlopen(f"{PYPI}/{name}/json", timeout=30) as response:  # noqa: S310 (fixed https URL)
            doc = json.load(response)
    except OSError as exc:
        return f"unreachable ({exc})", None
    return str(doc["info"]["version"]), [v for v in doc.get("vulnerabilities") or [] if not v.get("withdrawn")]


def _is_ignored(advisory: dict[str, Any], ignored: set[str]) -> bool:
    return bool({advisory.get("id"), *advisory.get("aliases", [])} & ignored)


@dataclass
class Verdict:
    audited: int = 0
    vulnerable: list[str] = field(default_factory=list)
    not_audited: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.vulnerable) or self.audited == 0


def judge(
    report: dict[str, Any], latest: Callable[[str], tuple[str, list[dict[str, Any]] | None]], ignored: set[str]
) -> Verdict:
    """Known vulnerabilities from pip-audit's JSON report, with PyPI's latest-release advisories standing in for the
    packages pip-audit skipped as not found. `latest(name)` gives the index's latest version and its advisories."""
    verdict = Verdict()
    skipped: list[tuple[str, str]] = []
    for dep in report["dependencies"]:
        reason = dep.get("skip_reason")
        if reason and "editable" in reason:
            continue  # our own package, installed from the checkout
        if reason:
            version = reason.rsplit("(", 1)[-1].rstrip(")") if reason.startswith(_NOT_ON_PYPI) else "?"
            skipped.append((dep["name"], version))
            continue
        verdict.audited += 1
        verdict.vulnerable += [
            f"{dep['name']} {dep['version']}: {v['id']} (fixed in {', '.join(v['fix_versions']) or '-'})"
            for v in dep["vulns"]
        ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(latest, [name for name, _ in skipped]))
    for (name, version), (newest, advisories) in zip(skipped, answers, strict=True):
        if advisories is None or newest != version:
            verdict.not_audited.append(f"{name} {version} (index latest: {newest})")
            continue
        verdict.audited += 1
        verdict.vulnerable += [
            f"{name} {version}: {a['id']} (fixed in {', '.join(a.get('fixed_in') or []) or '-'})"
            for a in advisories
            if not _is_ignored(a, ignored)
        ]
    return verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ignore-vuln", action="append", default=[], metavar="ID")
    args = parser.parse_args(argv)
    ignored: list[str] = args.ignore_vuln

    verdict = judge(_pip_audit(ignored), _latest_release_advisories, set(ignored))
    print(
        f"dependency audit: {verdict.audited} packages audited, {len(verdict.vulnerable)} known vulnerabilities, "
        f"{len(verdict.not_audited)} not auditable, {len(ignored)} advisories ignored"
    )
    for line in verdict.vulnerable:
        print(f"  VULNERABLE {line}")
    for line in verdict.not_audited:
        print(f"  not audited: {line}; the index gives advisories for its latest release only")
    if verdict.audited == 0:
        print("  FAILED: no package could be audited (is pypi.org reachable?)")
    return 1 if verdict.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
