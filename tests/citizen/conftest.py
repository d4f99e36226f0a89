"""The fixtures of tests/citizen/ for pytest. They and the helpers beside them live in
`tests.citizen.support`, which the tests import (no test imports a conftest module)."""

from tests.citizen.support import home, oidc, people

__all__ = ["home", "oidc", "people"]
