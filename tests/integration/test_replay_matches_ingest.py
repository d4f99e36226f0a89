"""The offline replay and the ingest path give the same alarm candidates for the same readings: ingest's writer and
`evaluate_stored` over a real PostgreSQL (rule inputs and history loaded by SQL) against `rules_engine.replay`
(history and inputs in memory), one batch per measurement act in both. Ingest's personal baselines are recomputed
by the scheduler's job at each midnight; the replay recomputes them in memory at the same boundaries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

import psycopg
import pytest

from device_simulators.cohort import build_cohort
from ingest_service.writer import write_batch
from rules_engine import runtime
from rules_engine.baselines import recompute_personal_limits
from rules_engine.candidates import BatchEvaluation
from rules_engine.evaluation import RuleInputs
from rules_engine.replay import ReplayReadings, ReplaySettings, replay
from rules_engine.trends import DAY_S
from store.readings import ReadingRow

pytestmark = pytest.mark.integration

# Two cohort patients whose six weeks raise threshold, trend, NEWS2 and (after the run-in, against the personal
# baselines) combined candidates (seed 11; trends need a second reading to confirm them, so they are rarer).
CHOSEN = {"c11-00005": "heart_failure", "c11-00029": "copd"}


def test_replay_gives_the_candidates_ingest_gives_for_the_same_readings(
    make_tenant: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cohort = build_cohort(seed=11, patients=30, weeks=6)
    assert {p.patient_id: p.protocol for p in cohort.patients if p.patient_id in CHOSEN} == CHOSEN
    tenants = {pid: make_tenant(protocol=protocol) for pid, protocol in CHOSEN.items()}
    ids = {pid: str(t.patients[0]) for pid, t in tenants.items()}
    rows = [r for r in cohort.readings if r[0] in CHOSEN]

    seen: list[tuple[str, str, str | None, str, int]] = []
    core = runtime.evaluate_patients

    def recording(inputs: RuleInputs, batch: Any, history: Any) -> BatchEvaluation:
        result = core(inputs, batch, history)
        for c in result.candidates:
            at = c.window_start if c.rule.startswith("threshold.") else c.window_end
            seen.append(
                (
                    inputs.protocols[c.patient_row],
                    c.rule,
                    c.kind.value if c.kind else None,
                    c.severity,
                    int(at.timestamp()),
                )
            )
        return result

    monkeypatch.setattr(runtime, "evaluate_patients", recording)
    with psycopg.connect(settings.require_database_url()) as conn:
        day = None
        for (pid, at), act in groupby(sorted(rows, key=lambda r: (r[3], r[0])), key=lambda r: (r[0], r[3])):
            today = int(at.timestamp()) // DAY_S
            if today != day:  # the scheduler's daily job, at midnight
                day = today
                recompute_personal_limits(conn, datetime.fromtimestamp(today * DAY_S, tz=UTC))
                conn.commit()
            tenant = tenants[pid]
            batch = [
                ReadingRow(
                    uuid.uuid4(),
                    tenant.patients[0],
                    tenant.gateways[0].gateway_id,
                    str(kind),
                    value,
                    at,
                    at,
                    "A4:C1:38:00:00:09",
                    "cohort",
                    None,
                    None,
                    [],
                )
                for _, kind, value, _ in act
            ]
            write_batch(conn, batch, [], runtime.evaluate_stored)  # one message per act, as the gateway sends

    readings = ReplayReadings.of((ids[pid], kind, value, at) for pid, kind, value, at in rows)
    protocols = tuple(CHOSEN[next(p for p, i in ids.items() if i == pid)] for pid in readings.patient_ids)
    result = replay(readings, RuleInputs(protocols), ReplaySettings())  # the default: one batch per act
    replayed = [(protocols[c.patient_row], c.rule, c.kind, c.severity, c.at) for c in result.candidates]
    with psycopg.connect(settings.require_database_url()) as conn:
        personal = conn.execute(
            "SELECT count(DISTINCT patient_id) FROM personal_limits WHERE patient_id = ANY(%s) AND centre IS NOT NULL",
            ([t.patients[0] for t in tenants.values()],),
        ).fetchone()
    assert personal is not None and personal[0] == len(CHOSEN), "the run-in should be over for every patient"
    assert sorted(replayed) == sorted(seen)
    families = {rule.split(".")[0] for _, rule, *_ in seen}
    assert families >= {"threshold", "trend", "news2", "combined"}, f"too few kinds of candidate: {families}"
