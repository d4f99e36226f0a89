"""`varde demo stop`: SIGTERM to the pid in the demo's pid file ends a demo wherever it is, also while it is still
setting up (a blocking call in the main thread), and reports a demo that had already ended."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from varde.demo import DemoError, stop_demo

# A stand-in for the demo process: the demo's own SIGTERM handling around a long blocking step of its set-up.
_DEMO = """
import sys, time
from varde.demo import _install_sigterm
stop = _install_sigterm()
try:
    print("ready", flush=True)  # inside: the stop may come while print is still returning
    time.sleep(600)
except KeyboardInterrupt:
    print("stopping", flush=True)
    sys.exit(0)
sys.exit(3)
"""


def test_stop_ends_a_demo_blocked_in_its_set_up_promptly(tmp_path: Path) -> None:
    demo = subprocess.Popen([sys.executable, "-c", _DEMO], stdout=subprocess.PIPE, text=True)
    try:
        assert demo.stdout is not None and demo.stdout.readline().strip() == "ready"
        (tmp_path / "demo.pid").write_text(f"{demo.pid}\n")
        started = time.monotonic()
        answer = _stop_while_reaping(tmp_path, demo)
        assert answer == f"demo (pid {demo.pid}) stopped"
        # Well before the 600 s the stand-in blocks for: the stop interrupted the blocking call (a bound with room
        # for a loaded machine, not a speed figure).
        assert time.monotonic() - started < 60
        assert demo.returncode == 0 and demo.stdout.read().strip() == "stopping"
    finally:
        demo.kill()
        demo.wait()


def _stop_while_reaping(home: Path, demo: subprocess.Popen[str]) -> str:
    """stop_demo waits until the pid is gone: reap our child meanwhile, or it would linger as a zombie."""
    import threading

    reaped = threading.Thread(target=demo.wait, daemon=True)
    reaped.start()
    return stop_demo(home, timeout_s=90)


def test_stop_reports_a_demo_that_had_already_ended_and_no_demo_at_all(tmp_path: Path) -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    (tmp_path / "demo.pid").write_text(f"{ended.pid}\n")
    assert stop_demo(tmp_path, timeout_s=1) == f"the demo (pid {ended.pid}) had already ended"
    assert not (tmp_path / "demo.pid").exists()
    with pytest.raises(DemoError, match="no demo is running"):
        stop_demo(tmp_path)
