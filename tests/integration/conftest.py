"""The integration tests' fixtures (`stack`, `settings`, `db`, `make_tenant`, `api_url`) live in the
`tests.stack_plugin` pytest plugin, registered once in tests/conftest.py, so every directory shares one session stack
per process. The helpers are re-exported here for the tests that import them from this module."""

from __future__ import annotations

from tests.stack_plugin import Gateway, Tenant, instance_logins, login, publish, publish_all, wait_for

__all__ = ["Gateway", "Tenant", "instance_logins", "login", "publish", "publish_all", "wait_for"]
