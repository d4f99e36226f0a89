"""Browser sessions that last a shift: a short-lived bearer access token, renewed through a refresh token that the
browser keeps in an HttpOnly, SameSite=Strict cookie scoped to `/api/v1/auth`.

Refresh tokens are random, stored only as a SHA-256 hash, and used once: each refresh marks the token used and
issues the next of its *family*. A used token presented again means a copy is in someone else's hands, so the whole
family is ended (reuse detection). A second presentation within `REUSE_GRACE_SECONDS` of the first use is the
same browser whose answer was lost (a page left while its renewal was in flight cancels the response with the new
cookie in it) or a second tab racing the first: it is given a successor of its own, as the first was (the "reuse
interval" of OAuth servers' refresh-token rotation); only a presentation after the grace ends the family. A family
ends when its user signs out, when no refresh came within the idle timeout (`session_idle_minutes`) or with a page
that reports no input for that long, after `session_max_hours`, or when the user is disabled.

The interface is small so other web apps (the patient app) can reuse it: `start`, `rotate`, `end`, and the cookie
helpers `set_cookie` / `clear_cookie` / `cookie_of`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from fastapi import Request, Response
from psycopg import Connection

from store import staff_sessions
from store.settings import Settings

REFRESH_COOKIE = "varde_refresh"
COOKIE_PATH = "/api/v1/auth"
REUSE_GRACE_SECONDS = 5
SESSION_HEADER = "X-Varde-Session"
"""Sent by the dashboard on refresh and sign-out: a header a cross-site form cannot add (a second CSRF guard
beside SameSite=Strict)."""
IDLE_HEADER = "X-Varde-Idle-Ms"
"""Sent by the dashboard on refresh: milliseconds since the last input in the page. The page renews its token while
the screen is watched, so a renewal alone is no sign of use; this is."""


class SessionError(Exception):
    """The refresh token cannot be used; `reason` is one of unknown, revoked, reused, idle, expired, disabled."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the session cannot be renewed ({reason})")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Renewal:
    user_id: UUID
    family_id: UUID
    refresh_token: str


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _insert(
    conn: Connection[Any], user_id: UUID, family_id: UUID, started: datetime | None, client_addr: str | None
) -> str:
    token = secrets.token_urlsafe(32)
    staff_sessions.add(conn, user_id, family_id, _hash(token), started, client_addr)
    return token


def start(conn: Connection[Any], user_id: UUID, client_addr: str | None) -> str:
    """A new session family for a user who just signed in; returns its first refresh token."""
    return _insert(conn, user_id, uuid4(), None, client_addr)


def rotate(
    conn: Connection[Any],
    settings: Settings,
    token: str,
    client_addr: str | None,
    idle_for: timedelta | None = None,
) -> Renewal:
    """Use a refresh token once: the next token of its family, or SessionError (the family may have ended; that
    change is committed before the error is raised, so it stands). `idle_for` is the page's time without input."""
    idle_after = timedelta(minutes=settings.session_idle_minutes)
    state = staff_sessions.lock(
        conn,
        _hash(token),
        grace_seconds=REUSE_GRACE_SECONDS,
        idle_after=idle_after,
        max_age=timedelta(hours=settings.session_max_hours),
    )
    if state is None:
        raise SessionError("unknown")
    if state.revoked:
        raise SessionError("revoked")
    idle = state.idle or (idle_for is not None and idle_for >= idle_after)
    reused = state.used and not state.just_used
    reason = (
        "reused"
        if reused
        else "idle"
        if idle
        else "expired"
        if state.too_old
        else None
        if state.user_active
        else "disabled"
    )
    if reason is not None:
        staff_sessions.revoke_family(conn, state.family_id, reason)
        conn.commit()
        raise SessionError(reason)
    if not state.used:
        staff_sessions.mark_used(conn, state.id)
    token = _insert(conn, state.user_id, state.family_id, state.family_started_at, client_addr)
    return Renewal(state.user_id, state.family_id, token)


def end(conn: Connection[Any], token: str) -> UUID | None:
    """Sign-out: end the family of this refresh token; returns its user (None for an unknown token)."""
    family = staff_sessions.family_of(conn, _hash(token))
    if family is None:
        return None
    staff_sessions.revoke_family(conn, family.family_id, "signed_out")
    return family.user_id


def end_all(conn: Connection[Any], user_id: UUID, reason: str) -> None:
    """End every session of a user (disabled, password changed)."""
    staff_sessions.revoke_user(conn, user_id, reason)


def set_cookie(response: Response, request: Request, settings: Settings, token: str) -> None:
    response.set_cookie(
        REFRESH_COOKIE,
        token,
        max_age=settings.session_max_hours * 3600,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or settings.environment == "production",
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(REFRESH_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


def cookie_of(request: Request) -> str | None:
    value = request.cookies.get(REFRESH_COOKIE)
    return value if value and len(value) <= 200 else None


__all__ = [
    "COOKIE_PATH",
    "IDLE_HEADER",
    "REFRESH_COOKIE",
    "SESSION_HEADER",
    "Renewal",
    "SessionError",
    "clear_cookie",
    "cookie_of",
    "end",
    "end_all",
    "rotate",
    "set_cookie",
    "start",
]
