"""The gateway stays light: running the agent never imports numpy, FastAPI, psycopg or a cloud package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("numpy", "fastapi", "psycopg", "store", "ingest_service", "rules_engine", "clinician_api")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter (nothing imported by the test process leaks into what it loads)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True)


def test_agent_modules_import_no_cloud_dependencies() -> None:
    code = (
        "import sys, json\n"
        "import edge_agent.cli, edge_agent.agent, edge_agent.links.bleak_link, edge_agent.enrol, varde.cli\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = _run(code)
    loaded = set(json.loads(done.stdout))
    assert "edge_agent" in loaded and "paho" in loaded
    assert loaded.isdisjoint(FORBIDDEN), sorted(loaded & set(FORBIDDEN))


def test_the_bumble_link_imports_no_cloud_dependencies_either() -> None:
    code = (
        "import sys, json\n"
        "import edge_agent.links.bumble_link, edge_agent.agent\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = _run(code)
    loaded = set(json.loads(done.stdout))
    assert "bumble" in loaded
    assert loaded.isdisjoint(FORBIDDEN), sorted(loaded & set(FORBIDDEN))


def test_the_bumble_link_uses_bumbles_builtin_crypto_not_a_second_openssl() -> None:
    code = (
        "import sys, json\n"
        "import edge_agent.agent, edge_agent.links.bumble_link\n"
        "import bumble.crypto\n"
        "print(json.dumps([bumble.crypto.EccKey.__module__, 'cryptography' in sys.modules]))\n"
    )
    done = _run(code)
    assert json.loads(done.stdout) == ["bumble.crypto.builtin", False]
