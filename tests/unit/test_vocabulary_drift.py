"""The vocabulary is defined once (`vitals.vocabulary`); every copy that cannot import it — the migrations' CHECK
lists and rank column, the dashboard's scripts and catalogues — agrees with it, and no Python module retypes it.

Each check is also fed a drifted copy (a role, protocol or severity added in one place only) and must report it."""

from __future__ import annotations

import json
from typing import get_args

from clinician_api.fhir import _ISSUE_SEVERITY
from rules_engine import profiles
from rules_engine.severity import SeverityLabel
from tests import vocabulary_check as check
from vitals import vocabulary

MIGRATIONS = check.migration_sources()
SCHEMA = check.read_migrations(MIGRATIONS)
VOCAB = check.current_vocabulary()


def _with(name: str, extra: str) -> dict[str, tuple[str, ...]]:
    """The vocabulary with one word added to list `name` (as if added in vitals only)."""
    return {**VOCAB, name: (*VOCAB[name], extra)}


def _catalogues() -> dict[str, dict[str, str]]:
    return {lang: json.loads((check.I18N_DIR / f"{lang}.json").read_text(encoding="utf-8")) for lang in ("nb", "en")}


# --- the real tree agrees ------------------------------------------------------------------------------------------


def test_migrations_check_lists_and_rank_column_match_the_vocabulary() -> None:
    assert check.schema_drift(SCHEMA, VOCAB) == []


def test_dashboard_scripts_hold_no_drifted_or_retyped_vocabulary() -> None:
    assert check.js_drift(check.scripts(), VOCAB) == []


def test_dashboard_catalogues_label_every_protocol_and_severity() -> None:
    assert check.catalogue_drift(_catalogues(), VOCAB) == []


def test_no_python_module_retypes_a_vocabulary_list() -> None:
    assert check.python_copies(check.python_sources(), VOCAB) == []


def test_python_mirrors_that_cannot_import_the_lists_hold_the_same_words() -> None:
    assert tuple(p.value for p in profiles.Protocol) == vocabulary.PROTOCOLS
    assert set(get_args(SeverityLabel)) <= set(vocabulary.SEVERITIES)
    assert set(_ISSUE_SEVERITY) == set(vocabulary.SEVERITIES)


def test_one_rank_order_puts_red_first() -> None:
    assert vocabulary.SEVERITIES[0] == "red"
    assert sorted(vocabulary.SEVERITIES, key=vocabulary.SEVERITY_RANK.__getitem__) == list(vocabulary.SEVERITIES)
    assert vocabulary.SEVERITY_RANK == {"red": 0, "yellow": 1, "missed": 2, "needs_review": 3}


# --- each check reports a drifted copy ------------------------------------------------------------------------------


def test_a_role_added_in_vitals_only_is_reported_on_the_users_table() -> None:
    drift = check.schema_drift(SCHEMA, _with("roles", "pharmacist"))
    assert len(drift) == 1
    assert drift[0].startswith("users.role") and "only in vitals ['pharmacist']" in drift[0]


def test_a_protocol_added_in_vitals_only_is_reported_on_both_tables_and_the_catalogues() -> None:
    vocab = _with("protocols", "ckd")
    drift = check.schema_drift(SCHEMA, vocab)
    assert [d.split(" ")[0] for d in drift] == ["patients.protocol", "care_episodes.protocol"]
    assert check.catalogue_drift(_catalogues(), vocab) == [
        "en.json: no label for protocols ['ckd']",
        "nb.json: no label for protocols ['ckd']",
    ]


def test_a_role_added_by_a_new_migration_only_is_reported() -> None:
    later = (
        "0999_pharmacists.sql",
        "ALTER TABLE users DROP CONSTRAINT users_role_check;\n"
        "ALTER TABLE users ADD CONSTRAINT users_role_check "
        "CHECK (role IN ('nurse', 'physician', 'admin', 'data_export', 'pharmacist'));",
    )
    drift = check.schema_drift(check.read_migrations([*MIGRATIONS, later]), VOCAB)
    assert len(drift) == 1
    assert "only in the database ['pharmacist']" in drift[0]


