"""The benchmarks' own checks fail on a wrong result: a lost id, a duplicate row, an id both stored and
dead-lettered, two open alarms of one patient and rule, a figure past its target or missing, latency probes that
never arrived."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.checks import (
    account_by_id,
    covering_arrivals,
    duplicate_open_alarms,
    failed_targets,
    percentile,
    probe_path_failures,
    spread,
)
from bench.results import keep


def _ids(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


def test_every_acked_id_stored_once_or_dead_lettered_passes() -> None:
    ids = _ids(10)
    account = account_by_id([i.bytes for i in ids], {i: 1 for i in ids[:8]}, ids[8:])
    assert account.ok and account.lost == 0 and account.stored == 8 and account.dead_lettered == 2


def test_an_acked_id_missing_from_the_table_is_lost_even_when_the_counts_match() -> None:
    ids = _ids(10)
    stranger = uuid.uuid4()  # a stored row the publisher never sent keeps the row count equal
    stored = {i: 1 for i in ids[:9]} | {stranger: 1}
    account = account_by_id(ids, stored, [])
    assert not account.ok and account.lost == 1 and account.lost_sample == (str(ids[9]),)
    assert account.unacked_stored == 1


def test_an_id_stored_twice_or_stored_and_dead_lettered_is_duplicated() -> None:
    ids = _ids(4)
    assert account_by_id(ids, {ids[0]: 2, ids[1]: 1, ids[2]: 1, ids[3]: 1}, []).duplicated == 1
    both = account_by_id(ids, {i: 1 for i in ids}, [ids[0]])
    assert not both.ok and both.duplicated == 1


def test_two_open_alarms_of_one_patient_and_rule_are_found() -> None:
    assert duplicate_open_alarms([("p1", "threshold.spo2.low"), ("p1", "news2"), ("p2", "news2")]) == 0
    assert duplicate_open_alarms([("p1", "news2"), ("p1", "news2"), ("p2", "news2")]) == 1


def test_targets_fail_when_a_figure_is_past_its_bound_missing_or_not_a_number() -> None:
    targets = {"rate": (">=", 100.0), "p99": ("<", 500.0), "lost": ("==", 0.0)}
    assert failed_targets({"rate": 150, "p99": 120.0, "lost": 0}, targets) == []
    assert failed_targets({"rate": 99.9, "p99": 120.0, "lost": 0}, targets) == ["rate=99.9, target >= 100.0"]
    assert len(failed_targets({"rate": 150, "p99": 500.0, "lost": 1}, targets)) == 2
    assert len(failed_targets({"rate": 150, "p99": float("nan"), "lost": 0}, targets)) == 1
    assert len(failed_targets({"p99": 1.0, "lost": 0}, targets)) == 1


def _arm(**changes: object) -> dict[str, object]:
    arm: dict[str, object] = {
        "probes": 200,
        "probes_acked": 200,
        "probe_error": None,
        "sse_error": None,
        "rows_seen": 200,
        "sse_events": 200,
        "sse_p99_ms": 120.0,
    }
    return arm | changes


def test_latency_arms_whose_probes_all_arrived_pass() -> None:
    assert probe_path_failures({"50": _arm(), "80": _arm(sse_events=198, rows_seen=199)}, asked=200) == []


def test_probes_that_never_reached_the_stream_or_the_table_fail_their_arm() -> None:
    # The shape of a broken probe path: every probe sent, none stored, no alarm event, and nothing else wrong.
    broken = _arm(probes_acked=0, rows_seen=0, sse_events=0, sse_p99_ms=float("nan"))
    failed = probe_path_failures({"50": _arm(), "80": broken}, asked=200)
    assert failed == [
        "latency 80: 200 of 200 probes never acknowledged as delivered",
        "latency 80: sse_events=0 of 200 probes, target >= 99%",
        "latency 80: rows_seen=0 of 200 probes, target >= 99%",
    ]
    assert probe_path_failures({"50": _arm(sse_events=197)}, asked=200) == [
        "latency 50: sse_events=197 of 200 probes, target >= 99%"
    ]


def test_probes_unacknowledged_unsent_or_broken_off_fail_their_arm() -> None:
    assert probe_path_failures({"50": _arm(probes_acked=199)}, asked=200) == [
        "latency 50: 1 of 200 probes never acknowledged as delivered"
    ]
    unsent = probe_path_failures({"50": _arm(probes=0, probes_acked=0, rows_seen=0, sse_events=0)}, asked=200)
    assert unsent[0] == "latency 50: probes=0 of 200 asked for" and len(unsent) == 3
    refused = probe_path_failures({"50": _arm(probe_error="ProbeError: broker refused 1 probe gateway login(s)")}, 200)
    assert refused == ["latency 50: ProbeError: broker refused 1 probe gateway login(s)"]
    assert len(probe_path_failures({"50": _arm(sse_error="the alarm stream broke off: ReadTimeout")}, 200)) == 1
    assert len(probe_path_failures({"50": {}}, asked=200)) == 3  # no figures at all: nothing sent, seen or streamed


def test_an_alarm_event_covers_the_probes_of_its_patient_up_to_its_measured_time() -> None:
    t0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    sent = {("p1", t0): 100.0, ("p1", t0 + timedelta(seconds=0.5)): 100.5, ("p2", t0): 100.2, ("p3", t0): 100.3}
    # p1's two probes landed in one transaction: one event with the later time. p2's event is older than its probe
    # (an earlier alarm state), p3 got none.
    arrivals = {("p1", t0 + timedelta(seconds=0.5)): 101.0, ("p2", t0 - timedelta(seconds=5)): 95.0}
    assert covering_arrivals(sent, arrivals) == {("p1", t0): 101.0, ("p1", t0 + timedelta(seconds=0.5)): 101.0}
    arrivals[("p1", t0)] = 100.4
    assert covering_arrivals(sent, arrivals)[("p1", t0)] == 100.4  # its own, earlier event counts


def test_percentile_and_spread_of_arms() -> None:
    values = list(range(1, 101))
    assert percentile(values, 0.5) in (50, 51) and percentile(values, 0.99) == 99 and percentile(values, 1.0) == 100
    assert percentile([], 0.5) != percentile([], 0.5)  # NaN: no probes is never a good latency
    assert spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "runs": 3}


def test_a_kept_result_is_one_json_line_with_the_machine_facts(tmp_path: Path) -> None:
    keep("demo", {"bench": "demo", "x": 1}, machine={"cpus": 2}, directory=tmp_path)
    keep("demo", {"bench": "demo", "x": 2}, machine={"cpus": 2}, directory=tmp_path)
    lines = (tmp_path / "demo.jsonl").read_text().splitlines()
    assert [json.loads(line)["x"] for line in lines] == [1, 2]
    assert json.loads(lines[0])["machine"] == {"cpus": 2}


@pytest.mark.parametrize("script", ["ingest.py", "rules.py", "growth.py"])
def test_benchmark_scripts_start(script: str) -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(root / "bench" / script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "usage" in done.stdout
