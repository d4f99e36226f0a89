"""Shared fixtures. Integration tests run against a private local stack under `.varde/test` (real PostgreSQL and
Mosquitto, plus the platform services), started once per session and stopped at the end if this run started it."""

from __future__ import annotations

import os
from pathlib import Path

# The test stack lives apart from a developer's demo stack; set before any settings are read.
os.environ.setdefault("VARDE_HOME", str(Path(__file__).resolve().parent.parent / ".varde" / "test"))
