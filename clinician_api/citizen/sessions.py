"""Sessions of the patient app: a random id in an HttpOnly cookie, its hash in `citizen_sessions`, idle and
absolute expiry checked on every request. A state-changing request must also carry the app's own header (which no
other site's page can send without CORS, which is off for these routes) and, when the browser sends one, this
site's Origin — so a session cookie alone never authorises a write.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any, Literal
from uuid import UUID

from psycopg import Connection

from store import citizens
from store.citizens import Citizen
from store.settings import Settings

COOKIE = "varde_min"
CSRF_HEADER = "x-varde-min"


__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "Citizen",
    "citizen_for_national_id",
    "end_session",
    "open_session",
    "session_citizen",
]


def _hash(raw: str) -> bytes:
    return hashlib.sha256(raw.encode()).digest()


def open_session(conn: Connection[Any], settings: Settings, citizen_id: UUID, via: Literal["oidc", "password"]) -> str:
    raw = secrets.token_urlsafe(32)
    citizens.open_session(conn, _hash(raw), citizen_id, via, timedelta(hours=settings.citizen_session_max_hours))
    return raw


def session_citizen(conn: Connection[Any], settings: Settings, raw: str | None) -> Citizen | None:
    """The citizen of a live session (and the session's idle clock restarted); None when absent, ended, idle too
    long or past its absolute end."""
    if not raw or len(raw) > 128:
        return None
    return citizens.touch_session(conn, _hash(raw), timedelta(minutes=settings.citizen_session_idle_minutes))


def end_session(conn: Connection[Any], raw: str | None) -> None:
    if raw:
        citizens.end_session(conn, _hash(raw))


def citizen_for_national_id(conn: Connection[Any], national_id: str, name_claim: str | None) -> UUID | None:
    """The citizen a national sign-in vouched for. A person Varde knows as a patient gets a row on first sign-in;
    a relative has one from the proxy that names them. Anyone else is not a user (None)."""
    known = citizens.by_national_id(conn, national_id)
    if known is not None:
        return known.id if known.active else None
    patient_name = citizens.patient_name(conn, national_id)
    if patient_name is None:
        return None
    return citizens.ensure(conn, national_id, (name_claim or patient_name)[:200])
