"""The vocabulary against the schema a migrated database really holds (`pg_constraint`, `pg_attrdef`), not only
against the migration files' text."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests import vocabulary_check as check

pytestmark = pytest.mark.integration

VOCAB = check.current_vocabulary()


def test_the_live_check_lists_and_rank_column_match_the_vocabulary(db: psycopg.Connection[Any]) -> None:
    assert check.schema_drift(check.read_live(db), VOCAB) == []


def test_the_live_schema_and_the_migration_files_tell_the_same_story(db: psycopg.Connection[Any]) -> None:
    live, files = check.read_live(db), check.read_migrations(check.migration_sources())
    for table, column in check.COLUMN_VOCABULARY:
        assert live.allowed(table, column) == files.allowed(table, column), (table, column)
    assert live.severity_rank == files.severity_rank


def test_a_role_added_in_vitals_only_is_reported_against_the_live_schema(db: psycopg.Connection[Any]) -> None:
    drift = check.schema_drift(check.read_live(db), {**VOCAB, "roles": (*VOCAB["roles"], "pharmacist")})
    assert len(drift) == 1 and drift[0].startswith("users.role") and "only in vitals ['pharmacist']" in drift[0]
