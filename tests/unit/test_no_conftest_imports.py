"""Shared test fixtures come through pytest (the `tests.stack_plugin` plugin, a directory's conftest) and shared
helpers from ordinary modules (`tests/**/support.py`): no test module imports a conftest module, whose fixtures would
then be registered twice. Fed an offending module to show the check can fail."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def conftest_imports(sources: dict[str, str]) -> list[str]:
    found = []
    for path, text in sorted(sources.items()):
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[-1] == "conftest":
                found.append(f"{path}: {node.module}")
            elif isinstance(node, ast.Import):
                found += [f"{path}: {a.name}" for a in node.names if a.name.split(".")[-1] == "conftest"]
    return found


def test_no_test_module_imports_a_conftest() -> None:
    sources = {str(p.relative_to(TESTS)): p.read_text() for p in sorted(TESTS.rglob("*.py"))}
    assert len(sources) > 100
    assert conftest_imports(sources) == []


def test_the_check_reports_a_conftest_import() -> None:
    sources = {
        "integration/test_a.py": "from tests.integration.api.conftest import insert_alarm\n",
        "integration/test_b.py": "import tests.browser.conftest\nfrom tests.browser.support import sign_in\n",
    }
    assert conftest_imports(sources) == [
        "integration/test_a.py: tests.integration.api.conftest",
        "integration/test_b.py: tests.browser.conftest",
    ]
