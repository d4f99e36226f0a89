"""The fixtures of tests/integration/api/ for pytest. They and the helpers beside them live in
`tests.integration.api.support`, which the tests import (no test imports a conftest module)."""

from tests.integration.api.support import api, two_teams

__all__ = ["api", "two_teams"]