def test_a_new_constraint_without_dropping_the_old_one_narrows_what_a_column_allows() -> None:
    later = ("0999_x.sql", "ALTER TABLE alarms ADD CONSTRAINT alarms_no_missed CHECK (severity IN ('red', 'yellow'));")
    schema = check.read_migrations([*MIGRATIONS, later])
    assert schema.allowed("alarms", "severity") == {"red", "yellow"}
    assert any(d.startswith("alarms.severity allows") for d in check.schema_drift(schema, VOCAB))


def test_a_new_table_with_an_unmapped_protocol_list_is_reported() -> None:
    later = (
        "0999_x.sql",
        "CREATE TABLE pathways (id uuid PRIMARY KEY, "
        "protocol text NOT NULL CHECK (protocol IN ('general', 'heart_failure', 'copd')));",
    )
    drift = check.schema_drift(check.read_migrations([*MIGRATIONS, later]), VOCAB)
    assert drift == [
        "pathways.protocol lists protocols words ['copd', 'general', 'heart_failure'] but no drift check maps it"
    ]


def test_the_old_reversed_rank_order_is_reported() -> None:
    reversed_rank = (
        "0999_x.sql",
        "ALTER TABLE alarms DROP COLUMN severity_rank;\n"
        "ALTER TABLE alarms ADD COLUMN severity_rank smallint GENERATED ALWAYS AS (CASE severity WHEN 'red' THEN 4 "
        "WHEN 'yellow' THEN 3 WHEN 'missed' THEN 2 ELSE 1 END) STORED;",
    )
    drift = check.schema_drift(check.read_migrations([*MIGRATIONS, reversed_rank]), VOCAB)
    assert drift == [
        "alarms.severity_rank ranks {'red': 4, 'yellow': 3, 'missed': 2, 'needs_review': 1} but the one order "
        "(worst first) is {'red': 0, 'yellow': 1, 'missed': 2, 'needs_review': 3}"
    ]


def test_a_severity_added_in_vitals_only_is_reported_in_the_schema_and_the_icons() -> None:
    vocab = _with("severities", "purple")
    schema_drift = check.schema_drift(SCHEMA, vocab)
    assert [d.split(" ")[0] for d in schema_drift] == ["alarms.severity", "alarms.severity_rank:"]
    js = check.js_drift(check.scripts(), vocab)
    assert len(js) == 1 and js[0].startswith("dom.js: SEVERITY_ICON") and "only in vitals ['purple']" in js[0]


def test_a_script_that_retypes_the_rank_order_is_reported() -> None:
    scripts = {**check.scripts(), "queue.js": "const RANK = { red: 0, yellow: 1, missed: 2, needs_review: 3 };\n"}
    assert check.js_drift(scripts, VOCAB) == [
        "queue.js: a literal retypes severities ['missed', 'needs_review', 'red', 'yellow']; take it from i18n.js"
    ]
    states = {"patient.js": 'api("/alarms", { state: ["open", "acknowledged", "resolved"] });\n'}
    assert any("retypes alarm_states" in d for d in check.js_drift({**check.scripts(), **states}, VOCAB))


def test_a_severity_icon_added_in_the_script_only_is_reported() -> None:
    dom = check.scripts()["dom.js"].replace('needs_review: "?",', 'needs_review: "?", purple: "!",')
    drift = check.js_drift({**check.scripts(), "dom.js": dom}, VOCAB)
    assert len(drift) == 1 and "only in the script ['purple']" in drift[0]


def test_a_python_module_retyping_roles_is_reported() -> None:
    source = 'from typing import Literal\nRole = Literal["nurse", "physician", "admin", "data_export"]\n'
    assert check.python_copies({"clinician_api/x.py": source}, VOCAB) == [
        "clinician_api/x.py:2: retypes roles; import it from vitals"
    ]


def test_the_pages_scripts_get_the_lists_from_the_server_in_the_one_order() -> None:
    from clinician_api.dashboard.i18n import vocabulary as page_config

    config = page_config("nb")
    assert config["severities"] == ["red", "yellow", "missed", "needs_review"]
    assert config["alarm_states"] == list(vocabulary.ALARM_STATES)
