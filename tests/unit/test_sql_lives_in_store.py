"""The cloud's SQL lives in `store/`: a module of the cloud packages that holds SQL text (a string constant that reads
as a statement, docstrings aside) is reported, unless it is listed in `NOT_YET_MOVED` (empty now: every module has
moved). A listed module that no longer holds SQL is reported too, so the list is kept true.

The gateway's own SQLite (`edge_agent`, its outbox and plan cache) is not the cloud's data and stays where it is;
migrations, benchmarks and tests are not scanned. Fed offending and clean snippets to show it can fail."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

from tests import vocabulary_check

CLOUD_PACKAGES = ("clinician_api", "ingest_service", "rules_engine", "varde")

_STATEMENT = re.compile(
    r"\b(SELECT\s+\S|INSERT INTO|UPDATE \w+ SET|DELETE FROM|COPY \w+|LISTEN \w|NOTIFY \w|CREATE (TEMP )?TABLE|"
    r"ALTER TABLE|TRUNCATE)"
)

NOT_YET_MOVED: frozenset[str] = frozenset()
"""Empty: every statement the cloud side runs is in `store/` (the server's own administration too, `store.server`)."""


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes of the module, its classes and functions."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def holds_sql(source: str) -> list[int]:
    """Lines of the string constants in `source` that read as SQL statements (docstrings aside)."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    return sorted(
        {
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skip
            and _STATEMENT.search(node.value)
        }
    )


def sql_modules(sources: Mapping[str, str]) -> dict[str, list[int]]:
    """Each cloud module outside store/ holding SQL text, with the lines."""
    out: dict[str, list[int]] = {}
    for path, source in sorted(sources.items()):
        if path.split("/", 1)[0] in CLOUD_PACKAGES and (lines := holds_sql(source)):
            out[path] = lines
    return out


def ratchet(found: Mapping[str, list[int]], allowed: frozenset[str]) -> list[str]:
    new = [f"{path}:{lines[0]}: SQL text outside store/" for path, lines in found.items() if path not in allowed]
    moved = [f"{path}: holds no SQL now; take it off NOT_YET_MOVED" for path in sorted(allowed - set(found))]
    return new + moved


def test_sql_text_lives_in_store_apart_from_the_modules_still_listed() -> None:
    assert ratchet(sql_modules(vocabulary_check.python_sources()), NOT_YET_MOVED) == []


def test_a_route_with_a_statement_is_reported_and_a_listed_module_that_moved_is_too() -> None:
    sources = {
        "clinician_api/routes/x.py": (
            '"""Reads the SELECT list of a patient (docstring: not SQL)."""\n'
            "def one(conn, pid):\n"
            '    return conn.execute("SELECT id, display_name FROM patients WHERE id = %s", (pid,)).fetchone()\n'
        ),
        "rules_engine/y.py": 'def f(conn):\n    conn.execute(\n        "UPDATE alarms SET state = %s", ("x",)\n    )\n',
        "store/patients.py": 'ONE = "SELECT id FROM patients WHERE id = %s"\n',
        "edge_agent/outbox.py": 'PUT = "INSERT INTO outbox (id) VALUES (?)"\n',
        "varde/z.py": 'MESSAGE = "select a patient, then update the plan"\n',
    }
    found = sql_modules(sources)
    assert found == {"clinician_api/routes/x.py": [3], "rules_engine/y.py": [3]}
    assert ratchet(found, frozenset({"rules_engine/y.py", "varde/z.py"})) == [
        "clinician_api/routes/x.py:3: SQL text outside store/",
        "varde/z.py: holds no SQL now; take it off NOT_YET_MOVED",
    ]
