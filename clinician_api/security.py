"""Bearer tokens: the built-in issuer's short-lived JWTs (HS256) for local use."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import jwt

from store.settings import Settings

ISSUER = "varde"
AUDIENCE = "varde-api"


class TokenError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: UUID
    username: str
    role: str
    expires_at: int


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
    try:
        claims = jwt.decode(
            token,
            _secret(settings),
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "sub", "iat"]},
        )
        return TokenClaims(
            UUID(claims["sub"]), str(claims.get("preferred_username", "")), str(claims["role"]), int(claims["exp"])
        )
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise TokenError(f"invalid token: {exc}") from None
