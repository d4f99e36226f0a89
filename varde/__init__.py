"""The `varde` command line: one console script whose sub-commands import their package lazily."""

__version__ = "0.1.0"
