"""Reservations (reservasjoner): a patient's standing no to sharing measurements with the hospital record
(`record_sharing`) and to research export (`research`). The one place that answers "may this patient's data
leave?"; the record delivery (journal feed, alarm documents, the worker before each send) asks here, and so must
every export (FHIR `$export` for research: filter with `not_reserved_sql("research", ...)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from psycopg import Connection, sql

Reservation = Literal["record_sharing", "research"]
RESERVATIONS: tuple[Reservation, ...] = ("record_sharing", "research")


def not_reserved_sql(kind: Reservation, patient_column: str) -> sql.Composable:
    """An SQL condition true when the patient in `patient_column` has no reservation of `kind`."""
    if kind not in RESERVATIONS:
        raise ValueError(f"unknown reservation {kind!r}")
    return sql.SQL(
        "NOT EXISTS (SELECT 1 FROM patient_reservations pr WHERE pr.patient_id = {} AND pr.kind = {} AND pr.reserved)"
    ).format(sql.SQL(patient_column), sql.Literal(kind))


def reserved_among(conn: Connection[Any], kind: Reservation, patient_ids: Sequence[UUID]) -> set[UUID]:
    """Those of `patient_ids` who hold a reservation of `kind`."""
    if not patient_ids:
        return set()
    rows = conn.execute(
        "SELECT patient_id FROM patient_reservations WHERE kind = %s AND reserved AND patient_id = ANY(%s::uuid[])",
        (kind, list(patient_ids)),
    ).fetchall()
    return {r[0] for r in rows}


def reservations(conn: Connection[Any], patient_id: UUID) -> dict[str, dict[str, Any]]:
    """Each kind's state: reserved or not, since when, and who changed it last (name and role)."""
    rows = conn.execute(
        "SELECT r.kind, r.reserved, r.changed_at, coalesce(u.display_name, c.display_name), "
        "CASE WHEN u.id IS NOT NULL THEN u.role WHEN c.id IS NOT NULL THEN 'patient' END "
        "FROM patient_reservations r LEFT JOIN users u ON u.id = r.changed_by_user "
        "LEFT JOIN citizens c ON c.id = r.changed_by_citizen WHERE r.patient_id = %s",
        (patient_id,),
    ).fetchall()
    found = {r[0]: r for r in rows}
    out: dict[str, dict[str, Any]] = {}
    for kind in RESERVATIONS:
        row = found.get(kind)
        out[kind] = {
            "reserved": bool(row[1]) if row else False,
            "changed_at": row[2] if row else None,
            "changed_by": row[3] if row else None,
            "changed_by_role": row[4] if row else None,
        }
    return out


def set_reservation(
    conn: Connection[Any],
    patient_id: UUID,
    kind: Reservation,
    reserved: bool,
    *,
    citizen_id: UUID | None = None,
    user_id: UUID | None = None,
) -> datetime:
    """Change one reservation (in the caller's transaction) and append the change to its history."""
    row = conn.execute(
        "INSERT INTO patient_reservations (patient_id, kind, reserved, changed_by_citizen, changed_by_user) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (patient_id, kind) DO UPDATE SET reserved = EXCLUDED.reserved, "
        "changed_at = now(), changed_by_citizen = EXCLUDED.changed_by_citizen, "
        "changed_by_user = EXCLUDED.changed_by_user RETURNING changed_at",
        (patient_id, kind, reserved, citizen_id, user_id),
    ).fetchone()
    conn.execute(
        "INSERT INTO patient_reservation_changes (patient_id, kind, reserved, changed_by_citizen, changed_by_user) "
        "VALUES (%s, %s, %s, %s, %s)",
        (patient_id, kind, reserved, citizen_id, user_id),
    )
    assert row is not None
    return row[0]  # type: ignore[no-any-return]
