"""The offline replay and the ingest rules path give the same alarm candidates for the same readings: ingest's
`evaluate_stored` over a real PostgreSQL (rule inputs and history loaded by SQL) against `rules_engine.replay`
(history and inputs in memory), one batch per measurement act in both."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from device_simulators.scenarios import heart_failure_decompensation
from ingest_service.writer import STAGE_COLUMNS, StoredBatch
from rules_engine import runtime
from rules_engine.candidates import BatchEvaluation
from rules_engine.evaluation import RuleInputs
from rules_engine.replay import ReplayReadings, ReplaySettings, replay

pytestmark = pytest.mark.integration


def test_replay_gives_the_candidates_ingest_gives_for_a_decompensating_patient(
    make_tenant: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = make_tenant(protocol="heart_failure")
    patient_id, gateway_id = tenant.patients[0], tenant.gateways[0].gateway_id
    acts = heart_failure_decompensation(7, datetime(2026, 2, 2, tzinfo=UTC), 21, onset_day=16)

    seen: list[tuple[str, str | None, str, int]] = []
    core = runtime.evaluate_patients

    def recording(inputs: RuleInputs, batch: Any, history: Any) -> BatchEvaluation:
        result = core(inputs, batch, history)
        for c in result.candidates:
            at = c.window_start if c.rule.startswith("threshold.") else c.window_end
            seen.append((c.rule, c.kind.value if c.kind else None, c.severity, int(at.timestamp())))
        return result

    monkeypatch.setattr(runtime, "evaluate_patients", recording)
    with psycopg.connect(settings.require_database_url()) as conn:
        for act in acts:
            rows = [
                (
                    uuid.uuid4(),
                    patient_id,
                    gateway_id,
                    str(k),
                    v,
                    act.at,
                    act.at,
                    "A4:C1:38:00:00:09",
                    act.device_type,
                    None,
                    None,
                    [],
                )
                for k, v in act.values
            ]
            with conn.transaction():
                conn.cursor().executemany(
                    "INSERT INTO reading_ids (id, measured_at) VALUES (%s, %s)", [(r[0], r[5]) for r in rows]
                )
                conn.cursor().executemany(
                    f"INSERT INTO readings ({STAGE_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})", rows
                )
                runtime.evaluate_stored(conn, StoredBatch.of(rows))

    readings = ReplayReadings.of((str(patient_id), k, v, act.at) for act in acts for k, v in act.values)
    result = replay(readings, RuleInputs(("heart_failure",)), ReplaySettings(batch_s=1))
    replayed = [(c.rule, c.kind, c.severity, c.at) for c in result.candidates]
    assert seen, "the scenario raised no candidate at all"
    assert {"trend.weight_gain"} <= {rule for rule, *_ in seen}
    assert sorted(replayed) == sorted(seen)
