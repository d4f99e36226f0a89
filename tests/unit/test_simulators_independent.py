"""The simulators are an independent oracle: `device_simulators` may drive the real edge `Agent` (through its link
and source interfaces, the point of a virtual home) but must not make readings or envelopes with the edge's own
code (`edge_agent.gatt.readings`, `edge_agent.publisher`), or a bug there would be copied into what the tests
expect. Fed a module that imports them to show the check can fail."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("edge_agent.gatt.readings", "edge_agent.publisher", "edge_agent.gatt.models")
"""The edge modules that turn measurements into readings and readings into envelopes."""


def borrowed(sources: dict[str, str]) -> list[str]:
    """`path: module` for every import of a forbidden edge module."""
    found = []
    for path, text in sorted(sources.items()):
        for node in ast.walk(ast.parse(text)):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            found += [f"{path}: {n}" for n in names if n.startswith(FORBIDDEN)]
    return found


def test_the_simulators_make_readings_and_envelopes_on_their_own() -> None:
    sources = {str(p.relative_to(ROOT)): p.read_text() for p in sorted((ROOT / "device_simulators").rglob("*.py"))}
    assert len(sources) > 10
    assert borrowed(sources) == []


def test_the_check_reports_a_simulator_that_borrows_the_edge_encoders() -> None:
    sources = {
        "device_simulators/a.py": "from edge_agent.gatt.readings import to_readings\n",
        "device_simulators/b.py": "import edge_agent.publisher\n",
        "device_simulators/c.py": "from edge_agent import gatt\nfrom edge_agent.link import LinkError\n",
    }
    assert borrowed(sources) == [
        "device_simulators/a.py: edge_agent.gatt.readings",
        "device_simulators/a.py: edge_agent.gatt.readings.to_readings",
        "device_simulators/b.py: edge_agent.publisher",
    ]
