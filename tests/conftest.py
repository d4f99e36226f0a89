"""Shared fixtures. Integration tests run against a private local stack under `.varde/test` (real PostgreSQL and
Mosquitto, plus the platform services), started once per session and stopped at the end if this run started it."""

from __future__ import annotations

import os
from pathlib import Path

# The test stack lives apart from a developer's demo stack; set before any settings are read.
# Under pytest-xdist each worker gets a stack of its own, so workers never share a database or a broker. The
# controller process sets the default first and its workers inherit it, so a worker replaces exactly that default.
_DEFAULT_HOME = str(Path(__file__).resolve().parent.parent / ".varde" / "test")
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if os.environ.setdefault("VARDE_HOME", _DEFAULT_HOME) == _DEFAULT_HOME and _WORKER:
    os.environ["VARDE_HOME"] = f"{_DEFAULT_HOME}-{_WORKER}"

# The stack fixtures, shared by integration, API, browser, patient and citizen tests: one plugin, so pytest holds one
# definition of each session fixture (a conftest importing another's fixture made a second session stack fixture).
pytest_plugins = ["tests.stack_plugin"]
