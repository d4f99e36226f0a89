"""The API's settings: the one cloud settings object, read from the environment and the local stack."""

from store.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]
