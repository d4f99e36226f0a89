"""Migration 0160 on a database that already has patients: each gets an episode with their current team (active
ones an active episode, inactive ones a finished one), and nothing about their access changes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from store.migrate import available_migrations, migrate
from store.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def before_episodes(db: psycopg.Connection[Any], settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """A fresh database migrated up to (not including) 0160."""
    name = f"varde_episodes_{uuid.uuid4().hex[:8]}"
    db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(make_conninfo(settings.require_database_url(), dbname=name), autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE schema_migrations (version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " variant text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for migration in available_migrations("postgres"):
                if migration.version >= "0160":
                    break
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum, variant) VALUES (%s, %s, %s, %s)",
                        (migration.version, migration.name, migration.checksum, "postgres"),
                    )
            yield conn
    finally:
        db.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_existing_patients_get_an_episode_with_their_current_team(before_episodes: psycopg.Connection[Any]) -> None:
    conn = before_episodes
    team = conn.execute("INSERT INTO care_teams (name) VALUES ('Hjertesvikt') RETURNING id").fetchone()
    assert team is not None
    rows = conn.execute(
        "INSERT INTO patients (display_name, team_id, protocol, active) VALUES "
        "('Kari Nordmann', %(t)s, 'heart_failure', true), ('Ola Nordmann', %(t)s, 'copd', false) RETURNING id, active",
        {"t": team[0]},
    ).fetchall()
    applied = migrate(conn)
    assert "0160_episodes" in applied
    episodes = conn.execute(
        "SELECT e.patient_id, e.status, e.team_id, e.conditions, (SELECT array_agg(kind) FROM care_episode_events v "
        "WHERE v.episode_id = e.id) FROM care_episodes e ORDER BY e.status"
    ).fetchall()
    by_patient = {r[0]: r for r in episodes}
    assert len(episodes) == 2
    for patient_id, active in rows:
        _, status, team_id, _, events = by_patient[patient_id]
        assert status == ("active" if active else "finished") and team_id == team[0] and events == ["enrolled"]
    assert by_patient[rows[0][0]][3] == ["heart_failure"]
    assert conn.execute("SELECT count(*) FROM patients WHERE team_id = %s", (team[0],)).fetchone() == (2,)
