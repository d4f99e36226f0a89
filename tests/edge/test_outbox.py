"""The outbox keeps every reading until its envelope is acknowledged, replays oldest-first and stays bounded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from edge_fixtures import make_readings

from edge_agent.outbox import Outbox
from vitals import Reading

REPO = Path(__file__).resolve().parents[2]


def _ids(rows: list[bytes]) -> list[str]:
    return [json.loads(body)["id"] for body in rows]


def test_replay_is_oldest_first_across_reopen(tmp_path: Path) -> None:
    readings = make_readings(50)
    with Outbox(tmp_path / "o.sqlite") as outbox:
        for chunk in range(0, 50, 7):
            outbox.put(readings[chunk : chunk + 7])
    with Outbox(tmp_path / "o.sqlite") as outbox:
        assert outbox.depth == 50
        batch = outbox.fetch(0, 1000)
    assert _ids([r.body for r in batch.rows]) == [str(r.id) for r in readings]
    assert not batch.more


def test_stored_body_is_the_reading_wire_json(tmp_path: Path) -> None:
    reading = make_readings(1)[0]
    with Outbox(tmp_path / "o.sqlite") as outbox:
        outbox.put([reading])
        body = outbox.fetch(0, 1).rows[0].body
    assert Reading.model_validate_json(body) == reading


def test_reputting_a_reading_id_is_a_no_op(tmp_path: Path) -> None:
    readings = make_readings(10)
    with Outbox(tmp_path / "o.sqlite") as outbox:
        first = outbox.put(readings)
        again = outbox.put(readings[3:6] + make_readings(2))
        assert (first.added, first.duplicates) == (10, 0)
        assert (again.added, again.duplicates, again.refused) == (2, 3, 0)
        assert outbox.depth == 12
        assert len(outbox.fetch(0, 100).rows) == 12


def test_ack_removes_exactly_the_acknowledged_ranges(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as outbox:
        outbox.put(make_readings(30))
        rows = outbox.fetch(0, 30).rows
        first, second = rows[:10], rows[20:25]
        removed = outbox.ack([(first[0].seq, first[-1].seq), (second[0].seq, second[-1].seq)])
        assert removed == 15
        assert outbox.depth == 15
        left = [r.seq for r in outbox.fetch(0, 100).rows]
    assert left == [r.seq for r in rows[10:20] + rows[25:]]


def test_fetch_after_cursor_and_byte_limit(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as outbox:
        outbox.put(make_readings(100))
        rows = outbox.fetch(0, 100).rows
        size = len(rows[0].body) + 1
        limited = outbox.fetch(0, 100, max_bytes=size * 10)
        assert len(limited.rows) == 10 and limited.more
        after = outbox.fetch(rows[49].seq, 20)
        assert [r.seq for r in after.rows] == [r.seq for r in rows[50:70]] and after.more
        tail = outbox.fetch(rows[89].seq, 20)
        assert len(tail.rows) == 10 and not tail.more


def test_full_outbox_refuses_newest_and_reports_full(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", max_rows=100) as outbox:
        outbox.put(make_readings(90))
        result = outbox.put(make_readings(25))
        assert (result.added, result.refused) == (10, 15)
        assert outbox.full
        assert outbox.put(make_readings(1)).refused == 1
        rows = outbox.fetch(0, 5).rows
        outbox.ack([(rows[0].seq, rows[-1].seq)])
        assert not outbox.full
        assert outbox.put(make_readings(5)).added == 5


def test_rows_past_the_age_bound_expire_and_free_room(tmp_path: Path) -> None:
    now = time.time()
    with Outbox(tmp_path / "o.sqlite", max_rows=100, max_age_s=3600) as outbox:
        outbox.put(make_readings(60), now=now - 7200)
        outbox.put(make_readings(40), now=now - 60)
        assert outbox.full
        result = outbox.put(make_readings(10))
        assert (result.added, result.refused) == (10, 0)
        assert outbox.depth == 50
        assert outbox.expired_total == 60
        assert outbox.expire() == 0


def test_replay_rate_exceeds_5000_readings_per_second(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as outbox:
        readings = make_readings(20_000)
        started = time.perf_counter()
        for i in range(0, len(readings), 1000):
            outbox.put(readings[i : i + 1000])
        cursor, drained = 0, 0
        while batch := outbox.fetch(cursor, 500).rows:
            cursor = batch[-1].seq
            drained += outbox.ack([(batch[0].seq, batch[-1].seq)])
        elapsed = time.perf_counter() - started
        assert drained == 20_000 and outbox.depth == 0
    assert 20_000 / elapsed > 5000, f"put+fetch+ack of 20 000 readings took {elapsed:.2f}s"


_WRITER = """
import sys, uuid
from datetime import UTC, datetime
from pathlib import Path
from edge_agent.outbox import Outbox
from vitals import DeviceRef, Reading
ref = DeviceRef(address="A4:C1:38:00:00:02", type="pulse_oximeter")
outbox = Outbox(Path(sys.argv[1]))
i = 0
while True:
    batch = [Reading(id=uuid.uuid4(), kind="spo2", value=95.0, unit="%", measured_at=datetime.now(UTC), device=ref)
             for _ in range(5)]
    outbox.put(batch)
    for r in batch:
        print(r.id, flush=True)
    i += 1
"""


def test_committed_readings_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, env=env, text=True, bufsize=1
    )
    assert proc.stdout is not None
    committed: list[str] = []
    deadline = time.monotonic() + 30
    while len(committed) < 500 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        committed.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert len(committed) >= 500, "writer did not report enough commits"
    with Outbox(path) as outbox:
        stored = set(_ids([r.body for r in outbox.fetch(0, 1_000_000).rows]))
        assert outbox.depth == len(stored)
    assert set(committed) <= stored
