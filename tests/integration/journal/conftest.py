"""The fixtures of tests/integration/journal/ for pytest. They and the helpers beside them live in
`tests.integration.journal.support`, which the tests import (no test imports a conftest module)."""

from tests.integration.journal.support import extra_workers, journaled_tenant, record_system

__all__ = ["extra_workers", "journaled_tenant", "record_system"]
