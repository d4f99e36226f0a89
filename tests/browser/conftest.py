"""The fixtures of tests/browser/ for pytest. They and the helpers beside them live in
`tests.browser.support`, which the tests import (no test imports a conftest module)."""

from tests.browser.support import browser, page, playwright

__all__ = ["browser", "page", "playwright"]
