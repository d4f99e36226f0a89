"""Sessions of the patient app: a random id in an HttpOnly cookie, its hash in `citizen_sessions`, idle and
absolute expiry checked on every request. A state-changing request must also carry the app's own header (which no
other site's page can send without CORS, which is off for these routes) and, when the browser sends one, this
site's Origin — so a session cookie alone never authorises a write.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from uuid import UUID

from psycopg import Connection

from store.settings import Settings

COOKIE = "varde_min"
CSRF_HEADER = "x-varde-min"


@dataclass(frozen=True, slots=True)
class Citizen:
    """A signed-in patient or relative. `national_id` never goes into a log line or an error text."""

    id: UUID
    display_name: str
    national_id: str


def _hash(raw: str) -> bytes:
    return hashlib.sha256(raw.encode()).digest()


def open_session(conn: Connection[Any], settings: Settings, citizen_id: UUID, via: Literal["oidc", "password"]) -> str:
    raw = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO citizen_sessions (id_hash, citizen_id, via, expires_at) VALUES (%s, %s, %s, now() + %s)",
        (_hash(raw), citizen_id, via, timedelta(hours=settings.citizen_session_max_hours)),
    )
    return raw


def session_citizen(conn: Connection[Any], settings: Settings, raw: str | None) -> Citizen | None:
    """The citizen of a live session (and the session's idle clock restarted); None when absent, ended, idle too
    long or past its absolute end."""
    if not raw or len(raw) > 128:
        return None
    row = conn.execute(
        "UPDATE citizen_sessions s SET last_seen_at = now() FROM citizens c "
        "WHERE s.id_hash = %s AND c.id = s.citizen_id AND c.active AND s.ended_at IS NULL "
        "AND s.expires_at > now() AND s.last_seen_at > now() - %s "
        "RETURNING c.id, c.display_name, c.national_id",
        (_hash(raw), timedelta(minutes=settings.citizen_session_idle_minutes)),
    ).fetchone()
    return Citizen(row[0], row[1], row[2]) if row else None


def end_session(conn: Connection[Any], raw: str | None) -> None:
    if raw:
        conn.execute(
            "UPDATE citizen_sessions SET ended_at = now() WHERE id_hash = %s AND ended_at IS NULL", (_hash(raw),)
        )


def citizen_for_national_id(conn: Connection[Any], national_id: str, name_claim: str | None) -> UUID | None:
    """The citizen a national sign-in vouched for. A person Varde knows as a patient gets a row on first sign-in;
    a relative has one from the proxy that names them. Anyone else is not a user (None)."""
    row = conn.execute("SELECT id, active FROM citizens WHERE national_id = %s", (national_id,)).fetchone()
    if row is not None:
        return row[0] if row[1] else None
    patient = conn.execute(
        "SELECT display_name FROM patients WHERE national_id = %s AND active", (national_id,)
    ).fetchone()
    if patient is None:
        return None
    created = conn.execute(
        "INSERT INTO citizens (national_id, display_name) VALUES (%s, %s) "
        "ON CONFLICT (national_id) DO UPDATE SET national_id = EXCLUDED.national_id RETURNING id",
        (national_id, (name_claim or patient[0])[:200]),
    ).fetchone()
    assert created is not None
    return UUID(str(created[0]))
