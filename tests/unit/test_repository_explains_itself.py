"""The repository explains itself: code and docs say *why* in their own words, never "see issue 16" — an issue
number means nothing to someone reading the code after the tracker moved or closed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ISSUE_REFERENCE = re.compile(r"\bissues?\s+(?:#\s?)?\d+\b|\bissue\s+#?\d+'s\b|\(#\d+\)", re.IGNORECASE)
CHECKED = (".py", ".md", ".js", ".html", ".css", ".toml", ".sql", ".sh", ".yml", ".yaml", ".json")


def issue_references(text: str) -> list[str]:
    """Every issue-number reference in the text ("issue #11", "Issue 23's", "issues 16", "(#19)")."""
    return [m.group(0) for m in ISSUE_REFERENCE.finditer(text)]


APPLIED = "store/migrations/"
"""Migrations are left out: an applied migration is checksummed and never edited (store/migrate.py refuses a
changed one), so the header comments of the first ones keep what they say."""


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [
        ROOT / line
        for line in listed.splitlines()
        if line.endswith(CHECKED) and "node_modules" not in line and not line.startswith(APPLIED)
    ]


def test_no_file_refers_to_an_issue_number() -> None:
    found = {}
    for path in tracked_files():
        if path == Path(__file__).resolve() or not path.is_file():
            continue
        hits = issue_references(path.read_text(encoding="utf-8", errors="replace"))
        if hits:
            found[str(path.relative_to(ROOT))] = hits
    assert not found, f"issue numbers instead of reasons: {found}"


def test_the_checker_finds_each_way_of_writing_an_issue_number() -> None:
    text = "as issue #11 said; Issue 23's goal; issues 16 and 17; fixed (#19); ISSUE 4"
    assert issue_references(text) == ["issue #11", "Issue 23", "issues 16", "(#19)", "ISSUE 4"]
    assert issue_references("colour #1a2b3c, record #3 of the glucose meter, 16 issues") == []
