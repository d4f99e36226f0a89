"""The API's input hygiene (clinician_api/hygiene.py) as pure functions: what a JSON body, a form or a request head
may hold, and the same properties over generated documents (hypothesis)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinician_api.hygiene import MAX_JSON_DEPTH, check_body, check_head, check_text

_CONTROLS = [chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0))]


@pytest.mark.parametrize(
    ("raw", "loc", "shown"),
    [
        (b'{"limits":{"spo2":{"unit":"%","red_low":NaN}}}', ["body", "limits", "spo2", "red_low"], "NaN"),
        (b'{"limits":{"spo2":{"unit":"%","red_high":Infinity}}}', ["body", "limits", "spo2", "red_high"], "Infinity"),
        (b'{"zones":[{"red_low":-Infinity}]}', ["body", "zones", 0, "red_low"], "-Infinity"),
        (b'{"minutes":1e999}', ["body", "minutes"], "beyond the range of a double"),
        (b'{"minutes":-1e999}', ["body", "minutes"], "beyond the range of a double"),
        (b'{"minutes":123456789012345678901234567890}', ["body", "minutes"], "beyond 64 bits"),
    ],
)
def test_non_finite_and_out_of_range_numbers_are_refused_where_they_are(raw: bytes, loc: list[Any], shown: str) -> None:
    refusal = check_body("application/json", raw)
    assert refusal is not None and list(refusal.loc) == loc
    assert shown in refusal.msg and refusal.message_nb


@pytest.mark.parametrize("char", [*_CONTROLS, "\ud800", "\udfff"])
def test_control_characters_and_lone_surrogates_are_refused_in_json_strings_and_keys(char: str) -> None:
    value = json.dumps({"text": f"før{char}etter"}).encode()
    refusal = check_body("application/json", value)
    assert refusal is not None and list(refusal.loc) == ["body", "text"]
    key = json.dumps({"notes": {f"k{char}": 1}}).encode()
    refusal = check_body(None, key)  # FastAPI decodes a body without Content-Type as JSON too
    assert refusal is not None and list(refusal.loc) == ["body", "notes"]


def test_free_text_keeps_its_lines_and_tabs_and_any_language() -> None:
    note = {"text": "Ringte pasienten.\r\nSpO₂ 91 %\tmålt på nytt: 94 %. Ærlig talt – 😊 Ωμέγα"}
    assert check_body("application/json", json.dumps(note).encode()) is None
    assert check_body("application/json; charset=utf-8", json.dumps(note, ensure_ascii=False).encode()) is None
    assert check_body("application/merge-patch+json", json.dumps(note).encode()) is None


def test_deep_nesting_is_refused_without_recursion() -> None:
    assert check_body("application/json", b"[" * 100_000 + b"]" * 100_000) is not None
    shallow = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert check_body("application/json", shallow) is None
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    assert check_body("application/json", deep) is not None


def test_what_is_not_json_is_left_to_fastapi_to_refuse() -> None:
    assert check_body("application/json", b"{not json") is None
    assert check_body("text/plain", b"\x00NaN") is None  # no route reads a text body: FastAPI refuses it as a dict


def test_form_fields_are_single_line() -> None:
    assert check_body("application/x-www-form-urlencoded", b"username=kari&password=s%C3%A6cret") is None
    refusal = check_body("application/x-www-form-urlencoded", b"username=kari%00&password=x")
    assert refusal is not None and list(refusal.loc) == ["body", "username"]
    assert check_body("application/x-www-form-urlencoded", b"username=kari&password=a%0Ab") is not None


def _scope(path: str = "/api/v1/patients", query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    return {"type": "http", "path": path, "query_string": query, "headers": headers or []}


def test_path_query_and_headers_are_checked() -> None:
    assert check_head(_scope(query=b"q=Nordmann&limit=5")) is None
    assert check_head(_scope(query=b"q=%C3%85se")) is None
    refused = check_head(_scope(query=b"q=a%00b"))
    assert refused is not None and list(refused.loc) == ["query", "q"]
    assert check_head(_scope(query=b"action=read%0A")) is not None
    assert check_head(_scope(path="/api/v1/patients/\x00")) is not None
    assert check_head(_scope(headers=[(b"user-agent", b"tab\tis fine")])) is None
    refused = check_head(_scope(headers=[(b"authorization", b"Bearer a\x00b")]))
    assert refused is not None and list(refused.loc) == ["header", "authorization"]


# --- properties --------------------------------------------------------------------------------------------------

_clean_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20)
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _clean_text
)
_clean_docs = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_clean_text, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(doc=_clean_docs)
def test_clean_documents_pass(doc: Any) -> None:
    assert check_body("application/json", json.dumps(doc).encode()) is None


@settings(max_examples=200, deadline=None)
@given(doc=_clean_docs, hostile=st.sampled_from([*_CONTROLS, "\ud800", "NaN", "Infinity", "-Infinity", "1e999"]))
def test_a_hostile_value_anywhere_is_refused(doc: Any, hostile: str) -> None:
    marker = "\ue000HOSTILE\ue000"
    text = json.dumps({"wrapped": [doc, marker]})
    if hostile in ("NaN", "Infinity", "-Infinity", "1e999"):
        raw = text.replace(json.dumps(marker), hostile)
    else:
        raw = text.replace(json.dumps(marker), json.dumps(f"x{hostile}y"))
    assert check_body("application/json", raw.encode()) is not None


@given(st.text(max_size=40))
def test_check_text_refuses_exactly_the_controls_and_surrogates(text: str) -> None:
    bad = any(c in _CONTROLS or c in "\t\n\r" or "\ud800" <= c <= "\udfff" for c in text)
    assert (check_text(text, ("query", "q")) is not None) == bad
