"""Reservations (reservasjoner): a patient's standing no to sharing measurements with the hospital record
(`record_sharing`) and to research export (`research`). The one place that answers "may this patient's data
leave?"; the record delivery (journal feed, alarm documents, the worker before each send) asks here, and so must
every export (FHIR `$export` for research: filter with `not_reserved_sql("research", ...)`). The rows are
`store.consent`'.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import Connection

from store.consent import (
    RESERVATIONS,
    Reservation,
    not_reserved_sql,
    reservations_of,
    reserved_among,
    set_reservation,
)

__all__ = ["RESERVATIONS", "Reservation", "not_reserved_sql", "reservations", "reserved_among", "set_reservation"]


def reservations(conn: Connection[Any], patient_id: UUID) -> dict[str, dict[str, Any]]:
    """Each kind's state: reserved or not, since when, and who changed it last (name and role)."""
    found = {r.kind: r for r in reservations_of(conn, patient_id)}
    out: dict[str, dict[str, Any]] = {}
    for kind in RESERVATIONS:
        row = found.get(kind)
        out[kind] = {
            "reserved": row.reserved if row else False,
            "changed_at": row.changed_at if row else None,
            "changed_by": row.changed_by if row else None,
            "changed_by_role": row.changed_by_role if row else None,
        }
    return out
