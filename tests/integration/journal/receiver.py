"""A small FHIR record system for the journal tests, served by uvicorn on loopback: it accepts document and
collection Bundles (POST /fhir/Bundle, honouring If-None-Exist) and transactions (POST /fhir, honouring each
entry's ifNoneExist), validates them with fhir.resources (R4B), keeps them by identifier, and issues OAuth2
client-credentials tokens (POST /token). A test switches it down (connection refused, or 503), to refusing (4xx),
to busy (429), or to losing its answers (it stores, then answers 500, so the sender must resend)."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Form, Header, Request
from fastapi.responses import JSONResponse
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from varde.net import free_port

FHIR_JSON = "application/fhir+json"


def _outcome(status: int, code: str, diagnostics: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON, headers=headers)


@dataclass
class RecordState:
    client_id: str = "varde-test"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    token_ttl: int = 300
    mode: str = "up"
    reject_status: int = 422
    reject_message: str = "the record system refused the document"
    lose_answers: int = 0
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: Counter[str] = field(default_factory=Counter)
    statuses: list[int] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    token_requests: int = 0
    invalid: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stored_observations(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.resources.values() if r["resourceType"] == "Observation"]


def _key(identifier: dict[str, Any] | list[dict[str, Any]]) -> str:
    first = identifier[0] if isinstance(identifier, list) else identifier
    return f"{first['system']}|{first['value']}"


def build_app(state: RecordState) -> FastAPI:
    app = FastAPI()

    @app.post("/token")
    def token(
        grant_type: str = Form(), client_id: str = Form(), client_secret: str = Form(), scope: str | None = Form(None)
    ) -> JSONResponse:
        with state.lock:
            state.token_requests += 1
        if grant_type != "client_credentials" or client_id != state.client_id or client_secret != state.client_secret:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        value = secrets.token_urlsafe(24)
        with state.lock:
            state.tokens.add(value)
        return JSONResponse({"access_token": value, "token_type": "Bearer", "expires_in": state.token_ttl})

    def gate(authorization: str | None, key: str) -> JSONResponse | None:
        with state.lock:
            state.posts[key] += 1
            mode = state.mode
        if mode == "unavailable":
            return _outcome(503, "transient", "record system in maintenance", {"Retry-After": "1"})
        if mode == "busy":
            return _outcome(429, "throttled", "too many requests", {"Retry-After": "1"})
        if mode == "timeout":
            return _outcome(408, "timeout", "request timed out")
        token = (authorization or "").removeprefix("Bearer ")
        if token not in state.tokens:
            return _outcome(401, "login", "a valid bearer token is required")
        if mode == "reject":
            return _outcome(state.reject_status, "business-rule", state.reject_message)
        return None

    def answer(status: int, body: dict[str, Any], location: str | None = None) -> JSONResponse:
        with state.lock:
            lost = state.lose_answers > 0
            if lost:
                state.lose_answers -= 1
        if lost:
            return _outcome(500, "exception", "connection to the database lost after commit")
        return JSONResponse(
            body, status_code=status, media_type=FHIR_JSON, headers={"Location": location} if location else None
        )

    def validate(doc: Any) -> JSONResponse | None:
        try:
            Bundle.model_validate(doc)
        except (ValidationError, ValueError, TypeError) as exc:
            with state.lock:
                state.invalid.append(str(exc)[:500])
            return _outcome(400, "invalid", f"invalid Bundle: {str(exc)[:300]}")
        return None

    @app.post("/fhir/Bundle")
    async def post_bundle(
        request: Request,
        authorization: str | None = Header(None),
        if_none_exist: str | None = Header(None),
    ) -> JSONResponse:
        doc = await request.json()
        key = _key(doc.get("identifier") or {"system": "none", "value": "none"})
        refused = gate(authorization, key) or validate(doc)
        if refused:
            return refused
        if if_none_exist != f"identifier={key}":
            return _outcome(400, "invalid", "If-None-Exist must name the Bundle's identifier")
        if doc["type"] == "document" and doc["entry"][0]["resource"]["resourceType"] != "Composition":
            return _outcome(400, "invalid", "a document starts with its Composition")
        with state.lock:
            existing = key in state.documents
            if not existing:
                state.documents[key] = doc
        status = 200 if existing else 201
        return answer(status, doc, f"Bundle/{doc['id']}/_history/1")

    @app.post("/fhir")
    async def transaction(request: Request, authorization: str | None = Header(None)) -> JSONResponse:
        doc = await request.json()
        key = _key(doc.get("identifier") or {"system": "none", "value": "none"})
        refused = gate(authorization, key) or validate(doc)
        if refused:
            return refused
        if doc.get("type") != "transaction":
            return _outcome(400, "invalid", "POST [base] takes a transaction Bundle")
        results = []
        with state.lock:
            for entry in doc["entry"]:
                resource, condition = entry["resource"], entry["request"]["ifNoneExist"]
                lookup = f"{resource['resourceType']}?{condition}"
                created = lookup not in state.resources
                if created:
                    state.resources[lookup] = resource
                results.append({"response": {"status": "201 Created" if created else "200 OK"}})
        return answer(200, {"resourceType": "Bundle", "type": "transaction-response", "entry": results})

    return app


class RecordSystem:
    """The receiver in a background thread; `stop()` closes the port (connection refused), `start()` reopens it."""

    def __init__(self) -> None:
        self.state = RecordState()
        self.port = free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def start(self) -> None:
        config = uvicorn.Config(build_app(self.state), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="record-system", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the test record system did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
        self._server = None

    def set_mode(self, mode: str) -> None:
        with self.state.lock:
            self.state.mode = mode
