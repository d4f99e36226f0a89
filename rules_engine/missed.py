"""Missed measurements: a scheduled measurement not taken by its deadline (patient's local time) opens a
`missed.<kind>` alarm. One set-based query per run over every active plan, never one job per patient
(`store.schedules.missed_deadlines`).

A kind scheduled several times a day splits the day at its deadlines (as the gateway's schedule does): the 20:00
measurement is missed when nothing was measured between the 08:00 deadline and 20:00. The schedule judged is the
one in force: while a step-up lasts (`rules_engine.schedules`), the stepped-up one.

Each run looks back over the deadlines of the last `LOOKBACK` (local days, so a DST day has its own offsets), not
only today's: a rules service that was down, or a platform started after a deadline, still raises it. A deadline
before the schedule in force began (the plan version's activation, the latest step change, the episode's start) is
never judged, so a patient enrolled at noon is not missed for the morning. A reading counts by its measured time:
one measured by the deadline that reaches the platform late (a gateway offline) covers it if it is there when the
deadline is judged; one measured after the deadline does not (as the rule running at the deadline would have found).

The reminder before the deadline is the gateway's own job: it holds the plan's schedule and shows it, also offline.
Each deadline is judged once: a later run finds it already recorded on an alarm of the rule, open or resolved
(`last_missed_at`), and skips it; several missed in one run update one alarm, counted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from typing import Any
from uuid import UUID

from psycopg import Connection

from rules_engine.alarms import AlarmUpsert, upsert_alarms
from store.schedules import missed_deadlines
from vitals import KINDS, Kind

LOOKBACK = timedelta(hours=48)
"""How far back a run judges deadlines."""


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def explain_missed(kind: Kind, deadline: str, day: date) -> tuple[str, str]:
    info = KINDS[kind]
    return (
        f"Ingen måling av {_lower_first(info.name_nb)} {day:%d.%m.} før kl. {deadline} (planen)",
        f"No {_lower_first(info.name_en)} measurement on {day:%Y-%m-%d} by {deadline} (plan schedule)",
    )


def find_missed(
    conn: Connection[Any], now: datetime | None = None, lookback: timedelta = LOOKBACK
) -> list[AlarmUpsert]:
    """One candidate per patient and kind with a deadline missed in the `lookback` before `now` and not judged
    yet: the latest such deadline, `count` how many."""
    rows = missed_deadlines(conn, now or datetime.now(UTC), lookback)
    out: list[AlarmUpsert] = []
    for (patient_id, kind), group in groupby(rows, key=lambda r: (r.patient_id, r.kind)):
        missed = list(group)
        latest = missed[-1]
        hhmm = latest.deadline.strftime("%H:%M")
        nb, en = explain_missed(Kind(kind), hhmm, latest.local_day)
        out.append(
            AlarmUpsert(
                patient_id=UUID(str(patient_id)),
                rule=f"missed.{kind}",
                kind=kind,
                severity="missed",
                value=None,
                limit=None,
                count=len(missed),
                reading_id=None,
                measured_at=None,
                window_start=latest.window_start,
                window_end=latest.deadline_at,
                explanation_nb=nb,
                explanation_en=en,
                details={
                    "last_missed_day": latest.local_day.isoformat(),
                    "deadline": hhmm,
                    "last_missed_at": latest.deadline_at.isoformat(),
                },
            )
        )
    return out


def record_missed(conn: Connection[Any], now: datetime | None = None, lookback: timedelta = LOOKBACK) -> list[UUID]:
    """Open or update `missed.<kind>` alarms for every scheduled measurement past its deadline in the `lookback`."""
    with conn.transaction():
        changed = upsert_alarms(conn, find_missed(conn, now, lookback), "missed")
    return changed
