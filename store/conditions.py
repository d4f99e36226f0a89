"""A patient's conditions (multimorbidity): the one place that reads and writes `patient_conditions`.

`patients.protocol` is the primary condition ('general' when there is none) and always counts as one of the
patient's conditions; setting the conditions also sets the primary, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from vitals.vocabulary import CONDITIONS as CONDITIONS


@dataclass(frozen=True, slots=True)
class PatientConditions:
    primary: str
    """`patients.protocol`: 'general' or one of `conditions`."""
    conditions: tuple[str, ...]
    """Every condition, the primary first, then in `CONDITIONS` order."""


class ConditionError(ValueError):
    """Conditions that cannot be stored; the text says why."""


def load_conditions(conn: psycopg.Connection[Any], patient_id: UUID) -> PatientConditions | None:
    row = conn.execute(
        "SELECT p.protocol, coalesce((SELECT array_agg(c.condition) FROM patient_conditions c "
        "WHERE c.patient_id = p.id), '{}') FROM patients p WHERE p.id = %s",
        (patient_id,),
    ).fetchone()
    if row is None:
        return None
    return _ordered(str(row[0]), set(row[1]))


def _ordered(primary: str, others: set[str]) -> PatientConditions:
    rest = tuple(c for c in CONDITIONS if c in others and c != primary)
    return PatientConditions(primary, ((primary,) if primary != "general" else ()) + rest)


def set_conditions(
    conn: psycopg.Connection[Any],
    patient_id: UUID,
    conditions: Sequence[str],
    primary: str | None = None,
    user_id: UUID | None = None,
) -> PatientConditions:
    """Replace the patient's conditions; `primary` defaults to the first named ('general' when none is)."""
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ConditionError(f"unknown condition {unknown[0]!r}; expected some of {list(CONDITIONS)}")
    if len(set(conditions)) != len(conditions):
        raise ConditionError("each condition may be named once")
    chosen = primary if primary is not None else (conditions[0] if conditions else "general")
    if chosen != "general" and chosen not in conditions:
        raise ConditionError(f"the primary condition {chosen!r} must be one of the conditions")
    if chosen == "general" and conditions:
        raise ConditionError("a patient with conditions has one of them as primary, not 'general'")
    conn.execute("UPDATE patients SET protocol = %s WHERE id = %s", (chosen, patient_id))
    conn.execute(
        "DELETE FROM patient_conditions WHERE patient_id = %s AND NOT (condition = ANY(%s))",
        (patient_id, list(conditions)),
    )
    conn.execute(
        "INSERT INTO patient_conditions (patient_id, condition, added_by) SELECT %s, c, %s FROM unnest(%s::text[]) "
        "AS c ON CONFLICT DO NOTHING",
        (patient_id, user_id, list(conditions)),
    )
    return _ordered(chosen, set(conditions))


__all__ = ["CONDITIONS", "ConditionError", "PatientConditions", "load_conditions", "set_conditions"]
