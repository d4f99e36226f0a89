"""No SQL is built by string formatting: every statement is fixed text, or composed with psycopg's `sql.SQL`,
`sql.Identifier`, `sql.Literal` and `sql.Placeholder`, so nothing a caller passes can become SQL by accident.

The check walks the syntax tree of every module of the packages (migrations, benchmarks and tests aside) and
reports an f-string, a `%` format or a `.format()` on a string whose text reads as SQL: an upper-case SQL keyword
or a psycopg placeholder (`%s`, `%(name)s`). It is fed offending snippets to show it reports them."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

from tests import vocabulary_check

_KEYWORDS = re.compile(
    r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|WHERE|FROM|JOIN|VALUES|RETURNING|ORDER BY|GROUP BY|LIMIT|"
    r"ON CONFLICT|SET|CASE WHEN|AND|OR|NOT EXISTS|ANY|LISTEN|NOTIFY|COPY|TRUNCATE|ALTER TABLE|CREATE)\b"
)
_PLACEHOLDER = re.compile(r"%(?:\(\w+\))?s\b")


def _reads_as_sql(text: str) -> bool:
    return bool(_KEYWORDS.search(text) or _PLACEHOLDER.search(text))


def _module_strings(tree: ast.Module) -> dict[str, str]:
    """Module-level names bound to a string constant (a template that `.format()` may fill)."""
    out: dict[str, str] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
            out[target.id] = value.value
    return out


def formatted_sql(sources: Mapping[str, str]) -> list[str]:
    """Each place a module formats SQL text from strings, as `path:line: how`."""
    found: list[str] = []
    for path, source in sorted(sources.items()):
        tree = ast.parse(source)
        templates = _module_strings(tree)
        for node in ast.walk(tree):
            how = None
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else " " for v in node.values)
                how = "f-string" if _reads_as_sql(text) else None
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
                left = node.left
                if isinstance(left, ast.Constant) and isinstance(left.value, str) and _reads_as_sql(left.value):
                    how = "% format"
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
                owner = node.func.value
                if isinstance(owner, ast.Constant) and isinstance(owner.value, str):
                    how = ".format()" if _reads_as_sql(owner.value) else None
                elif isinstance(owner, ast.Name) and owner.id in templates and _reads_as_sql(templates[owner.id]):
                    how = f".format() of {owner.id}"
            if how:
                found.append(f"{path}:{getattr(node, 'lineno', 0)}: {how}")
    return found


def test_no_package_formats_sql_from_strings() -> None:
    assert formatted_sql(vocabulary_check.python_sources()) == []


def test_an_fstring_update_built_from_an_argument_is_reported() -> None:
    source = (
        "def change(conn, sql, alarm_id):\n"
        '    conn.execute(f"UPDATE alarms SET {sql}, updated_at = now() WHERE id = %s", [alarm_id])\n'
    )
    assert formatted_sql({"clinician_api/routes/x.py": source}) == ["clinician_api/routes/x.py:2: f-string"]


def test_fragments_percent_and_format_templates_are_reported() -> None:
    source = (
        '_CONSULTS = "{alias}.id IN (SELECT patient_id FROM care_handovers WHERE to_team_id = ANY({teams}))"\n'
        "def clauses(column, alias, n):\n"
        '    a = f"{column} = %s"\n'
        '    b = "SELECT * FROM %s" % column\n'
        '    c = "DELETE FROM {} WHERE id = %s".format(column)\n'
        '    d = _CONSULTS.format(alias=alias, teams="%(teams)s")\n'
        "    return a, b, c, d\n"
    )
    assert formatted_sql({"clinician_api/x.py": source}) == [
        "clinician_api/x.py:3: f-string",
        "clinician_api/x.py:4: % format",
        "clinician_api/x.py:5: .format()",
        "clinician_api/x.py:6: .format() of _CONSULTS",
    ]


def test_composed_sql_and_plain_text_pass() -> None:
    source = (
        "from psycopg import sql\n"
        "def run(conn, column, name):\n"
        '    conn.execute(sql.SQL("SELECT {} FROM readings WHERE id = %s").format(sql.Identifier(column)), [1])\n'
        '    return f"unknown kind {name!r}; expected one of a, b"\n'
    )
    assert formatted_sql({"store/x.py": source}) == []
