"""Input hygiene at the door: one ASGI middleware checks every request before any route (and so PostgreSQL) sees it.

- Path, query parameters and header values: no NUL or other control characters (a tab only in headers).
- JSON bodies (parsed exactly as FastAPI parses them): no NaN, Infinity or numbers beyond a double (`1e999`), no
  integer beyond 64 bits, no control character in a key, and none in a string value other than tab, line feed and
  carriage return (free-text notes may have lines), no lone surrogate (PostgreSQL text is UTF-8), at most
  `MAX_JSON_DEPTH` levels deep.
- Form bodies (`application/x-www-form-urlencoded`, the token form): no control characters in names or values;
  multipart bodies are refused (no route takes a file).
- Bodies larger than `MAX_BODY_BYTES` are refused with 413 before they are read in full.

A refusal is a 422 problem document naming the place (`loc`, as FastAPI's own validation errors do), with the
message in English and bokmål; nothing of the request reaches a route.
"""

from __future__ import annotations

import email.message
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinician_api.problems import refusal_for

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32
_INT64 = 2**63

# C0 controls, DEL, C1 controls and UTF-16 surrogates (which cannot be encoded as UTF-8).
_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_MULTI_LINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_HEADER_BYTES = re.compile(b"[\x00-\x08\x0a-\x1f\x7f]")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused: where (`loc`) and what, in English and bokmål."""

    loc: tuple[str | int, ...]
    msg: str
    message_nb: str


def check_text(text: str, loc: tuple[str | int, ...], *, multiline: bool = False) -> Refusal | None:
    """A refusal when `text` holds a character PostgreSQL text cannot or should not take; None when it is clean."""
    found = (_MULTI_LINE if multiline else _SINGLE_LINE).search(text)
    if found is None:
        return None
    char = found.group()
    if "\ud800" <= char <= "\udfff":
        return Refusal(
            loc,
            f"a lone UTF-16 surrogate (U+{ord(char):04X}) is not text; send valid Unicode",
            f"et enslig UTF-16-surrogat (U+{ord(char):04X}) er ikke tekst; send gyldig Unicode",
        )
    what = "a NUL character (U+0000)" if char == "\x00" else f"the control character U+{ord(char):04X}"
    hvat = "NUL-tegnet (U+0000)" if char == "\x00" else f"kontrolltegnet U+{ord(char):04X}"
    return Refusal(loc, f"{what} is not allowed here", f"{hvat} er ikke tillatt her")


_TOO_LARGE_FLOAT = ("a number beyond the range of a double", "et tall utenfor rekkevidden til en double")
_TOO_LARGE_INT = ("an integer beyond 64 bits", "et heltall større enn 64 bits")


def _number_refusal(loc: tuple[str | int, ...], what: tuple[str, str]) -> Refusal:
    return Refusal(
        loc,
        f"{what[0]} is not a number this API accepts; send a finite number",
        f"{what[1]} er ikke et tall API-et godtar; send et endelig tall",
    )


class _NonFinite(float):
    """A NaN or ±Infinity constant as written in the JSON text, kept so the refusal can quote it."""

    written: str

    def __new__(cls, written: str) -> _NonFinite:
        value = super().__new__(cls, written)
        value.written = written
        return value


def _decode(body: bytes) -> Any:
    """JSON as FastAPI decodes it (`json.loads` of the bytes), with non-finite constants kept recognisable."""
    return json.loads(body, parse_constant=_NonFinite)


def _walk(doc: Any) -> Iterator[tuple[tuple[str | int, ...], Any, int]]:
    """Every key and value of a decoded JSON document with its place and depth, without recursion."""
    stack: list[tuple[tuple[str | int, ...], Any, int]] = [(("body",), doc, 0)]
    while stack:
        loc, value, depth = stack.pop()
        yield loc, value, depth
        if isinstance(value, dict):
            for key, item in value.items():
                yield loc, _Key(key), depth + 1  # a hostile key is reported at its object, not echoed
                stack.append(((*loc, key), item, depth + 1))
        elif isinstance(value, list):
            stack.extend(((*loc, i), item, depth + 1) for i, item in enumerate(value))


class _Key(str):
    """Marks an object key while walking (keys are single-line)."""


def check_json(body: bytes) -> Refusal | None:
    """The first hostile value of a JSON body; None when it is clean or not JSON at all (FastAPI then says why)."""
    try:
        doc = _decode(body)
    except RecursionError:
        return Refusal(("body",), "the JSON is nested too deeply", "JSON-dokumentet er nøstet for dypt")
    except ValueError:
        return None  # not JSON (or not UTF-8/16/32): FastAPI answers with its own validation error
    for loc, value, depth in _walk(doc):
        if depth >= MAX_JSON_DEPTH:  # the top level is level 1
            return Refusal(
                loc,
                f"the JSON is nested more than {MAX_JSON_DEPTH} levels deep",
                f"JSON-dokumentet er nøstet mer enn {MAX_JSON_DEPTH} nivåer",
            )
        if isinstance(value, _NonFinite):
            return _number_refusal(loc, (value.written, value.written))
        if isinstance(value, float) and not math.isfinite(value):
            return _number_refusal(loc, _TOO_LARGE_FLOAT)
        if isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
            return _number_refusal(loc, _TOO_LARGE_INT)
        if isinstance(value, str) and (refusal := check_text(value, loc, multiline=not isinstance(value, _Key))):
            return refusal
    return None


def check_form(body: bytes) -> Refusal | None:
    """The first hostile field of a url-encoded form, decoded as Starlette decodes it."""
    for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
        refusal = check_text(name, ("body",)) or check_text(value, ("body", name))
        if refusal is not None:
            return refusal
    return None


def check_head(scope: Scope) -> Refusal | None:
    """Path, query parameters and header values of a request."""
    if refusal := check_text(scope.get("path", ""), ("path",)):
        return refusal
    for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        if refusal := check_text(name, ("query",)) or check_text(value, ("query", name)):
            return refusal
    for raw_name, raw_value in scope.get("headers", []):
        if _HEADER_BYTES.search(raw_value):
            name = raw_name.decode("latin-1")
            return Refusal(
                ("header", name), "a control character is not allowed here", "kontrolltegn er ikke tillatt her"
            )
    return None


def _media_type(content_type: str | None) -> tuple[str, str] | None:
    """(main type, subtype) of a Content-Type header, parsed as FastAPI parses it; None when absent."""
    if not content_type:
        return None
    message = email.message.Message()
    message["content-type"] = content_type
    return message.get_content_maintype(), message.get_content_subtype()


def check_body(content_type: str | None, body: bytes) -> Refusal | None:
    if not body:
        return None
    media = _media_type(content_type)
    if media is None or (media[0] == "application" and (media[1] == "json" or media[1].endswith("+json"))):
        return check_json(body)  # FastAPI decodes a body without Content-Type as JSON too
    if media == ("application", "x-www-form-urlencoded"):
        return check_form(body)
    return None


def _refused(scope: Scope, refusal: Refusal) -> Any:
    error = {"loc": [str(part) for part in refusal.loc], "msg": refusal.msg, "message_nb": refusal.message_nb}
    return refusal_for(scope["path"], 422, "Unprocessable Content", "the request is not valid", errors=[error])


class InputHygiene:
    """ASGI middleware applying the checks above to every HTTP request; see the module docstring."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if refusal := check_head(scope):
            await _refused(scope, refusal)(scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        content_type = headers.get(b"content-type", b"").decode("latin-1") or None
        if scope.get("method") not in _BODY_METHODS and b"content-length" not in headers:
            await self.app(scope, receive, send)
            return
        media = _media_type(content_type)
        if media == ("multipart", "form-data"):
            detail = "multipart bodies are not accepted; send forms as application/x-www-form-urlencoded"
            await refusal_for(scope["path"], 415, "Unsupported Media Type", detail)(scope, receive, send)
            return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if refusal := check_body(content_type, body):
            await _refused(scope, refusal)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the request body is larger than {self.max_body_bytes} bytes"
        await refusal_for(scope["path"], 413, "Content Too Large", detail)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then the client's further messages (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


__all__ = ["MAX_BODY_BYTES", "MAX_JSON_DEPTH", "InputHygiene", "Refusal", "check_body", "check_head", "check_text"]
