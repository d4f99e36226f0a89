"""Bearer tokens: the built-in issuer's short-lived HS256 JWTs, and RS256 tokens of an external OpenID Connect
issuer verified against its JWKS. Which verifier runs is chosen by the token's `iss` claim."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal
from uuid import UUID

import jwt

from clinician_api import roles
from clinician_api.hygiene import check_text
from store.settings import Settings

ISSUER = "varde"
AUDIENCE = "varde-api"
ROLES = roles.ROLES
_ROLE_PRIORITY = roles.OIDC_PRIORITY
LEEWAY_SECONDS = 30


class TokenError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says. `user_id` is set for the built-in issuer; OIDC tokens name an external subject
    (mapped to a user row by `identity.principal_for_external`)."""

    source: Literal["local", "oidc"]
    subject: str
    username: str
    role: str
    expires_at: int
    user_id: UUID | None = None
    display_name: str = ""
    teams: tuple[str, ...] | None = None


def _secret(settings: Settings) -> str:
    if not settings.jwt_secret:
        raise TokenError("the API has no token secret configured (VARDE_JWT_SECRET)")
    return settings.jwt_secret


def issue_token(settings: Settings, user_id: UUID, username: str, role: str) -> tuple[str, int]:
    now = int(time.time())
    ttl = settings.token_ttl_minutes * 60
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "preferred_username": username,
        "role": role,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, _secret(settings), algorithm="HS256"), ttl


def verify_token(settings: Settings, token: str) -> TokenClaims:
    """Verify a bearer token from either issuer; raises TokenError with the reason."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenError(f"malformed token: {exc}") from None
    issuer = unverified.get("iss")
    if settings.oidc_issuer and issuer == settings.oidc_issuer:
        return _verify_oidc(settings, token)
    return _verify_local(settings, token)


def _verify_local(settings: Settings, token: str) -> TokenClaims:
    try:
        claims = jwt.decode(
            token,
            _secret(settings),
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "sub", "iat"]},
        )
        role = str(claims["role"])
        if role not in ROLES:
            raise TokenError(f"unknown role {role!r}")
        return TokenClaims(
            source="local",
            subject=str(claims["sub"]),
            username=str(claims.get("preferred_username", "")),
            role=role,
            expires_at=int(claims["exp"]),
            user_id=UUID(claims["sub"]),
        )
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise TokenError(f"invalid token: {exc}") from None


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    """One JWKS client per URL and process; it caches the keys and refetches on an unknown `kid`."""
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)


def _verify_oidc(settings: Settings, token: str) -> TokenClaims:
    if not settings.oidc_jwks_url or not settings.oidc_audience:
        raise TokenError("OIDC is configured without VARDE_OIDC_JWKS_URL or VARDE_OIDC_AUDIENCE")
    try:
        key = _jwks_client(settings.oidc_jwks_url).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=settings.oidc_audience,
            issuer=settings.oidc_issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid OIDC token: {exc}") from None
    for name in ("sub", "preferred_username", "name", "groups"):
        values = claims.get(name)
        for value in values if isinstance(values, list) else [values]:
            if check_text(str(value or ""), ("token", name)):
                raise TokenError(f"OIDC token claim {name} holds control characters")
    return TokenClaims(
        source="oidc",
        subject=str(claims["sub"]),
        username=str(claims.get("preferred_username") or ""),
        role=_oidc_role(claims),
        expires_at=int(claims["exp"]),
        display_name=str(claims.get("name") or ""),
        teams=_oidc_teams(claims),
    )


def _oidc_role(claims: dict[str, Any]) -> str:
    """The strongest Varde role among the `roles` claim (a list or a single string)."""
    raw = claims.get("roles", claims.get("role"))
    names = [raw] if isinstance(raw, str) else list(raw or [])
    known = sorted((str(n) for n in names if n in _ROLE_PRIORITY), key=_ROLE_PRIORITY.__getitem__)
    if not known:
        raise TokenError(f"OIDC token has no Varde role in its roles claim (one of {', '.join(ROLES)})")
    return known[0]


def _oidc_teams(claims: dict[str, Any]) -> tuple[str, ...] | None:
    """Care team names from the `groups` claim; None when the issuer does not send it (memberships kept as they are)."""
    raw = claims.get("groups")
    if raw is None:
        return None
    names = [raw] if isinstance(raw, str) else list(raw)
    return tuple(sorted({str(n).lstrip("/") for n in names}))
