"""Finds where the copies of the vocabulary (`vitals.vocabulary`) have drifted from it: the database's CHECK lists
and the alarm queue's rank column, the dashboard's JavaScript and catalogues, and word lists retyped in Python.

The readers are pure (text in, facts out) so a test can feed them a drifted copy and see the drift reported; the
sources are either the migration files (replayed in order: a DROP CONSTRAINT removes, an ADD CONSTRAINT adds) or a
live database's `pg_constraint` and `pg_attrdef`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitals import vocabulary

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "store" / "migrations"
JS_DIR = ROOT / "clinician_api" / "static" / "js"
I18N_DIR = ROOT / "clinician_api" / "templates" / "i18n"
PACKAGES = ("clinician_api", "device_simulators", "edge_agent", "ingest_service", "rules_engine", "store", "varde")

Vocabulary = Mapping[str, tuple[str, ...]]
"""A vocabulary by name: its words in their order."""


def current_vocabulary() -> dict[str, tuple[str, ...]]:
    return {
        "protocols": vocabulary.PROTOCOLS,
        "conditions": vocabulary.CONDITIONS,
        "roles": vocabulary.ROLES,
        "author_roles": vocabulary.AUTHOR_ROLES,
        "severities": vocabulary.SEVERITIES,
        "alarm_states": vocabulary.ALARM_STATES,
    }


COLUMN_VOCABULARY: dict[tuple[str, str], str] = {
    ("patients", "protocol"): "protocols",
    ("care_episodes", "protocol"): "protocols",
    ("patient_conditions", "condition"): "conditions",
    ("users", "role"): "roles",
    ("messages", "author_role"): "author_roles",
    ("alarms", "severity"): "severities",
    ("alarms", "state"): "alarm_states",
}
"""Which vocabulary each database column's CHECK list must equal."""

DISTINCT = ("protocols", "conditions", "roles", "author_roles")
"""Vocabularies whose words mean nothing else: a CHECK list naming one of them on a column not mapped above is a
copy nobody checks (severity words also name plan zones, so those are not hunted this way)."""


# --- SQL ----------------------------------------------------------------------------------------------------------


@dataclass
class Schema:
    """The facts the drift check needs from a schema."""

    checks: dict[tuple[str, str], dict[str, tuple[str, ...]]] = field(default_factory=dict)
    """(table, column) → constraint name → the words its `column IN (...)` allows."""
    severity_rank: dict[str, int] | None = None
    """The alarm queue's `alarms.severity_rank`: each severity's rank (the CASE's ELSE given to the unnamed one)."""

    def allowed(self, table: str, column: str) -> set[str] | None:
        """The words a column may hold (every constraint must pass), or None without a CHECK list."""
        lists = self.checks.get((table, column))
        if not lists:
            return None
        sets = [set(words) for words in lists.values()]
        return set.intersection(*sets)


_DOLLAR_BODY = re.compile(r"\$(\w*)\$.*?\$\1\$", re.S)
_COMMENT = re.compile(r"--[^\n]*")
_CREATE = re.compile(r"^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\((.*)\)[^)]*$", re.S | re.I)
_ALTER = re.compile(r"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(\w+)\s+(.*)$", re.S | re.I)
_IN_CHECK = re.compile(r"CHECK\s*\(\s*(\w+)\s+IN\s*\(([^)]*)\)\s*\)", re.I)
_ANY_CHECK = re.compile(r"CHECK\s*\(\s*\(?\s*(\w+)\s*=\s*ANY\s*\(\s*ARRAY\s*\[([^\]]*)\]", re.I)
_RANK_CASE = re.compile(r"CASE\s+\(?severity\)?(?:::text)?\s+(.*?)\s+END", re.S | re.I)
_WHEN = re.compile(r"WHEN\s+'(\w+)'(?:::text)?\s+THEN\s+(\d+)", re.I)
_ELSE = re.compile(r"ELSE\s+(\d+)", re.I)
_TABLE_ITEM = re.compile(r"^(CONSTRAINT|CHECK|PRIMARY|UNIQUE|FOREIGN|EXCLUDE|LIKE)\b", re.I)


def _words(listed: str) -> tuple[str, ...]:
    return tuple(re.findall(r"'([^']*)'", listed))


