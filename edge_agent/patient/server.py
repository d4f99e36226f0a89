"""The local patient page, served by the agent with asyncio streams (no web framework on the gateway).

Routes: `/` (the page), `/app.js`, `/style.css`, `GET /api/state` (the screen snapshot), `GET /api/events`
(server-sent events: a `state` event at once, on every change — announced, or seen within `LOOK_S` — and at least
every `REFRESH_S`), and
`POST /api/questionnaires/{id}` (`{"answers": {question: option}}` → 201 with the scored response).

It listens on loopback unless configured otherwise. Requests must name an allowed host (loopback, the bind address
or `allowed_hosts`), which keeps other web pages from reading it through DNS rebinding; a POST must be JSON and, if
the browser sends an Origin, come from an allowed host too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from edge_agent.config import PatientScreenConfig
from edge_agent.patient.screen import NoPlanError, PatientScreen, QueueFullError
from vitals.questionnaire import AnswerError

log = logging.getLogger(__name__)

REFRESH_S = 10.0
"""An event at least this often, even when nothing changed (keeps proxies and the page's clock fresh)."""
LOOK_S = 1.0
"""How often an open stream looks for changes nobody announces (the broker connection, the clock)."""
_MAX_HEAD = 16 * 1024
_MAX_BODY = 16 * 1024
_HEAD_TIMEOUT_S = 10.0
_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
_SECURITY_HEADERS = (
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Cache-Control: no-store\r\n"
)
_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    421: "Misdirected Request",
    403: "Forbidden",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _HttpError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _host_name(value: str) -> str:
    """The host of a Host header or an Origin, without port and brackets, lower-case."""
    netloc = urlsplit(value).netloc if "://" in value else value
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")].lower()
    return netloc.rsplit(":", 1)[0].lower() if netloc.count(":") == 1 else netloc.lower()


class PatientScreenServer:
    def __init__(self, screen: PatientScreen, config: PatientScreenConfig) -> None:
        self._screen = screen
        self._config = config
        self._allowed = {
            "localhost",
            "127.0.0.1",
            "::1",
            config.bind.lower(),
            *(h.lower() for h in config.allowed_hosts),
        }
        package = resources.files("edge_agent.patient") / "static"
        self._static = {path: ((package / name).read_bytes(), ctype) for path, (name, ctype) in _STATIC.items()}
        self._server: asyncio.Server | None = None
        self._streams: set[asyncio.Task[Any]] = set()
        self._closing = False

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        host = self._config.bind if self._config.bind not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host if ':' not in host else f'[{host}]'}:{self.port}/"

    async def start(self) -> None:
        self._screen.changes.bind(asyncio.get_running_loop())
        self._server = await asyncio.start_server(self._serve, self._config.bind, self._config.port)
        log.info("patient_screen_listening url=%s", self.url)

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        self._closing = True
        self._screen.changes.notify()
        if self._streams:
            _done, stuck = await asyncio.wait(list(self._streams), timeout=2.0)
            for task in stuck:
                task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2.0)

    # ---- one connection, one request -----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._streams.add(task)
        try:
            request = await asyncio.wait_for(self._read(reader), _HEAD_TIMEOUT_S)
            await self._route(request, writer)
        except _HttpError as exc:
            self._json(writer, exc.status, {"detail": exc.detail})
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except asyncio.CancelledError:
            return
        finally:
            if task is not None:
                self._streams.discard(task)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await writer.drain()
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> _Request:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > _MAX_HEAD:
            raise _HttpError(413, "request head too large")
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            raise _HttpError(400, "malformed request line") from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or "0")
        if length > _MAX_BODY or length < 0:
            raise _HttpError(413, "request body too large")
        body = await reader.readexactly(length) if length else b""
        return _Request(method.upper(), urlsplit(target).path, headers, body)

    async def _route(self, request: _Request, writer: asyncio.StreamWriter) -> None:
        if _host_name(request.headers.get("host", "")) not in self._allowed:
            raise _HttpError(421, "unknown host name; add it to patient_screen.allowed_hosts")
        if request.method == "GET" and request.path in self._static:
            body, ctype = self._static[request.path]
            self._write(writer, 200, ctype, body)
        elif request.method == "GET" and request.path == "/api/state":
            self._json(writer, 200, self._screen.snapshot())
        elif request.method == "GET" and request.path == "/api/events":
            await self._events(writer)
        elif request.path.startswith("/api/questionnaires/"):
            if request.method != "POST":
                raise _HttpError(405, "use POST")
            self._json(writer, 201, self._answer(request, request.path.removeprefix("/api/questionnaires/")))
        else:
            raise _HttpError(404, "not found")

    def _answer(self, request: _Request, questionnaire_id: str) -> dict[str, Any]:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise _HttpError(415, "send the answers as application/json")
        origin = request.headers.get("origin")
        if origin is not None and _host_name(origin) not in self._allowed:
            raise _HttpError(403, "cross-origin request refused")
        try:
            doc = json.loads(request.body)
        except ValueError:
            raise _HttpError(400, "the body is not JSON") from None
        answers = doc.get("answers") if isinstance(doc, dict) else None
        if not isinstance(answers, dict) or not all(isinstance(v, str) for v in answers.values()):
            raise _HttpError(400, 'expected {"answers": {"question-id": "option-id", ...}}')
        try:
            response = self._screen.answer(questionnaire_id, answers)
        except NoPlanError as exc:
            raise _HttpError(404, str(exc)) from None
        except AnswerError as exc:
            raise _HttpError(400, str(exc)) from None
        except QueueFullError as exc:
            raise _HttpError(503, str(exc)) from None
        return json.loads(response.model_dump_json())  # type: ignore[no-any-return]

    async def _events(self, writer: asyncio.StreamWriter) -> None:
        queue = self._screen.changes.subscribe()
        try:
            writer.write(
                (
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nConnection: close\r\n"
                    f"{_SECURITY_HEADERS}\r\nretry: 1000\n\n"
                ).encode()
            )
            shown: dict[str, Any] | None = None
            sent_at = 0.0
            while not self._closing:
                doc = self._screen.snapshot()
                content = {k: v for k, v in doc.items() if k != "now"}
                if content != shown or time.monotonic() - sent_at >= REFRESH_S:
                    data = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
                    writer.write(f"event: state\ndata: {data}\n\n".encode())
                    await writer.drain()
                    shown, sent_at = content, time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queue.get(), LOOK_S)
        finally:
            self._screen.changes.unsubscribe(queue)

    # ---- responses -----------------------------------------------------------------------------------------

    def _json(self, writer: asyncio.StreamWriter, status: int, doc: Any) -> None:
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        self._write(writer, status, "application/json; charset=utf-8", body)

    @staticmethod
    def _write(writer: asyncio.StreamWriter, status: int, ctype: str, body: bytes) -> None:
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{_SECURITY_HEADERS}\r\n"
        )
        writer.write(head.encode() + body)
