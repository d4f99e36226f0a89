"""Proxies (fullmakter), the one reader and writer of `proxies`: a relative's rights for a patient until an end
date, as typed rows (`ProxyRow`, with who granted and revoked it), and whom a signed-in citizen may act for
(`ActingRow`: themself as a patient, and each live proxy naming them).

Each function is one statement in the caller's transaction; who may grant, and what a right allows, is
`clinician_api.proxies`' and `clinician_api.citizen.access`'. The relative's own row is `store.citizens`'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import class_row, scalar_row

_SELECT = sql.SQL(
    "SELECT x.id, x.patient_id, c.display_name AS relative_name, x.relation, x.rights, x.valid_from, x.valid_until, "
    "x.granted_at, coalesce(gu.display_name, gc.display_name) AS granted_by, "
    "CASE WHEN x.granted_by_user IS NULL THEN 'patient' ELSE gu.role END AS granted_by_role, "
    "x.basis, x.revoked_at, coalesce(ru.display_name, rc.display_name) AS revoked_by, "
    "x.revoked_at IS NULL AND x.valid_from <= now() AND x.valid_until > now() AS active "
    "FROM proxies x JOIN citizens c ON c.id = x.relative_id "
    "LEFT JOIN users gu ON gu.id = x.granted_by_user LEFT JOIN citizens gc ON gc.id = x.granted_by_citizen "
    "LEFT JOIN users ru ON ru.id = x.revoked_by_user LEFT JOIN citizens rc ON rc.id = x.revoked_by_citizen"
)
# `active` in ORDER BY is the output column (PostgreSQL prefers it to the input column `c.active`).
_OF_PATIENT = sql.SQL("{} WHERE x.patient_id = %s ORDER BY active DESC, x.granted_at DESC LIMIT 100").format(_SELECT)
_ONE = sql.SQL("{} WHERE x.patient_id = %s AND x.id = %s").format(_SELECT)
_ACTING = (
    "SELECT p.id AS patient_id, p.display_name AS patient_name, true AS own, NULL::uuid AS proxy_id, "
    "NULL::text AS relation, NULL::text[] AS rights, NULL::timestamptz AS valid_until "
    "FROM patients p WHERE p.national_id = %(nid)s AND p.active "
    "UNION ALL "
    "SELECT p.id, p.display_name, false, x.id, x.relation, x.rights, x.valid_until FROM proxies x "
    "JOIN patients p ON p.id = x.patient_id WHERE x.relative_id = %(cid)s AND p.active AND x.revoked_at IS NULL "
    "AND x.valid_from <= now() AND x.valid_until > now() "
    "ORDER BY own DESC, patient_name, patient_id"
)


@dataclass(frozen=True, slots=True)
class ProxyRow:
    id: UUID
    patient_id: UUID
    relative_name: str
    relation: str
    rights: list[str]
    valid_from: datetime
    valid_until: datetime
    granted_at: datetime
    granted_by: str
    """The name of the patient or the staff member who granted it."""
    granted_by_role: str
    """'patient', or the staff member's role."""
    basis: str | None
    """Where the patient's wish is written down, for a proxy a staff member granted."""
    revoked_at: datetime | None
    revoked_by: str | None
    active: bool
    """Not revoked, begun and not yet ended."""


@dataclass(frozen=True, slots=True)
class ActingRow:
    """A patient a citizen may act for: themself (`own`, no proxy), or through a live proxy with its rights."""

    patient_id: UUID
    patient_name: str
    own: bool
    proxy_id: UUID | None
    relation: str | None
    rights: list[str] | None
    valid_until: datetime | None


def for_patient(conn: Connection[Any], patient_id: UUID) -> list[ProxyRow]:
    """Every proxy of the patient (at most 100), the active ones first, then the newest."""
    with conn.cursor(row_factory=class_row(ProxyRow)) as cur:
        return cur.execute(_OF_PATIENT, (patient_id,)).fetchall()


def one(conn: Connection[Any], patient_id: UUID, proxy_id: UUID) -> ProxyRow | None:
    with conn.cursor(row_factory=class_row(ProxyRow)) as cur:
        return cur.execute(_ONE, (patient_id, proxy_id)).fetchone()


def insert(
    conn: Connection[Any],
    patient_id: UUID,
    relative_id: UUID,
    *,
    relation: str,
    rights: Sequence[str],
    valid_until: datetime,
    citizen_id: UUID | None,
    user_id: UUID | None,
    basis: str | None,
) -> UUID:
    """A new proxy, granted by the patient (`citizen_id`) or a staff member (`user_id`, with the `basis`)."""
    with conn.cursor(row_factory=scalar_row) as cur:
        proxy_id: UUID | None = cur.execute(
            "INSERT INTO proxies (patient_id, relative_id, relation, rights, valid_until, granted_by_citizen, "
            "granted_by_user, basis) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (patient_id, relative_id, relation, list(rights), valid_until, citizen_id, user_id, basis),
        ).fetchone()
    assert proxy_id is not None
    return proxy_id


def revoke(
    conn: Connection[Any], patient_id: UUID, proxy_id: UUID, *, citizen_id: UUID | None, user_id: UUID | None
) -> None:
    """End the patient's proxy now, unless it was revoked before (the first time stays)."""
    conn.execute(
        "UPDATE proxies SET revoked_at = now(), revoked_by_citizen = %s, revoked_by_user = %s "
        "WHERE id = %s AND patient_id = %s AND revoked_at IS NULL",
        (citizen_id, user_id, proxy_id, patient_id),
    )


def revoke_held_by(conn: Connection[Any], relative_id: UUID) -> None:
    """End every live proxy the relative holds, now (the demo's relative, given a fresh one each run)."""
    conn.execute("UPDATE proxies SET revoked_at = now() WHERE revoked_at IS NULL AND relative_id = %s", (relative_id,))


def acting_for(conn: Connection[Any], national_id: str, citizen_id: UUID) -> list[ActingRow]:
    """The active patient whose national id this is, then each active patient of a live proxy naming the citizen,
    by name (a patient may come twice: a renewed proxy before the old one ends)."""
    with conn.cursor(row_factory=class_row(ActingRow)) as cur:
        return cur.execute(_ACTING, {"nid": national_id, "cid": citizen_id}).fetchall()


__all__ = ["ActingRow", "ProxyRow", "acting_for", "for_patient", "insert", "one", "revoke", "revoke_held_by"]
