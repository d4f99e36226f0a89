"""The agent as a process (`python -m edge_agent run`): SIGKILL loses nothing, Last Will and SIGTERM say offline."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_fixtures import Broker, Collector, make_readings, wait_until, write_config_file

from edge_agent.outbox import Outbox

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


class AgentProcess:
    def __init__(self, config: Path, log: Path) -> None:
        self._log = log.open("ab")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()

    def terminate(self) -> int:
        self.proc.terminate()
        code = self.proc.wait(15)
        self._log.close()
        return code


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[list[AgentProcess]]:
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        if agent.proc.poll() is None:
            agent.kill()


def test_sigkill_with_10000_readings_in_outbox_loses_none(
    tmp_path: Path, broker: Broker, collector: Collector, spawn: list[AgentProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    # One reading per envelope, one envelope in flight: the replay takes long enough (10 000 round trips) to be
    # interrupted by the second kill even on a loaded machine.
    config = write_config_file(tmp_path, broker.port, "window = 1\nbatch_max_readings = 1\n")
    readings = make_readings(10_000)
    outbox_path = tmp_path / "state" / "outbox.sqlite"
    broker.stop()
    with Outbox(outbox_path) as outbox:
        for i in range(0, len(readings), 1000):
            outbox.put(readings[i : i + 1000])
    spawn.append(AgentProcess(config, tmp_path / "agent.log"))
    assert wait_until(lambda: (tmp_path / "agent.log").read_bytes().count(b"broker_unreachable") >= 1, 15)
    spawn[-1].kill()
    with Outbox(outbox_path) as outbox:
        assert outbox.depth == 10_000

    broker.start()
    spawn.append(AgentProcess(config, tmp_path / "agent.log"))
    # Some envelopes through (and their rows deleted, one loop turn after each PUBACK), most still queued.
    assert wait_until(lambda: collector.unique >= 50, 20, interval_s=0.002)
    spawn[-1].kill()
    with Outbox(outbox_path) as outbox:
        left_at_second_kill = outbox.depth
    assert 0 < left_at_second_kill < 10_000, "the second kill should interrupt the replay"

    spawn.append(AgentProcess(config, tmp_path / "agent.log"))
    assert wait_until(lambda: collector.unique == 10_000, 60), f"{collector.unique} of 10000 arrived"
    assert set(collector.ids) == {str(r.id) for r in readings}
    assert collector.bad == []
    with capsys.disabled():
        print(f"\nSIGKILL replay: left_at_second_kill={left_at_second_kill} duplicates={collector.duplicates}")


def test_last_will_offline_is_retained_when_agent_is_killed(
    tmp_path: Path, broker: Broker, collector: Collector, spawn: list[AgentProcess]
) -> None:
    spawn.append(AgentProcess(write_config_file(tmp_path, broker.port), tmp_path / "agent.log"))
    assert wait_until(lambda: (collector.last_status() or {}).get("state") == "online", 15)
    spawn[-1].kill()
    assert wait_until(lambda: collector.last_status() == {"state": "offline"}, 10)
    late = Collector(broker.port, client_id="late-reader")
    try:
        assert wait_until(lambda: late.last_status() == {"state": "offline"}, 5), "offline status is not retained"
    finally:
        late.close()


def test_sigterm_stops_gracefully_with_offline_status(
    tmp_path: Path, broker: Broker, collector: Collector, spawn: list[AgentProcess]
) -> None:
    spawn.append(AgentProcess(write_config_file(tmp_path, broker.port), tmp_path / "agent.log"))
    assert wait_until(lambda: (collector.last_status() or {}).get("state") == "online", 15)
    assert spawn[-1].terminate() == 0
    assert wait_until(lambda: collector.last_status() == {"state": "offline"}, 5)
    assert b"agent_stopped exit_code=0" in (tmp_path / "agent.log").read_bytes()


def test_bad_config_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('gateway_id = "gw-0001"\npatient_timezone = "Europe/Olso"\n[broker]\nhost = "x"\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "edge_agent", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert str(path) in done.stderr and "patient_timezone" in done.stderr and "Europe/Olso" in done.stderr
