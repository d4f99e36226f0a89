"""Repeat requests in PostgreSQL: read the waiting ones, store what `rules_engine.repeats.settle_repeats` decided
(in the ingest transaction), and open the alarms of requests whose time ran out (the rules leader's job).

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
from store.alarms import NewEvent, begin_with_first_readings, record_events
from store.events import Channel, Source, wake

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
    rows = conn.execute(
        "SELECT id, patient_id, rule, kind, value, extract(epoch FROM measured_at)::bigint, "
        "extract(epoch FROM due_at)::bigint FROM repeat_requests "
        "WHERE patient_id = ANY(%s::uuid[]) AND state = 'requested' ORDER BY patient_id, rule FOR UPDATE",
        (list(patient_ids),),
    ).fetchall()
    return [WaitingRepeat(r[0], row_of[r[1]], r[2], r[3], float(r[4]), int(r[5]), int(r[6])) for r in rows]


def open_alarm_keys(
    conn: Connection[Any], patient_ids: Sequence[UUID], row_of: dict[UUID, int], rules: Sequence[str]
) -> set[tuple[int, str]]:
    if not rules:
        return set()
    rows = conn.execute(
        "SELECT patient_id, rule FROM alarms WHERE patient_id = ANY(%s::uuid[]) AND rule = ANY(%s::text[]) "
        "AND state <> 'resolved'",
        (list(patient_ids), list(rules)),
    ).fetchall()
    return {(row_of[r[0]], r[1]) for r in rows}


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
    new_rows: list[tuple[Any, ...]] = []
    for d in settled.decisions:
        metrics.REPEATS.labels(outcome=d.outcome).inc()
        repeat_id = reading_ids[d.repeat_index] if d.repeat_index is not None else None
        repeat_value = float(values[d.repeat_index]) if d.repeat_index is not None else None
        if d.waiting is not None:
            conn.execute(
                "UPDATE repeat_requests SET state = %s, decided_at = now(), repeat_reading_id = %s, "
                "repeat_value = %s WHERE id = %s",
                (d.outcome, repeat_id, repeat_value, d.waiting.request_id),
            )
            if d.outcome == "expired":
                expired_waiting.append(d.waiting.request_id)
            log.info("repeat_%s rule=%s", d.outcome, d.waiting.rule)
            continue
        assert d.candidate is not None and d.candidate.reading_index is not None
        upsert = upsert_of(d.candidate)
        assert upsert.measured_at is not None
        new_rows.append(
            (
                upsert.patient_id,
                upsert.rule,
                upsert.kind,
                upsert.reading_id,
                upsert.value,
                upsert.measured_at,
                upsert.measured_at + timedelta(minutes=timeout_minutes),
                d.outcome,
                d.outcome,
                repeat_id,
                repeat_value,
                upsert_doc(upsert),
            )
        )
        log.info("repeat_%s rule=%s", d.outcome, upsert.rule)
    if new_rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO repeat_requests (patient_id, rule, kind, reading_id, value, measured_at, due_at, state, "
                "decided_at, repeat_reading_id, repeat_value, candidate) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
                "CASE WHEN %s = 'requested' THEN NULL ELSE now() END, %s, %s, %s) "
                # Two workers asking for the same (patient, rule) at once: the first request stands for both.
                "ON CONFLICT (patient_id, rule) WHERE state = 'requested' DO NOTHING",
                new_rows,
            )
        if any(r[7] == "requested" for r in new_rows):
            wake(conn, Channel.REPEATS)
    return open_expired(conn, expired_waiting, "ingest") if expired_waiting else []


def link_alarms(conn: Connection[Any], patient_ids: Sequence[UUID]) -> None:
    """Link the requests this transaction decided (confirmed, expired) to the alarm now open for their rule, with
    an alarm event per request."""
    rows = conn.execute(
        "UPDATE repeat_requests r SET alarm_id = a.id FROM alarms a "
        "WHERE r.patient_id = ANY(%s::uuid[]) AND r.state IN ('confirmed', 'expired') AND r.alarm_id IS NULL "
        "AND r.decided_at = now() AND a.patient_id = r.patient_id AND a.rule = r.rule AND a.state <> 'resolved' "
        "RETURNING a.id, r.state, r.id, r.value, r.repeat_value, r.measured_at, r.due_at",
        (list(patient_ids),),
    ).fetchall()
    begin_with_first_readings(conn, [r[0] for r in rows if r[1] == "confirmed"])
    _events(conn, rows)


def _events(conn: Connection[Any], rows: Sequence[Any]) -> None:
    record_events(
        conn,
        [
            NewEvent(
                r[0],
                f"repeat_{r[1]}",
                {
                    "request_id": str(r[2]),
                    "first_value": r[3],
                    "repeat_value": r[4],
                    "first_measured_at": r[5].isoformat(),
                    "due_at": r[6].isoformat(),
                },
            )
            for r in rows
        ],
    )


def open_expired(conn: Connection[Any], request_ids: Sequence[Any], source: Source) -> list[UUID]:
    """Open the alarms of requests already marked expired; returns the alarm ids."""
    rows = conn.execute(
        "SELECT id, candidate, value, (extract(epoch FROM due_at - measured_at) / 60)::int FROM repeat_requests "
        "WHERE id = ANY(%s::uuid[])",
        (list(request_ids),),
    ).fetchall()
    upserts = [annotated(upsert_from(r[1]), "expired", float(r[2]), int(r[3]), r[0]) for r in rows]
    changed = upsert_alarms(conn, upserts, source)
    linked = conn.execute(
        "UPDATE repeat_requests r SET alarm_id = a.id FROM alarms a WHERE r.id = ANY(%s::uuid[]) "
        "AND a.patient_id = r.patient_id AND a.rule = r.rule AND a.state <> 'resolved' "
        "RETURNING a.id, r.state, r.id, r.value, r.repeat_value, r.measured_at, r.due_at",
        (list(request_ids),),
    ).fetchall()
    _events(conn, linked)
    return changed


def expire_due(conn: Connection[Any], now: datetime | None = None) -> list[UUID]:
    """The rules leader's job: requests whose repeat did not come by `due_at` open their alarm. Returns the alarm
    ids (the dashboard is told through `varde_events`)."""
    with conn.transaction():
        rows = conn.execute(
            "UPDATE repeat_requests SET state = 'expired', decided_at = now() "
            "WHERE state = 'requested' AND due_at <= COALESCE(%s, now()) RETURNING id",
            (now,),
        ).fetchall()
        if not rows:
            return []
        metrics.REPEATS.labels(outcome="expired").inc(len(rows))
        alarm_ids = open_expired(conn, [r[0] for r in rows], "rules")
    return alarm_ids


__all__ = ["expire_due", "link_alarms", "load_waiting", "open_alarm_keys", "record"]
