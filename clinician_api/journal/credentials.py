"""OAuth2 client credentials for record systems (HelseID style): the client secret comes from the environment or a
secrets file named by the endpoint's configuration (never from the database or the repository), and an access
token is cached until shortly before it expires."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_EARLY_REFRESH_SECONDS = 30.0


class CredentialsError(Exception):
    """The client cannot get a token. `permanent` when retrying cannot help (bad secret reference, client refused)."""

    def __init__(self, message: str, *, permanent: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    token_url: str
    client_id: str
    secret_ref: str
    scope: str | None = None


def http_url(url: str) -> str:
    """The URL, if it is http(s): configuration never makes the worker open a file or another scheme."""
    if not url.lower().startswith(("http://", "https://")):
        raise CredentialsError(f"not an http(s) URL: {url[:60]!r}", permanent=True)
    return url


def read_secret(ref: str) -> str:
    """`env:NAME` → the environment variable; `file:/path` → the file's content (surrounding blanks stripped)."""
    scheme, _, target = ref.partition(":")
    if scheme == "env":
        value = os.environ.get(target)
        if not value:
            raise CredentialsError(f"client secret: environment variable {target} is not set", permanent=True)
        return value
    if scheme == "file":
        try:
            return Path(target).read_text().strip()
        except OSError as exc:
            raise CredentialsError(f"client secret: cannot read {target}: {exc.strerror}", permanent=True) from None
    raise CredentialsError("client secret reference must be env:NAME or file:/path", permanent=True)


@dataclass(slots=True)
class _Token:
    value: str
    expires_at: float


class TokenCache:
    """One access token per client, reused until `expires_in` (minus a margin) has passed. `clock` (monotonic
    seconds) is injected by tests that let a token expire without waiting for it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens: dict[tuple[str, str, str | None], _Token] = {}
        self._lock = threading.Lock()
        self.fetched = 0

    def token(self, creds: ClientCredentials, timeout: float = 10.0) -> str:
        key = (creds.token_url, creds.client_id, creds.scope)
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.expires_at > self._clock():
                return cached.value
        token = self._fetch(creds, timeout)
        with self._lock:
            self._tokens[key] = token
        return token.value

    def forget(self, creds: ClientCredentials) -> None:
        """Drop the cached token (the record system answered 401: it may have been revoked)."""
        with self._lock:
            self._tokens.pop((creds.token_url, creds.client_id, creds.scope), None)

    def _fetch(self, creds: ClientCredentials, timeout: float) -> _Token:
        form = {"grant_type": "client_credentials", "client_id": creds.client_id}
        form["client_secret"] = read_secret(creds.secret_ref)
        if creds.scope:
            form["scope"] = creds.scope
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked by http_url
            http_url(creds.token_url),
            data=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - see http_url
                doc = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            code = _oauth_error(exc)
            permanent = exc.code in (400, 401, 403)
            message = f"token endpoint answered {exc.code}" + (f" ({code})" if code else "")
            raise CredentialsError(message, permanent=permanent, status=exc.code) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CredentialsError(f"token endpoint unreachable: {reason}", permanent=False) from None
        except ValueError:
            raise CredentialsError("token endpoint answered something that is not JSON", permanent=False) from None
        value = doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(value, str) or not value:
            raise CredentialsError("token endpoint answered without an access_token", permanent=False)
        self.fetched += 1
        lifetime = float(doc.get("expires_in") or 300)
        margin = min(_EARLY_REFRESH_SECONDS, lifetime / 10)
        return _Token(value, self._clock() + max(0.0, lifetime - margin))


def _oauth_error(exc: urllib.error.HTTPError) -> str | None:
    try:
        doc = json.loads(exc.read() or b"{}")
    except ValueError:
        return None
    error = doc.get("error") if isinstance(doc, dict) else None
    return str(error) if error else None
