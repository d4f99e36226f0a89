"""Proxies (fullmakter): a patient lets a named relative act for them in listed rights until an end date.

Granted by the patient in the patient app, or by a nurse on the patient's documented wish (the basis says where
that wish is written down). Revoking takes effect at the relative's next request (`citizen.access` checks the
proxy on every one). The relative is named by national identity number and name: the person the national sign-in
vouches for is the one who gets in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, sql

_COLUMNS = (
    "x.id, x.patient_id, c.display_name, x.relation, x.rights, x.valid_from, x.valid_until, x.granted_at, "
    "coalesce(gu.display_name, gc.display_name), CASE WHEN x.granted_by_user IS NULL THEN 'patient' ELSE gu.role END, "
    "x.basis, x.revoked_at, coalesce(ru.display_name, rc.display_name), "
    "x.revoked_at IS NULL AND x.valid_from <= now() AND x.valid_until > now()"
)
_FROM = (
    "FROM proxies x JOIN citizens c ON c.id = x.relative_id "
    "LEFT JOIN users gu ON gu.id = x.granted_by_user LEFT JOIN citizens gc ON gc.id = x.granted_by_citizen "
    "LEFT JOIN users ru ON ru.id = x.revoked_by_user LEFT JOIN citizens rc ON rc.id = x.revoked_by_citizen"
)


def _row(r: Any) -> dict[str, Any]:
    return {
        "id": r[0],
        "patient_id": r[1],
        "relative_name": r[2],
        "relation": r[3],
        "rights": sorted(r[4]),
        "valid_from": r[5],
        "valid_until": r[6],
        "granted_at": r[7],
        "granted_by": r[8],
        "granted_by_role": r[9],
        "basis": r[10],
        "revoked_at": r[11],
        "revoked_by": r[12],
        "active": bool(r[13]),
    }


def for_patient(conn: Connection[Any], patient_id: UUID) -> list[dict[str, Any]]:
    """Every proxy of the patient, the active ones first."""
    rows = conn.execute(
        sql.SQL("SELECT {} {} WHERE x.patient_id = %s ORDER BY 14 DESC, x.granted_at DESC LIMIT 100").format(
            sql.SQL(_COLUMNS), sql.SQL(_FROM)
        ),
        (patient_id,),
    ).fetchall()
    return [_row(r) for r in rows]


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
    relative = conn.execute(
        "INSERT INTO citizens (national_id, display_name) VALUES (%s, %s) "
        "ON CONFLICT (national_id) DO UPDATE SET national_id = EXCLUDED.national_id RETURNING id",
        (relative_national_id, relative_name),
    ).fetchone()
    assert relative is not None
    row = conn.execute(
        "INSERT INTO proxies (patient_id, relative_id, relation, rights, valid_until, granted_by_citizen, "
        "granted_by_user, basis) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (patient_id, relative[0], relation, sorted(set(rights)), valid_until, citizen_id, user_id, basis),
    ).fetchone()
    assert row is not None
    found = one(conn, patient_id, row[0])
    assert found is not None
    return found


def one(conn: Connection[Any], patient_id: UUID, proxy_id: UUID) -> dict[str, Any] | None:
    row = conn.execute(
        sql.SQL("SELECT {} {} WHERE x.patient_id = %s AND x.id = %s").format(sql.SQL(_COLUMNS), sql.SQL(_FROM)),
        (patient_id, proxy_id),
    ).fetchone()
    return _row(row) if row else None


def revoke(
    conn: Connection[Any],
    patient_id: UUID,
    proxy_id: UUID,
    *,
    citizen_id: UUID | None = None,
    user_id: UUID | None = None,
) -> dict[str, Any] | None:
    """End a proxy now; None when the patient has no such proxy. Revoking twice keeps the first time."""
    conn.execute(
        "UPDATE proxies SET revoked_at = now(), revoked_by_citizen = %s, revoked_by_user = %s "
        "WHERE id = %s AND patient_id = %s AND revoked_at IS NULL",
        (citizen_id, user_id, proxy_id, patient_id),
    )
    return one(conn, patient_id, proxy_id)
