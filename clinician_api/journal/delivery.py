"""Sending one outbox entry to its record system, and sorting the answer: delivered, try again later (the system
is down, busy or timed out), or refused (a 4xx other than 408/429: resending the same Bundle cannot help).

A document (or collection) is POSTed to `[base]/Bundle` with `If-None-Exist` on its identifier; a transaction is
POSTed to `[base]` and creates each resource only if its identifier is not there yet. Either way a resend after a
lost answer leaves one copy at the receiver.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from uuid import UUID

from clinician_api.fhir import FHIR_JSON
from clinician_api.journal.credentials import ClientCredentials, CredentialsError, TokenCache, http_url
from store.journal import EndpointRow

_ERROR_TEXT = 1000
_RETRY_AFTER_MAX = 3600.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: UUID
    name: str
    base_url: str
    credentials: ClientCredentials | None
    max_attempts: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    timeout_seconds: float

    @classmethod
    def of(cls, row: EndpointRow) -> Endpoint:
        """The endpoint as stored; client credentials when it names a token URL (the table's CHECK sets the client
        id and secret reference with it)."""
        creds = None
        if row.token_url and row.client_id and row.client_secret_ref:
            creds = ClientCredentials(row.token_url, row.client_id, row.client_secret_ref, row.scope)
        return cls(
            row.id,
            row.name,
            row.base_url.rstrip("/"),
            creds,
            row.max_attempts,
            row.backoff_base_seconds,
            row.backoff_max_seconds,
            row.timeout_seconds,
        )

    def backoff(self, attempt: int) -> float:
        """Seconds before attempt `attempt + 1`: exponential from the base, capped, with ±20 % jitter."""
        delay = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** max(0, attempt - 1))
        return float(delay * random.uniform(0.8, 1.2))


@dataclass(frozen=True, slots=True)
class Outcome:
    """`delivered`, `retry` (transient) or `refused` (permanent); `status` is the HTTP status when there was one."""

    result: str
    status: int | None
    detail: str
    location: str | None = None
    retry_after: float | None = None


def _request(endpoint: Endpoint, bundle: dict[str, Any]) -> urllib.request.Request:
    headers = {"Content-Type": f"{FHIR_JSON}; charset=utf-8", "Accept": FHIR_JSON}
    if bundle["type"] == "transaction":
        url = endpoint.base_url
    else:
        url = f"{endpoint.base_url}/Bundle"
        identifier = bundle["identifier"]
        headers["If-None-Exist"] = f"identifier={identifier['system']}|{identifier['value']}"
    body = json.dumps(bundle, separators=(",", ":"), ensure_ascii=False).encode()
    return urllib.request.Request(http_url(url), data=body, headers=headers, method="POST")  # noqa: S310


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(_RETRY_AFTER_MAX, max(0.0, float(value)))
    except ValueError:
        pass
    try:
        return min(_RETRY_AFTER_MAX, max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()))
    except (TypeError, ValueError):
        return None


def _describe(status: int, body: bytes) -> str:
    """The endpoint's own words: OperationOutcome diagnostics/details when it sent one, else the start of the body."""
    text = body.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("resourceType") == "OperationOutcome":
        parts = []
        for issue in doc.get("issue") or []:
            words = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code")
            parts.append(f"{issue.get('severity', 'error')}: {words}")
        text = "; ".join(parts) or text
    return f"HTTP {status}: {' '.join(text.split())}"[:_ERROR_TEXT]


def send(endpoint: Endpoint, bundle: dict[str, Any], tokens: TokenCache) -> Outcome:
    """One attempt to hand the Bundle to the record system."""
    try:
        request = _request(endpoint, bundle)
    except CredentialsError as exc:
        return Outcome("refused", None, str(exc))
    if endpoint.credentials is not None:
        try:
            token = tokens.token(endpoint.credentials, timeout=endpoint.timeout_seconds)
        except CredentialsError as exc:
            return Outcome("refused" if exc.permanent else "retry", exc.status, str(exc))
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=endpoint.timeout_seconds) as response:  # noqa: S310
            return Outcome("delivered", response.status, "ok", response.headers.get("Location"))
    except urllib.error.HTTPError as exc:
        status = exc.code
        detail = _describe(status, exc.read() or b"")
        if status == 401 and endpoint.credentials is not None:
            tokens.forget(endpoint.credentials)
            return Outcome("retry", status, detail)
        if status in (408, 429) or status >= 500:
            return Outcome("retry", status, detail, retry_after=_retry_after(exc.headers.get("Retry-After")))
        return Outcome("refused", status, detail)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return Outcome("retry", None, f"record system unreachable: {reason}"[:_ERROR_TEXT])
