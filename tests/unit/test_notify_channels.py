"""Every NOTIFY channel is named once (`store.events.Channel`): the migrations' triggers notify only channels it
lists, and no Python module spells a channel name or a LISTEN/pg_notify of its own."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

from psycopg import sql

from store.events import Channel, listen_statement
from tests import vocabulary_check as check

_SQL_NOTIFY = re.compile(r"pg_notify\s*\(\s*'([^']+)'|\bNOTIFY\s+(\w+)", re.I)
_SPELLED = re.compile(r"\b(?:UN)?LISTEN\s+\S|\bNOTIFY\s+\S|pg_notify\s*\(")
CHANNELS = {c.value for c in Channel}


def sql_channel_drift(sources: list[tuple[str, str]]) -> list[str]:
    """Channels the migrations notify that `Channel` does not list."""
    drift = []
    for name, text in sources:
        for literal, bare in _SQL_NOTIFY.findall(text):
            channel = literal or bare
            if channel not in CHANNELS:
                drift.append(f"{name}: notifies {channel!r}, which store.events.Channel does not list")
    return drift


def python_channel_drift(sources: Mapping[str, str]) -> list[str]:
    """String constants outside `store/events.py` that name a channel or spell a LISTEN/NOTIFY statement
    (docstrings may mention them)."""
    drift = []
    for path, source in sorted(sources.items()):
        if path == "store/events.py":
            continue
        tree = ast.parse(source)
        prose = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
                text = node.value
            else:
                continue
            if text in CHANNELS or _SPELLED.search(text):
                drift.append(f"{path}:{node.lineno}: {text[:60]!r}; use store.events (Channel, listen, wake)")
    return drift


def test_the_migrations_notify_only_channels_the_one_list_names() -> None:
    assert sql_channel_drift(check.migration_sources()) == []


def test_no_package_spells_a_channel_name_or_a_listen_of_its_own() -> None:
    assert python_channel_drift(check.python_sources()) == []


def test_a_trigger_notifying_an_unlisted_channel_is_reported() -> None:
    trigger = "CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN PERFORM pg_notify('varde_alarmz', ''); END $$;"
    assert sql_channel_drift([("0999_x.sql", trigger)]) == [
        "0999_x.sql: notifies 'varde_alarmz', which store.events.Channel does not list"
    ]


def test_a_module_listening_by_name_is_reported() -> None:
    source = (
        'def run(conn):\n    conn.execute("LISTEN varde_events")\n    wake("varde_journal")\n'
        '    conn.execute(f"LISTEN {CHANNEL}")\n'
    )
    drift = python_channel_drift({"ingest_service/x.py": source})
    assert sorted(d.split(": ")[0] for d in drift) == [f"ingest_service/x.py:{n}" for n in (2, 3, 4)]


def test_listen_quotes_the_channel_as_an_identifier() -> None:
    statement = listen_statement(Channel.CHANGES)
    assert isinstance(statement, sql.Composed)
    assert statement.as_string(None) == 'LISTEN "varde_events"'
