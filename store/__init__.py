"""PostgreSQL schema and migrations, the connection pool and the settings shared by the cloud services."""

from store.db import close_pool, get_pool, open_pool
from store.migrate import available_migrations, detect_variant, migrate
from store.settings import Settings, get_settings, varde_home

__all__ = [
    "Settings",
    "available_migrations",
    "close_pool",
    "detect_variant",
    "get_pool",
    "get_settings",
    "migrate",
    "open_pool",
    "varde_home",
]
