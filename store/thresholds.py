"""A patient's own limits and trend settings, the one writer of `threshold_overrides` and `trend_overrides` and
their reader for the API and, for a batch of patients at once, for the rules (`rules_engine.runtime`): typed per kind
(`LimitOverride`) and per setting (`TrendOverride`), written by hand ('manual', the limits editor) or from the active
plan ('plan'). In the stored vocabulary a NULL limit inherits the protocol's, NaN removes the limit, and a NaN trend
setting switches that trend rule off. Composing them with the protocols is `rules_engine.profiles`'."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import class_row

Limits = tuple[float | None, float | None, float | None, float | None]
"""(red_low, yellow_low, yellow_high, red_high): `rules_engine.profiles.LIMIT_NAMES` order."""

_LIMITS = (
    "SELECT kind, red_low, yellow_low, yellow_high, red_high, source FROM threshold_overrides WHERE patient_id = %s"
)
_TRENDS = "SELECT setting, value, source FROM trend_overrides WHERE patient_id = %s"
_LIMITS_OF = (
    "SELECT patient_id, kind, red_low, yellow_low, yellow_high, red_high FROM threshold_overrides "
    "WHERE patient_id = ANY(%s)"
)
_TRENDS_OF = "SELECT patient_id, setting, value FROM trend_overrides WHERE patient_id = ANY(%s)"
_DELETE_LIMIT = "DELETE FROM threshold_overrides WHERE patient_id = %s AND kind = %s"
_DELETE_TREND = "DELETE FROM trend_overrides WHERE patient_id = %s AND setting = %s"
_DELETE_PLAN_LIMITS = "DELETE FROM threshold_overrides WHERE patient_id = %s AND source = 'plan'"
_DELETE_PLAN_TRENDS = "DELETE FROM trend_overrides WHERE patient_id = %s AND source = 'plan'"
_MANUAL_LIMIT = (
    "INSERT INTO threshold_overrides (patient_id, kind, red_low, yellow_low, yellow_high, red_high, source, plan_id, "
    "updated_by, updated_at) VALUES (%s, %s, %s, %s, %s, %s, 'manual', NULL, %s, now()) ON CONFLICT "
    "(patient_id, kind) DO UPDATE SET red_low = EXCLUDED.red_low, yellow_low = "
    "EXCLUDED.yellow_low, yellow_high = EXCLUDED.yellow_high, red_high = EXCLUDED.red_high, "
    "source = 'manual', plan_id = NULL, updated_by = EXCLUDED.updated_by, updated_at = now()"
)
_MANUAL_TREND = (
    "INSERT INTO trend_overrides (patient_id, setting, value, source, updated_by) VALUES (%s, %s, %s, "
    "'manual', %s) ON CONFLICT (patient_id, setting) DO UPDATE SET value = EXCLUDED.value, source = 'manual', "
    "plan_id = NULL, updated_by = EXCLUDED.updated_by, updated_at = now()"
)
_PLAN_LIMIT = (
    "INSERT INTO threshold_overrides (patient_id, kind, red_low, yellow_low, yellow_high, red_high, source, plan_id, "
    "updated_by, updated_at) VALUES (%s, %s, %s, %s, %s, %s, 'plan', %s, %s, now()) ON CONFLICT "
    "(patient_id, kind) DO UPDATE SET red_low = EXCLUDED.red_low, yellow_low = "
    "EXCLUDED.yellow_low, yellow_high = EXCLUDED.yellow_high, red_high = EXCLUDED.red_high, "
    "source = 'plan', plan_id = EXCLUDED.plan_id, updated_by = EXCLUDED.updated_by, updated_at "
    "= now()"
)
_PLAN_TREND = (
    "INSERT INTO trend_overrides (patient_id, setting, value, source, plan_id, updated_by, updated_at) "
    "VALUES (%s, %s, %s, 'plan', %s, %s, now()) ON CONFLICT (patient_id, setting) DO UPDATE SET "
    "value = EXCLUDED.value, source = 'plan', plan_id = EXCLUDED.plan_id, updated_by = EXCLUDED.updated_by, "
    "updated_at = now()"
)


@dataclass(frozen=True, slots=True)
class LimitOverride:
    kind: str
    red_low: float | None
    yellow_low: float | None
    yellow_high: float | None
    red_high: float | None
    source: str
    """'manual' or 'plan'."""

    @property
    def limits(self) -> Limits:
        return (self.red_low, self.yellow_low, self.yellow_high, self.red_high)


@dataclass(frozen=True, slots=True)
class TrendOverride:
    setting: str
    value: float
    source: str
    """'manual' or 'plan'."""


def limit_overrides(conn: Connection[Any], patient_id: UUID) -> dict[str, LimitOverride]:
    """kind → the patient's own limits of that kind."""
    with conn.cursor(row_factory=class_row(LimitOverride)) as cur:
        return {row.kind: row for row in cur.execute(_LIMITS, (patient_id,)).fetchall()}


