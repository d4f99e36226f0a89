"""Opaque keyset cursors: the sort key of the last row of a page, as base64url JSON.

Clients pass the cursor back unchanged; a tampered or foreign cursor is a 400 problem, never a SQL error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from clinician_api.hygiene import check_text
from clinician_api.problems import ProblemError

T = TypeVar("T")


def encode(kind: str, key: Sequence[Any]) -> str:
    doc = [kind, *(v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, UUID) else v for v in key)]
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(kind: str, cursor: str, parsers: Sequence[Callable[[Any], Any]]) -> list[Any]:
    """The key of `cursor`, each part passed through its parser; 400 when it is not a cursor of this kind."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        doc = json.loads(raw)
        if not isinstance(doc, list) or len(doc) != len(parsers) + 1 or doc[0] != kind:
            raise ValueError("wrong shape")
        if any(isinstance(value, str) and check_text(value, ("query", "cursor")) for value in doc):
            raise ValueError("control characters in cursor")
        return [parse(value) for parse, value in zip(parsers, doc[1:], strict=True)]
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ProblemError(400, "the cursor is not valid for this list; start again without it") from None


def parse_time(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("naive time in cursor")
    return parsed


def page(rows: list[T], limit: int, key: Callable[[T], Sequence[Any]], kind: str) -> tuple[list[T], str | None]:
    """Rows fetched with LIMIT limit+1 → (this page, cursor of the next page or None)."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode(kind, key(rows[-1]))
