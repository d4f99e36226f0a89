"""Fixtures for the edge tests; the helpers they use live in `edge_fixtures.py`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_fixtures import MOSQUITTO, Broker, Collector


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if not MOSQUITTO.exists():
        pytest.fail(f"{MOSQUITTO} is required for the integration tests (apt-get install mosquitto)")
    b = Broker(tmp_path / "broker")
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def collector(broker: Broker) -> Iterator[Collector]:
    c = Collector(broker.port)
    try:
        yield c
    finally:
        c.close()
