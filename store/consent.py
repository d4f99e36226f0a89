"""Reservations (reservasjoner), the one reader and writer of `patient_reservations` and its history
`patient_reservation_changes`: a patient's standing no to sharing with the hospital record (`record_sharing`) and
to research export (`research`), as typed rows, and the SQL condition other queries filter patients with.

Transactions are the caller's; that every delivery and export must ask is `clinician_api.consent`'s rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import class_row, scalar_row

Reservation = Literal["record_sharing", "research"]
RESERVATIONS: tuple[Reservation, ...] = ("record_sharing", "research")


@dataclass(frozen=True, slots=True)
class ReservationRow:
    kind: str
    reserved: bool
    changed_at: datetime
    changed_by: str | None
    """The name of who changed it last: the patient, or a staff member."""
    changed_by_role: str | None
    """'patient', or the staff member's role."""


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
    with conn.cursor(row_factory=scalar_row) as cur:
        return set(
            cur.execute(
                "SELECT patient_id FROM patient_reservations WHERE kind = %s AND reserved "
                "AND patient_id = ANY(%s::uuid[])",
                (kind, list(patient_ids)),
            ).fetchall()
        )


def reservations_of(conn: Connection[Any], patient_id: UUID) -> list[ReservationRow]:
    """The patient's reservation rows (a kind never changed has none), in no order."""
    with conn.cursor(row_factory=class_row(ReservationRow)) as cur:
        return cur.execute(
            "SELECT r.kind, r.reserved, r.changed_at, coalesce(u.display_name, c.display_name) AS changed_by, "
            "CASE WHEN u.id IS NOT NULL THEN u.role WHEN c.id IS NOT NULL THEN 'patient' END AS changed_by_role "
            "FROM patient_reservations r LEFT JOIN users u ON u.id = r.changed_by_user "
            "LEFT JOIN citizens c ON c.id = r.changed_by_citizen WHERE r.patient_id = %s",
            (patient_id,),
        ).fetchall()


def set_reservation(
    conn: Connection[Any],
    patient_id: UUID,
    kind: Reservation,
    reserved: bool,
    *,
    citizen_id: UUID | None = None,
    user_id: UUID | None = None,
) -> datetime:
    """Change one reservation (in the caller's transaction) and append the change to its history; when it
    changed."""
    with conn.cursor(row_factory=scalar_row) as cur:
        changed_at: datetime | None = cur.execute(
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
    assert changed_at is not None
    return changed_at


__all__ = [
    "RESERVATIONS",
    "Reservation",
    "ReservationRow",
    "not_reserved_sql",
    "reservations_of",
    "reserved_among",
    "set_reservation",
]