def trend_overrides(conn: Connection[Any], patient_id: UUID) -> dict[str, TrendOverride]:
    """setting → the patient's own value of that trend setting."""
    with conn.cursor(row_factory=class_row(TrendOverride)) as cur:
        return {row.setting: row for row in cur.execute(_TRENDS, (patient_id,)).fetchall()}


@dataclass(frozen=True, slots=True)
class PatientLimits:
    """One patient's own limits of one kind, as the rules read them for a batch of patients."""

    patient_id: UUID
    kind: str
    red_low: float | None
    yellow_low: float | None
    yellow_high: float | None
    red_high: float | None

    @property
    def limits(self) -> Limits:
        return (self.red_low, self.yellow_low, self.yellow_high, self.red_high)


@dataclass(frozen=True, slots=True)
class PatientTrend:
    """One patient's own value of one trend setting, as the rules read them for a batch of patients."""

    patient_id: UUID
    setting: str
    value: float


def limits_of(conn: Connection[Any], patient_ids: Sequence[UUID]) -> list[PatientLimits]:
    """The own limits of these patients, every kind they have set."""
    with conn.cursor(row_factory=class_row(PatientLimits)) as cur:
        return cur.execute(_LIMITS_OF, (list(patient_ids),)).fetchall()


def trends_of(conn: Connection[Any], patient_ids: Sequence[UUID]) -> list[PatientTrend]:
    """The own trend settings of these patients."""
    with conn.cursor(row_factory=class_row(PatientTrend)) as cur:
        return cur.execute(_TRENDS_OF, (list(patient_ids),)).fetchall()


def save_manual_limits(conn: Connection[Any], patient_id: UUID, rows: Mapping[str, Limits], user_id: UUID) -> None:
    """kind → limits set by hand; a kind with every limit None goes back to inheriting them all (its row goes)."""
    for kind, values in rows.items():
        if all(v is None for v in values):
            conn.execute(_DELETE_LIMIT, (patient_id, kind))
            continue
        conn.execute(_MANUAL_LIMIT, (patient_id, kind, *values, user_id))


def save_manual_trends(
    conn: Connection[Any], patient_id: UUID, rows: Mapping[str, float | None], user_id: UUID
) -> None:
    """setting → a number (or NaN: rule off) set by hand; None returns to the protocol's value (its row goes)."""
    for setting, value in rows.items():
        if value is None:
            conn.execute(_DELETE_TREND, (patient_id, setting))
            continue
        conn.execute(_MANUAL_TREND, (patient_id, setting, value, user_id))


def clear_plan(conn: Connection[Any], patient_id: UUID) -> None:
    """Remove the limits and trend settings a plan wrote."""
    conn.execute(_DELETE_PLAN_LIMITS, (patient_id,))
    conn.execute(_DELETE_PLAN_TRENDS, (patient_id,))


def write_plan(
    conn: Connection[Any],
    patient_id: UUID,
    plan_id: UUID,
    limits: Iterable[tuple[str, Limits]],
    trends: Iterable[tuple[str, float]],
    user_id: UUID,
) -> None:
    """The plan's limits (kind, limits) and trend settings (setting, value) replace earlier plan rows and any
    manual ones of the same kinds and settings."""
    clear_plan(conn, patient_id)
    for setting, value in trends:
        conn.execute(_PLAN_TREND, (patient_id, setting, value, plan_id, user_id))
    for kind, values in limits:
        conn.execute(_PLAN_LIMIT, (patient_id, kind, *values, plan_id, user_id))


__all__ = [
    "LimitOverride",
    "Limits",
    "PatientLimits",
    "PatientTrend",
    "TrendOverride",
    "clear_plan",
    "limit_overrides",
    "limits_of",
    "save_manual_limits",
    "save_manual_trends",
    "trend_overrides",
    "trends_of",
    "write_plan",
]