def _split_top(text: str) -> list[str]:
    """Comma-separated items at parenthesis depth 0."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return [item for item in items if item]


def _rank(expression: str) -> dict[str, int] | None:
    case = _RANK_CASE.search(expression)
    if case is None:
        return None
    ranks = {name: int(rank) for name, rank in _WHEN.findall(case.group(1))}
    other = _ELSE.search(case.group(1))
    if other is not None:
        ranks["<else>"] = int(other.group(1))
    return ranks


def _column_item(schema: Schema, table: str, item: str) -> None:
    """A column definition (of CREATE TABLE or ADD COLUMN): its inline CHECK list and generated rank."""
    column = item.split()[0].strip('"')
    for checked, listed in _IN_CHECK.findall(item):
        schema.checks.setdefault((table, checked), {})[f"{table}_{checked}_check"] = _words(listed)
    if table == "alarms" and column == "severity_rank":
        schema.severity_rank = _rank(item)


def read_migrations(sources: Iterable[tuple[str, str]]) -> Schema:
    """The schema the migrations leave, from (file name, SQL) in the order they apply."""
    schema = Schema()
    for _, text in sources:
        text = _COMMENT.sub("", _DOLLAR_BODY.sub("''", text))
        for statement in (s.strip() for s in text.split(";")):
            if created := _CREATE.match(statement):
                table = created.group(1)
                for item in _split_top(created.group(2)):
                    if _TABLE_ITEM.match(item):
                        named = re.match(r"CONSTRAINT\s+(\w+)", item, re.I)
                        for checked, listed in _IN_CHECK.findall(item):
                            name = named.group(1) if named else f"{table}_{checked}_check"
                            schema.checks.setdefault((table, checked), {})[name] = _words(listed)
                    else:
                        _column_item(schema, table, item)
            elif altered := _ALTER.match(statement):
                table = altered.group(1)
                for action in _split_top(altered.group(2)):
                    if dropped := re.match(r"DROP\s+CONSTRAINT\s+(?:IF\s+EXISTS\s+)?(\w+)", action, re.I):
                        for (owner, _), names in schema.checks.items():
                            if owner == table:
                                names.pop(dropped.group(1), None)
                    elif added := re.match(r"ADD\s+CONSTRAINT\s+(\w+)\s+(CHECK.*)$", action, re.I | re.S):
                        for checked, listed in _IN_CHECK.findall(added.group(2)):
                            schema.checks.setdefault((table, checked), {})[added.group(1)] = _words(listed)
                    elif column := re.match(r"ADD\s+COLUMN\s+(?:IF\s+NOT\s+EXISTS\s+)?(.*)$", action, re.I | re.S):
                        _column_item(schema, table, column.group(1))
    return schema


def migration_sources(directory: Path = MIGRATIONS) -> list[tuple[str, str]]:
    """The migration files in apply order, the plain-PostgreSQL variant where a file has two."""
    files = sorted(p for p in directory.glob("*.sql") if not p.name.endswith(".timescale.sql"))
    return [(p.name, p.read_text(encoding="utf-8")) for p in files]


def read_live(conn: Any) -> Schema:
    """The schema a live database holds: its CHECK constraints and the rank column's expression."""
    schema = Schema()
    rows = conn.execute(
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "JOIN pg_namespace n ON n.oid = c.connamespace WHERE c.contype = 'c' AND n.nspname = 'public'"
    ).fetchall()
    for table, name, definition in rows:
        for checked, listed in _ANY_CHECK.findall(definition):
            schema.checks.setdefault((table.split(".")[-1], checked), {})[name] = _words(listed)
    rank = conn.execute(
        "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a "
        "ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = 'alarms'::regclass "
        "AND a.attname = 'severity_rank'"
    ).fetchone()
    schema.severity_rank = _rank(rank[0]) if rank else None
    return schema


def schema_drift(schema: Schema, vocab: Vocabulary) -> list[str]:
    """How the schema's CHECK lists and severity ranks differ from the vocabulary (empty when they agree)."""
    drift: list[str] = []
    for (table, column), name in COLUMN_VOCABULARY.items():
        allowed = schema.allowed(table, column)
        expected = set(vocab[name])
        if allowed is None:
            drift.append(f"{table}.{column}: no CHECK list, expected {name} {sorted(expected)}")
        elif allowed != expected:
            drift.append(
                f"{table}.{column} allows {sorted(allowed)} but {name} is {sorted(expected)}: "
                f"only in the database {sorted(allowed - expected)}, only in vitals {sorted(expected - allowed)}"
            )
    for (table, column), lists in schema.checks.items():
        if (table, column) in COLUMN_VOCABULARY or not lists:
            continue
        words = set().union(*(set(w) for w in lists.values()))
        for name in DISTINCT:
            if len(words & set(vocab[name])) >= 2:
                drift.append(f"{table}.{column} lists {name} words {sorted(words)} but no drift check maps it")
                break
    severities = vocab["severities"]
    expected_rank = {s: i for i, s in enumerate(severities)}
    ranks = dict(schema.severity_rank or {})
    if "<else>" in ranks:
        unnamed = [s for s in severities if s not in ranks]
        rank = ranks.pop("<else>")
        if len(unnamed) != 1:
            drift.append(f"alarms.severity_rank: its ELSE {rank} stands for {unnamed or 'no severity'}, not one")
            return drift
        ranks[unnamed[0]] = rank
    if ranks != expected_rank:
        drift.append(f"alarms.severity_rank ranks {ranks} but the one order (worst first) is {expected_rank}")
    return drift


