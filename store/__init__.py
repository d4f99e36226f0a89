"""PostgreSQL schema and migrations, the connection pool and the settings shared by the cloud services."""

from store.db import LazyPool, open_pool
from store.migrate import available_migrations, detect_variant, migrate
from store.settings import Settings, get_settings, varde_home

__all__ = [
    "LazyPool",
    "Settings",
    "available_migrations",
    "detect_variant",
    "get_settings",
    "migrate",
    "open_pool",
    "varde_home",
]
