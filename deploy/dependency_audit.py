"""Dependency audit for `make audit`: pip-audit over the installed environment, failing on any known vulnerability
that is not on the explicit ignore list (`--ignore-vuln ID`, passed through from the Makefile).

Some package indexes (mirrors) serve PyPI's project JSON but not the per-version JSON that pip-audit asks for, and
pip-audit then skips the package ("not found on PyPI") and reports success. A skip is not a pass: for each skipped
package whose installed version is the index's latest release, the advisories PyPI lists for that release (the
`vulnerabilities` of the project JSON) are checked instead; any package that still cannot be audited fails the run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

PYPI = "https://pypi.org/pypi"


def _pip_audit(ignored: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner", "off", "--skip-editable"]
    for vuln_id in ignored:
        command += ["--ignore-vuln", vuln_id]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if not done.stdout.strip():
        raise SystemExit(f"pip-audit failed (exit {done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _latest_release_advisories(name: str, version: str) -> tuple[str, list[dict[str, Any]] | None]:
    """The index's latest version of `name` and PyPI's advisories for it (None when unreachable)."""
    try:
        with urllib.request.urlopen(f"{PYPI}/{name}/json", timeout=30) as response:  # noqa: S310 (fixed https URL)
            doc = json.load(response)
    except OSError as exc:
        return f"unreachable ({exc})", None
    return str(doc["info"]["version"]), [v for v in doc.get("vulnerabilities") or [] if not v.get("withdrawn")]


def _is_ignored(advisory: dict[str, Any], ignored: set[str]) -> bool:
    return bool({advisory.get("id"), *advisory.get("aliases", [])} & ignored)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ignore-vuln", action="append", default=[], metavar="ID")
    args = parser.parse_args(argv)
    ignored: list[str] = args.ignore_vuln

    report = _pip_audit(ignored)
    found: list[str] = []
    audited = 0
    skipped: list[tuple[str, str]] = []
    for dep in report["dependencies"]:
        if "skip_reason" in dep:
            version = dep["skip_reason"].rsplit("(", 1)[-1].rstrip(")")
            skipped.append((dep["name"], version))
            continue
        audited += 1
        found += [
            f"{dep['name']} {dep['version']}: {v['id']} (fixed in {', '.join(v['fix_versions']) or '—'})"
            for v in dep["vulns"]
        ]

    unaudited: list[str] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        latest = list(pool.map(lambda d: _latest_release_advisories(*d), skipped))
    for (name, version), (newest, advisories) in zip(skipped, latest, strict=True):
        if advisories is None or newest != version:
            unaudited.append(f"{name} {version} (index latest: {newest})")
            continue
        audited += 1
        found += [
            f"{name} {version}: {a['id']} (fixed in {', '.join(a.get('fixed_in') or []) or '—'})"
            for a in advisories
            if not _is_ignored(a, set(ignored))
        ]

    print(
        f"dependency audit: {audited} packages audited, {len(found)} known vulnerabilities, "
        f"{len(unaudited)} not auditable, {len(ignored)} advisories ignored"
    )
    for line in found:
        print(f"  VULNERABLE {line}")
    for line in unaudited:
        print(f"  NOT AUDITED {line}: no per-version advisories from the index; upgrade it or audit with full PyPI")
    return 1 if found or unaudited else 0


if __name__ == "__main__":
    raise SystemExit(main())
