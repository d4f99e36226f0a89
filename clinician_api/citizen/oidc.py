"""The OpenID Connect relying party: authorization code flow with PKCE (S256), `state` and `nonce`, and the ID
token's signature checked against the issuer's published keys (JWKS).

One issuer per audience: patients and relatives through a national sign-in (ID-porten / Helsenorge, whose `pid`
claim is the national identity number), staff through a HelseID-like issuer (an HPR-number claim). The flow's
secrets (state, nonce, code verifier) are kept server-side in `oidc_pending`, so any API replica can finish a
sign-in another one started, and a state is good for one callback only.

Tokens are verified with PyJWT, which the API already uses for its own and external bearer tokens: its
`PyJWKClient` fetches and caches the issuer's JWKS (refetching on an unknown `kid`), and `jwt.decode` checks the
signature, `iss`, `aud`, `exp`, `iat`. Discovery and the token request are plain HTTPS calls.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any, Literal

import jwt
from psycopg import Connection

from store import oidc_pending
from store.settings import Settings

Audience = Literal["patient", "staff"]
_PENDING_MINUTES = 10
_SIGNING_ALGS = ["RS256", "PS256", "ES256"]
_HTTP_TIMEOUT = 10.0
_DISCOVERY_TTL = 300.0
LEEWAY_SECONDS = 30


class OidcError(Exception):
    """A sign-in that cannot be completed; the message says why (safe to log: no tokens, no identities)."""


@dataclass(frozen=True, slots=True)
class Issuer:
    audience: Audience
    issuer: str
    client_id: str
    client_secret: str | None
    scope: str
    claim: str
    """The claim that names the person: the national identity number (patients) or the HPR number (staff)."""


def issuer_for(settings: Settings, audience: Audience) -> Issuer | None:
    """The configured issuer of an audience; None when that audience has no OpenID sign-in."""
    if audience == "patient":
        url, client, secret = (
            settings.oidc_patient_issuer,
            settings.oidc_patient_client_id,
            settings.oidc_patient_client_secret,
        )
        scope, claim = settings.oidc_patient_scope, settings.oidc_patient_id_claim
    else:
        url, client, secret = (
            settings.oidc_staff_issuer,
            settings.oidc_staff_client_id,
            settings.oidc_staff_client_secret,
        )
        scope, claim = settings.oidc_staff_scope, settings.oidc_staff_hpr_claim
    if not url or not client:
        return None
    return Issuer(audience, url.rstrip("/"), client, secret, scope, claim)


def _http_url(url: str) -> str:
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise OidcError("the sign-in service's address is not an http(s) URL")
    return url


def _get_json(url: str) -> dict[str, Any]:
    request = urllib.request.Request(_http_url(url), headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=_HTTP_TIMEOUT) as response:  # noqa: S310 - configured https URL
            doc: dict[str, Any] = json.loads(response.read())
            return doc
    except (urllib.error.URLError, ValueError, TimeoutError) as exc:
        raise OidcError(f"the sign-in service did not answer ({type(exc).__name__})") from None


_discovered: dict[str, tuple[float, dict[str, Any]]] = {}


def discovery(issuer: Issuer) -> dict[str, Any]:
    """The issuer's metadata (`/.well-known/openid-configuration`), cached for a few minutes."""
    cached = _discovered.get(issuer.issuer)
    if cached and time.monotonic() - cached[0] < _DISCOVERY_TTL:
        return cached[1]
    doc = _get_json(f"{issuer.issuer}/.well-known/openid-configuration")
    if str(doc.get("issuer", "")).rstrip("/") != issuer.issuer:
        raise OidcError("the sign-in service's metadata names another issuer")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(doc.get(name), str):
            raise OidcError(f"the sign-in service's metadata has no {name}")
    _discovered[issuer.issuer] = (time.monotonic(), doc)
    return doc


