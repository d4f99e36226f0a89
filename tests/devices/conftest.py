"""The device-handler suites run over both links: the in-process Python medium and Bumble's real ATT/GATT/SMP."""

from __future__ import annotations

import pytest
from device_fixtures import LINKS


@pytest.fixture(params=LINKS)
def link(request: pytest.FixtureRequest) -> str:
    return str(request.param)