# --- JavaScript and catalogues ------------------------------------------------------------------------------------

_OBJECT = re.compile(r"\{([^{}]*)\}")
_KEY = re.compile(r"(?:^|,)\s*\"?([a-z_]+)\"?\s*:", re.M)
_ARRAY = re.compile(r"\[\s*((?:\"[a-z_]+\"\s*,\s*)+\"[a-z_]+\")\s*,?\s*\]")

JS_COPIES: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("dom.js", "SEVERITY_ICON"): ("severities", ("green",)),
}
"""The JavaScript constants that must hold a whole vocabulary (plus these extra words): file, constant → list."""


def js_literals(source: str) -> list[set[str]]:
    """The word sets of a script's object literals (their keys) and arrays of strings."""
    found = [set(_KEY.findall(body)) for body in _OBJECT.findall(source)]
    found += [set(re.findall(r"\"([a-z_]+)\"", body)) for body in _ARRAY.findall(source)]
    return [words for words in found if words]


def js_constant_keys(source: str, constant: str) -> set[str] | None:
    match = re.search(rf"const\s+{constant}\s*=\s*\{{([^}}]*)\}}", source)
    return set(_KEY.findall(match.group(1))) if match else None


def js_drift(scripts: Mapping[str, str], vocab: Vocabulary) -> list[str]:
    """How the dashboard's scripts differ from the vocabulary: a registered constant that does not hold its whole
    list, or a literal elsewhere that retypes a whole list (it must come from `i18n.js`, which the server fills)."""
    drift: list[str] = []
    for (file, constant), (name, extra) in JS_COPIES.items():
        keys = js_constant_keys(scripts.get(file, ""), constant)
        expected = set(vocab[name]) | set(extra)
        if keys is None:
            drift.append(f"{file}: {constant} not found")
        elif keys != expected:
            drift.append(
                f"{file}: {constant} has {sorted(keys)} but {name} (+{list(extra)}) is {sorted(expected)}: "
                f"only in the script {sorted(keys - expected)}, only in vitals {sorted(expected - keys)}"
            )
    registered = {file for file, _ in JS_COPIES}
    for file, source in sorted(scripts.items()):
        for words in js_literals(source):
            for name, listed in vocab.items():
                if set(listed) <= words and len(listed) >= 2 and file not in registered:
                    drift.append(f"{file}: a literal retypes {name} {sorted(words)}; take it from i18n.js")
    return drift


def catalogue_drift(catalogues: Mapping[str, Mapping[str, str]], vocab: Vocabulary) -> list[str]:
    """Labels the pages look up by vocabulary word (`protocol_<p>`, `severity_<s>`) missing in a language."""
    drift: list[str] = []
    for lang, strings in sorted(catalogues.items()):
        for prefix, name in (("protocol_", "protocols"), ("severity_", "severities")):
            missing = [w for w in vocab[name] if prefix + w not in strings]
            if missing:
                drift.append(f"{lang}.json: no label for {name} {missing}")
    return drift


def scripts(directory: Path = JS_DIR) -> dict[str, str]:
    return {str(p.relative_to(directory)): p.read_text(encoding="utf-8") for p in sorted(directory.rglob("*.js"))}


# --- Python -------------------------------------------------------------------------------------------------------


def _string_items(node: ast.AST) -> list[str] | None:
    elements: Sequence[ast.expr]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        elements = node.elts
    elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "Literal":
        elements = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    else:
        return None
    items = [e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return items if len(items) == len(elements) else None


def python_copies(sources: Mapping[str, str], vocab: Vocabulary) -> list[str]:
    """Literal tuples, lists, sets and `Literal[...]` that retype a whole vocabulary list (three words or more):
    such a copy does not follow when the list in `vitals.vocabulary` changes."""
    drift: dict[str, None] = {}  # a `Literal[...]` and its tuple slice are one copy
    for path, source in sorted(sources.items()):
        for node in ast.walk(ast.parse(source)):
            items = _string_items(node)
            if not items:
                continue
            for name, listed in vocab.items():
                if len(listed) >= 3 and set(items) == set(listed):
                    drift[f"{path}:{getattr(node, 'lineno', 0)}: retypes {name}; import it from vitals"] = None
    return list(drift)


def python_sources(root: Path = ROOT) -> dict[str, str]:
    out: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" not in path.parts:
                out[str(path.relative_to(root))] = path.read_text(encoding="utf-8")
    return out