@lru_cache(maxsize=8)
def _jwks(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=int(_HTTP_TIMEOUT))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(ASCII(code_verifier)))."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def start(conn: Connection[Any], issuer: Issuer, redirect_uri: str, next_path: str | None) -> str:
    """Begin a sign-in: remember state, nonce and PKCE verifier; returns the issuer's authorization URL."""
    meta = discovery(issuer)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    oidc_pending.begin(
        conn,
        state=state,
        audience=issuer.audience,
        nonce=nonce,
        code_verifier=verifier,
        next_path=next_path,
        valid_for=timedelta(minutes=_PENDING_MINUTES),
    )
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": issuer.client_id,
            "redirect_uri": redirect_uri,
            "scope": issuer.scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    endpoint = str(meta["authorization_endpoint"])
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


@dataclass(frozen=True, slots=True)
class SignedIn:
    claims: dict[str, Any]
    subject_claim: str
    """The value of the issuer's person claim (`Issuer.claim`), as a string."""
    next_path: str | None


def finish(conn: Connection[Any], issuer: Issuer, redirect_uri: str, params: dict[str, str]) -> SignedIn:
    """Complete a sign-in from the callback's query: the state must be one this service issued for this audience
    (used once), the code is exchanged with the PKCE verifier, and the ID token must be signed by the issuer's key,
    for this client, unexpired, and carry the nonce of this sign-in."""
    state = params.get("state") or ""
    pending = oidc_pending.spend(conn, state, issuer.audience)
    conn.commit()  # a state is spent even when what follows fails
    if pending is None:
        raise OidcError("unknown or already used sign-in state")
    nonce, verifier, next_path = pending.nonce, pending.code_verifier, pending.next
    if not pending.fresh:
        raise OidcError("the sign-in took too long; start again")
    if params.get("error"):
        raise OidcError(f"the sign-in service answered {params['error'][:60]!r}")
    if "iss" in params and params["iss"].rstrip("/") != issuer.issuer:
        raise OidcError("the answer came from another issuer (RFC 9207 iss)")
    code = params.get("code")
    if not code:
        raise OidcError("the sign-in service sent no code")
    meta = discovery(issuer)
    tokens = _token_request(issuer, str(meta["token_endpoint"]), code, redirect_uri, verifier)
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise OidcError("the sign-in service sent no ID token")
    claims = verify_id_token(issuer, str(meta["jwks_uri"]), id_token, nonce)
    value = claims.get(issuer.claim)
    if value is None or isinstance(value, dict | list) or not str(value).strip():
        raise OidcError(f"the ID token has no {issuer.claim!r} claim")
    return SignedIn(claims, str(value).strip(), next_path)


def verify_id_token(issuer: Issuer, jwks_uri: str, id_token: str, nonce: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(id_token)
        if header.get("alg") not in _SIGNING_ALGS:
            raise OidcError(f"the ID token is signed with {header.get('alg')!r}, not one of {_SIGNING_ALGS}")
        key = _jwks(jwks_uri).get_signing_key_from_jwt(id_token)
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key.key,
            algorithms=_SIGNING_ALGS,
            audience=issuer.client_id,
            issuer=issuer.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise OidcError(f"the ID token did not verify: {exc}") from None
    if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise OidcError("the ID token's nonce is not this sign-in's")
    if "azp" in claims and claims["azp"] != issuer.client_id:
        raise OidcError("the ID token was issued to another client (azp)")
    return claims


def _token_request(issuer: Issuer, endpoint: str, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
    body = urllib.parse.urlencode(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    ).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if issuer.client_secret:
        pair = f"{urllib.parse.quote(issuer.client_id, safe='')}:{urllib.parse.quote(issuer.client_secret, safe='')}"
        headers["Authorization"] = f"Basic {base64.b64encode(pair.encode()).decode()}"
    else:
        body += b"&" + urllib.parse.urlencode({"client_id": issuer.client_id}).encode()
    request = urllib.request.Request(_http_url(endpoint), data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=_HTTP_TIMEOUT) as response:  # noqa: S310 - issuer's endpoint
            doc: dict[str, Any] = json.loads(response.read())
            return doc
    except urllib.error.HTTPError as exc:
        try:
            error = str(json.loads(exc.read()).get("error", exc.code))
        except ValueError:
            error = str(exc.code)
        raise OidcError(f"the code exchange was refused ({error[:60]})") from None
    except (urllib.error.URLError, ValueError, TimeoutError) as exc:
        raise OidcError(f"the code exchange failed ({type(exc).__name__})") from None
