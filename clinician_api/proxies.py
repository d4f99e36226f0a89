"""Proxies (fullmakter): a patient lets a named relative act for them in listed rights until an end date.

Granted by the patient in the patient app, or by a nurse on the patient's documented wish (the basis says where
that wish is written down). Revoking takes effect at the relative's next request (`citizen.access` checks the
proxy on every one). The relative is named by national identity number and name: the person the national sign-in
vouches for is the one who gets in. The rows are `store.proxies`'.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

from store import citizens
from store import proxies as store


def _view(row: store.ProxyRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "patient_id": row.patient_id,
        "relative_name": row.relative_name,
        "relation": row.relation,
        "rights": sorted(row.rights),
        "valid_from": row.valid_from,
        "valid_until": row.valid_until,
        "granted_at": row.granted_at,
        "granted_by": row.granted_by,
        "granted_by_role": row.granted_by_role,
        "basis": row.basis,
        "revoked_at": row.revoked_at,
        "revoked_by": row.revoked_by,
        "active": row.active,
    }


def for_patient(conn: Connection[Any], patient_id: UUID) -> list[dict[str, Any]]:
    """Every proxy of the patient, the active ones first."""
    return [_view(r) for r in store.for_patient(conn, patient_id)]


def grant(
    conn: Connection[Any],
    patient_id: UUID,
    *,
    relative_national_id: str,
    relative_name: str,
    relation: str,
    rights: list[str],
    valid_until: datetime,
    citizen_id: UUID | None = None,
    user_id: UUID | None = None,
    basis: str | None = None,
) -> dict[str, Any]:
    """Give a relative a proxy (in the caller's transaction); the relative's citizen row is made when new."""
    relative_id = citizens.ensure(conn, relative_national_id, relative_name)
    proxy_id = store.insert(
        conn,
        patient_id,
        relative_id,
        relation=relation,
        rights=sorted(set(rights)),
        valid_until=valid_until,
        citizen_id=citizen_id,
        user_id=user_id,
        basis=basis,
    )
    found = one(conn, patient_id, proxy_id)
    assert found is not None
    return found


def one(conn: Connection[Any], patient_id: UUID, proxy_id: UUID) -> dict[str, Any] | None:
    row = store.one(conn, patient_id, proxy_id)
    return _view(row) if row else None


def revoke(
    conn: Connection[Any],
    patient_id: UUID,
    proxy_id: UUID,
    *,
    citizen_id: UUID | None = None,
    user_id: UUID | None = None,
) -> dict[str, Any] | None:
    """End a proxy now; None when the patient has no such proxy. Revoking twice keeps the first time."""
    store.revoke(conn, patient_id, proxy_id, citizen_id=citizen_id, user_id=user_id)
    return one(conn, patient_id, proxy_id)
