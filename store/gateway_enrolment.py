"""One-time enrolment codes for gateways: made by `varde gateway add/rotate`, claimed once by the gateway through the
API (`POST /api/v1/gateways/enrol`) in exchange for its broker password, and discarded when that password is
revoked or replaced (`varde gateway revoke/rotate`).

The password is stored sealed (AES-256-GCM) under a key derived from the code, and only a hash of the code is kept,
so neither the database nor the API without the code can read it; claiming erases the sealed copy.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from psycopg import Connection

DEFAULT_TTL = timedelta(hours=72)
_TOKEN_BYTES = 20
"""160 bits: far beyond guessing through a rate-limited endpoint within a code's lifetime."""


def new_token() -> str:
    """A code in upper-case base32 (the QR alphanumeric set)."""
    return base64.b32encode(secrets.token_bytes(_TOKEN_BYTES)).decode("ascii").rstrip("=")


def _token_hash(gateway_id: str, token: str) -> str:
    return "sha256:" + hashlib.sha256(f"{gateway_id}\n{token.strip().upper()}".encode()).hexdigest()


def _key(gateway_id: str, token: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"varde-enrolment/{gateway_id}".encode())
    return hkdf.derive(token.strip().upper().encode())


def seal(gateway_id: str, token: str, password: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_key(gateway_id, token)).encrypt(nonce, password.encode(), gateway_id.encode())


def unseal(gateway_id: str, token: str, sealed: bytes) -> str | None:
    try:
        return AESGCM(_key(gateway_id, token)).decrypt(sealed[:12], sealed[12:], gateway_id.encode()).decode()
    except InvalidTag:
        return None


def create_enrolment(
    conn: Connection[Any], gateway_id: str, password: str, ttl: timedelta = DEFAULT_TTL
) -> tuple[str, datetime]:
    """A new code for the gateway (replacing any earlier one); returns the code and when it expires."""
    token = new_token()
    row = conn.execute(
        "INSERT INTO gateway_enrolments (gateway_id, token_hash, sealed_password, expires_at) "
        "VALUES (%s, %s, %s, now() + %s) ON CONFLICT (gateway_id) DO UPDATE SET token_hash = EXCLUDED.token_hash, "
        "sealed_password = EXCLUDED.sealed_password, created_at = now(), expires_at = EXCLUDED.expires_at, "
        "claimed_at = NULL, claimed_from = NULL RETURNING expires_at",
        (gateway_id, _token_hash(gateway_id, token), seal(gateway_id, token, password), ttl),
    ).fetchone()
    assert row is not None
    return token, row[0]


def claim_enrolment(conn: Connection[Any], gateway_id: str, token: str, client_addr: str | None) -> str | None:
    """The gateway's password for a valid, unexpired, unused code of an enabled gateway; None otherwise.

    The code is spent in the same statement that reads it, so two claims of one code cannot both succeed.
    """
    row = conn.execute(
        "WITH open AS (SELECT e.gateway_id, e.sealed_password FROM gateway_enrolments e "
        " JOIN gateways g ON g.id = e.gateway_id AND g.enabled "
        " WHERE e.gateway_id = %s AND e.token_hash = %s AND e.claimed_at IS NULL AND e.expires_at > now() "
        " FOR UPDATE OF e) "
        "UPDATE gateway_enrolments e SET claimed_at = now(), claimed_from = %s, sealed_password = NULL "
        "FROM open WHERE e.gateway_id = open.gateway_id RETURNING open.sealed_password",
        (gateway_id, _token_hash(gateway_id, token), client_addr),
    ).fetchone()
    if row is None:
        return None
    return unseal(gateway_id, token, bytes(row[0]))


def discard(conn: Connection[Any], gateway_id: str) -> None:
    """Forget the gateway's code, claimed or not (its password is revoked or replaced)."""
    conn.execute("DELETE FROM gateway_enrolments WHERE gateway_id = %s", (gateway_id,))
