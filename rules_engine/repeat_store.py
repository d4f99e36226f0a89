"""Repeat requests as the rules keep them (the rows are `store.repeat_requests`'): read the waiting ones, store what
`rules_engine.repeats.settle_repeats` decided (in the ingest transaction), and open the alarms of requests whose
time ran out (the rules leader's job).

A request keeps the alarm it would have opened (`candidate`, an `AlarmUpsert` as JSON), so the alarm that opens at
the timeout is the one the reading raised, with "no repeat within N min" added to its explanation. Every alarm
opened from a request gets an alarm event (`repeat_confirmed`, `repeat_expired`) naming the request.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection

from rules_engine import metrics
from rules_engine.alarms import AlarmUpsert, upsert_alarms
from rules_engine.candidates import AlarmCandidate
from rules_engine.repeats import Outcome, RepeatDecisions, WaitingRepeat, annotated_texts
from store import repeat_requests
from store.alarms import NewEvent, begin_with_first_readings, open_rules, record_events
from store.events import Channel, Source, wake
from store.repeat_requests import Linked, NewRequest

log = logging.getLogger("varde.rules.repeats")

"""New requests wake the API's sender (`clinician_api.repeat_sender`), which publishes them to the gateways."""

_TIMES = ("measured_at", "window_start", "window_end")


def upsert_doc(upsert: AlarmUpsert) -> str:
    doc = dataclasses.asdict(upsert)
    for name in ("patient_id", "reading_id"):
        doc[name] = str(doc[name]) if doc[name] is not None else None
    for name in _TIMES:
        doc[name] = doc[name].isoformat() if doc[name] is not None else None
    return json.dumps(doc, default=str)


def upsert_from(doc: dict[str, Any]) -> AlarmUpsert:
    values = dict(doc)
    for name in ("patient_id", "reading_id"):
        values[name] = UUID(values[name]) if values[name] is not None else None
    for name in _TIMES:
        values[name] = datetime.fromisoformat(values[name]) if values[name] is not None else None
    return AlarmUpsert(**values)


def annotated(
    upsert: AlarmUpsert, outcome: Outcome, first_value: float, timeout_minutes: int, request_id: Any
) -> AlarmUpsert:
    assert upsert.kind is not None
    nb, en, details = annotated_texts(
        (upsert.explanation_nb, upsert.explanation_en),
        upsert.details,
        upsert.kind,
        outcome,
        first_value,
        timeout_minutes,
        request_id,
    )
    return dataclasses.replace(upsert, explanation_nb=nb, explanation_en=en, details=details)


def load_waiting(conn: Connection[Any], patient_ids: Sequence[UUID], row_of: dict[UUID, int]) -> list[WaitingRepeat]:
    """The batch's patients' waiting requests, locked until the transaction ends (the timeout job waits)."""
    return [
        WaitingRepeat(r.id, row_of[r.patient_id], r.rule, r.kind, float(r.value), int(r.measured_at_s), int(r.due_at_s))
        for r in repeat_requests.waiting(conn, patient_ids)
    ]


def open_alarm_keys(
    conn: Connection[Any], patient_ids: Sequence[UUID], row_of: dict[UUID, int], rules: Sequence[str]
) -> set[tuple[int, str]]:
    if not rules:
        return set()
    return {(row_of[r.patient_id], r.rule) for r in open_rules(conn, patient_ids, rules)}


def record(
    conn: Connection[Any],
    settled: RepeatDecisions,
    upsert_of: Callable[[AlarmCandidate], AlarmUpsert],
    patient_ids: Sequence[UUID],
    reading_ids: Sequence[UUID],
    values: Sequence[float],
    timeout_minutes: int,
) -> list[UUID]:
    """Write the batch's decisions; opens the alarms of waiting requests whose repeat came too late. Returns the ids
    of those alarms. Call `link_alarms` after the batch's own alarms are upserted."""
    expired_waiting: list[Any] = []
    new_rows: list[NewRequest] = []
    for d in settled.decisions:
        metrics.REPEATS.labels(outcome=d.outcome).inc()
        repeat_id = reading_ids[d.repeat_index] if d.repeat_index is not None else None
        repeat_value = float(values[d.repeat_index]) if d.repeat_index is not None else None
        if d.waiting is not None:
            repeat_requests.decide(conn, d.waiting.request_id, d.outcome, repeat_id, repeat_value)
            if d.outcome == "expired":
                expired_waiting.append(d.waiting.request_id)
            log.info("repeat_%s rule=%s", d.outcome, d.waiting.rule)
            continue
        assert d.candidate is not None and d.candidate.reading_index is not None
        upsert = upsert_of(d.candidate)
        assert upsert.measured_at is not None
        new_rows.append(
            NewRequest(
                patient_id=upsert.patient_id,
                rule=upsert.rule,
                kind=upsert.kind,
                reading_id=upsert.reading_id,
                value=upsert.value,
                measured_at=upsert.measured_at,
                due_at=upsert.measured_at + timedelta(minutes=timeout_minutes),
                state=d.outcome,
                repeat_reading_id=repeat_id,
                repeat_value=repeat_value,
                candidate=upsert_doc(upsert),
            )
        )
        log.info("repeat_%s rule=%s", d.outcome, upsert.rule)
    if new_rows:
        repeat_requests.insert(conn, new_rows)
        if any(r.state == "requested" for r in new_rows):
            wake(conn, Channel.REPEATS)
    return open_expired(conn, expired_waiting, "ingest") if expired_waiting else []


def link_alarms(conn: Connection[Any], patient_ids: Sequence[UUID]) -> None:
    """Link the requests this transaction decided (confirmed, expired) to the alarm now open for their rule, with
    an alarm event per request."""
    linked = repeat_requests.link_decided(conn, patient_ids)
    begin_with_first_readings(conn, [r.alarm_id for r in linked if r.state == "confirmed"])
    _events(conn, linked)


def _events(conn: Connection[Any], linked: Sequence[Linked]) -> None:
    record_events(
        conn,
        [
            NewEvent(
                r.alarm_id,
                f"repeat_{r.state}",
                {
                    "request_id": str(r.request_id),
                    "first_value": r.value,
                    "repeat_value": r.repeat_value,
                    "first_measured_at": r.measured_at.isoformat(),
                    "due_at": r.due_at.isoformat(),
                },
            )
            for r in linked
        ],
    )


def open_expired(conn: Connection[Any], request_ids: Sequence[Any], source: Source) -> list[UUID]:
    """Open the alarms of requests already marked expired; returns the alarm ids."""
    upserts = [
        annotated(upsert_from(r.candidate), "expired", float(r.value), int(r.timeout_minutes), r.id)
        for r in repeat_requests.expired(conn, request_ids)
    ]
    changed = upsert_alarms(conn, upserts, source)
    _events(conn, repeat_requests.link(conn, request_ids))
    return changed


def expire_due(conn: Connection[Any], now: datetime | None = None) -> list[UUID]:
    """The rules leader's job: requests whose repeat did not come by `due_at` open their alarm. Returns the alarm
    ids (the dashboard is told through `varde_events`)."""
    with conn.transaction():
        expired = repeat_requests.expire_due(conn, now)
        if not expired:
            return []
        metrics.REPEATS.labels(outcome="expired").inc(len(expired))
        alarm_ids = open_expired(conn, expired, "rules")
    return alarm_ids


__all__ = ["expire_due", "link_alarms", "load_waiting", "open_alarm_keys", "record"]
