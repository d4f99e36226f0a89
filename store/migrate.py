"""Ordered SQL migrations: applied once each, recorded with a checksum, safe to re-run.

A version may come in two variants, `NNNN_name.postgres.sql` and `NNNN_name.timescale.sql`; the TimescaleDB one is
chosen when the extension is available on the server, the plain-PostgreSQL one otherwise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import psycopg

Variant = Literal["postgres", "timescale"]
_LOCK_KEY = 0x7661726465  # "varde": serialises concurrent migrators


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations(variant: Variant) -> list[Migration]:
    """The migrations shipped with the package, in order, with the variant's files chosen."""
    chosen: dict[str, Migration] = {}
    for entry in sorted(resources.files("store.migrations").iterdir(), key=lambda e: e.name):
        name = entry.name
        if not name.endswith(".sql"):
            continue
        stem = name.removesuffix(".sql")
        base, _, suffix = stem.partition(".")
        if suffix and suffix != variant:
            continue
        version = base.split("_", 1)[0]
        chosen[version] = Migration(version, base, entry.read_text())
    return [chosen[v] for v in sorted(chosen)]


def detect_variant(conn: psycopg.Connection[tuple[object, ...]]) -> Variant:
    """TimescaleDB when the server could install the extension (it need not be installed yet)."""
    row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    return "timescale" if row else "postgres"


Probe = Callable[[psycopg.Connection[tuple[object, ...]]], Variant]


def migrate(
    conn: psycopg.Connection[tuple[object, ...]], variant: Variant | None = None, *, probe: Probe = detect_variant
) -> list[str]:
    """Apply pending migrations; returns the versions applied (empty when up to date). The variant is the given one,
    else the one recorded by earlier runs, else what `probe` finds on the server (tests inject their own)."""
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, variant text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {
            str(v): (str(c), str(var))
            for v, c, var in conn.execute("SELECT version, checksum, variant FROM schema_migrations").fetchall()
        }
        if variant is None:
            recorded = {var for _, var in applied.values()}
            variant = "timescale" if "timescale" in recorded else ("postgres" if applied else probe(conn))
        done: list[str] = []
        for migration in available_migrations(variant):
            if migration.version in applied:
                checksum, _ = applied[migration.version]
                if checksum != migration.checksum:
                    raise RuntimeError(
                        f"migration {migration.name} changed after it was applied (checksum differs); "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum, variant) VALUES (%s, %s, %s, %s)",
                    (migration.version, migration.name, migration.checksum, variant),
                )
            done.append(migration.name)
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
