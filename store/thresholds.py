"""A patient's own limits and trend settings, the one writer of `threshold_overrides` and `trend_overrides` and
their reader for the API (the rules still batch-read them in `rules_engine.runtime`): typed per kind
(`LimitOverride`) and per setting (`TrendOverride`), written by hand ('manual', the limits editor) or from the active
plan ('plan'). In the stored vocabulary a NULL limit inherits the protocol's, NaN removes the limit, and a NaN trend
setting switches that trend rule off. Composing them with the protocols is `rules_engine.profiles`'."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    "TrendOverride",
    "clear_plan",
    "limit_overrides",
    "save_manual_limits",
    "save_manual_trends",
    "trend_overrides",
    "write_plan",
]
