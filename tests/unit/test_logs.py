"""The one logging setup: `event key=value` lines as text or JSON, identifying values redacted in both."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from vitals.logs import setup_logging


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_event_and_its_fields_with_numbers_as_numbers() -> None:
    out = io.StringIO()
    setup_logging("INFO", "json", stream=out)
    logging.getLogger("varde.journal").warning("journal_retry entry=abc status=503 in=%.1fs ok=%s", 2.5, True)
    logging.getLogger("varde.journal").debug("below_the_level")
    (line,) = out.getvalue().splitlines()
    doc = json.loads(line)
    assert doc["event"] == "journal_retry" and doc["level"] == "warning" and doc["logger"] == "varde.journal"
    assert doc["fields"] == {"entry": "abc", "status": 503, "in": "2.5s", "ok": True}
    assert doc["ts"].endswith("+00:00")


def test_a_traceback_stays_inside_the_one_json_line() -> None:
    out = io.StringIO()
    setup_logging("INFO", "json", stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("varde.api").exception("request_failed route=/x")
    (line,) = out.getvalue().splitlines()
    assert "ValueError: boom" in json.loads(line)["exc"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_patient_ids_names_and_national_ids_are_redacted(fmt: str) -> None:
    out = io.StringIO()
    setup_logging("INFO", fmt, stream=out)
    logging.getLogger("varde.rules").warning(
        "plan_unreadable patient=%s name=%s version=3 note=%s",
        "0b7f3c4e-5d1a-5b7e-9a51-0c2f4e8d9a10",
        "Kari",
        "fnr 01017012345 given",
    )
    text = out.getvalue()
    for secret in ("0b7f3c4e", "Kari", "01017012345"):
        assert secret not in text
    assert text.count("[redacted]") == {"text": 3, "json": 5}[fmt]  # JSON: in the fields and in `msg`
    assert "version=3" in text


def test_the_format_comes_from_the_environment_and_a_wrong_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setenv("VARDE_LOG_FORMAT", "json")
    setup_logging(stream=out)
    logging.getLogger("x").info("started port=1")
    assert json.loads(out.getvalue())["event"] == "started"
    monkeypatch.setenv("VARDE_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="text, json"):
        setup_logging()
