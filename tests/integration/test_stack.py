"""`varde stack up/status/down` in a fresh home, twice in a row, as root and as an unprivileged user.

Each run uses its own VARDE_HOME, so it needs nothing of the session's test stack and leaves it alone. The stack
never takes the default ports: a PostgreSQL or Mosquitto already listening on 5432/1883 (here the system's own, or
a placeholder listener this test opens when the port is free) does not disturb it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
UNPRIVILEGED = "varde-dev"


@contextlib.contextmanager
def _default_ports_taken() -> Iterator[None]:
    """Make sure something listens on 5432 and 1883 while the stack starts."""
    placeholders = []
    for port in (5432, 1883):
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
            placeholders.append(sock)
        except OSError:
            sock.close()  # already taken, by a real server
    try:
        yield
    finally:
        for sock in placeholders:
            sock.close()


def _varde(
    home: Path, *args: str, user: pwd.struct_passwd | None = None, python: str = sys.executable, timeout: float = 180
) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VARDE_") and k != "PYTHONPATH"}
    env.update(VARDE_HOME=str(home))
    if python == sys.executable:
        env["PYTHONPATH"] = str(REPO)
    kwargs: dict[str, Any] = {}
    if user is not None:
        env.update(HOME=str(home), USER=user.pw_name)
        kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    return subprocess.run(
        [python, "-m", "varde", *args],
        env=env,
        cwd=str(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def _cycle_twice(
    home: Path, user: pwd.struct_passwd | None = None, python: str = sys.executable
) -> list[dict[str, Any]]:
    reports = []
    for _ in range(2):
        up = _varde(home, "stack", "up", "--detach", user=user, python=python)
        assert up.returncode == 0, up.stderr[-2000:]
        status = _varde(home, "stack", "status", user=user, python=python)
        assert status.returncode == 0, status.stdout + status.stderr[-2000:]
        report = json.loads(status.stdout)
        assert report["running"] is True
        assert set(report["components"]) == {"postgres", "mqtt", "ingest", "rules", "api", "journal"}
        state = json.loads((home / "stack.json").read_text())
        assert {"database_url", "mqtt_host", "mqtt_port", "api_url"} <= set(state)
        assert state["postgres"]["port"] != 5432 and state["mqtt_port"] != 1883
        reports.append(report)
        down = _varde(home, "stack", "down", user=user, python=python)
        assert down.returncode == 0, down.stderr[-2000:]
        after = _varde(home, "stack", "status", user=user, python=python)
        assert after.returncode == 1
        assert not any(c.get("up") for c in json.loads(after.stdout)["components"].values())
    return reports


def test_stack_up_status_down_twice_with_default_ports_taken(tmp_path: Path) -> None:
    home = tmp_path / "stack"
    home.mkdir()
    with _default_ports_taken():
        _cycle_twice(home)
    assert (home / "logs" / "postgres.log").exists() and (home / "logs" / "ingest.log").exists()
    assert oct((home / "secrets.json").stat().st_mode & 0o777) == "0o600"


@pytest.fixture
def unprivileged_user() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam(UNPRIVILEGED)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", UNPRIVILEGED], check=True
        )
        return pwd.getpwnam(UNPRIVILEGED)


@pytest.fixture(scope="session")
def unprivileged_python() -> str:
    """A Python with this checkout installed that an unprivileged user can execute.

    The test interpreter may live where other users cannot reach it (e.g. under /root), so as root this builds a
    world-readable virtual environment from the system's python3 and installs the checkout into it (not editable).
    """
    if os.geteuid() != 0:
        return sys.executable
    system_python = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    assert system_python, "no system python3 for the unprivileged user"
    venv = Path("/var/tmp/varde-unprivileged-venv")
    if not (venv / "bin" / "python").exists():
        subprocess.run([system_python, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", f"{REPO}[server]"], check=True, timeout=900)
    else:
        # A dependency added since the venv was made is installed first; then this checkout replaces the last one.
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", f"{REPO}[server]"], check=True, timeout=900)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", "--force-reinstall", f"{REPO}[server]"],
            check=True,
            timeout=300,
        )
    subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
    return str(venv / "bin" / "python")


def test_stack_up_status_down_twice_as_unprivileged_user(
    unprivileged_user: pwd.struct_passwd, unprivileged_python: str
) -> None:
    home = Path("/tmp") / f"varde-stack-{unprivileged_user.pw_name}-{os.getpid()}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    os.chown(home, unprivileged_user.pw_uid, unprivileged_user.pw_gid)
    user = unprivileged_user if os.geteuid() == 0 else None
    try:
        _cycle_twice(home, user=user, python=unprivileged_python)
        data = home / "data" / "pg"
        assert data.stat().st_uid == unprivileged_user.pw_uid
    finally:
        _varde(home, "stack", "down", user=user, python=unprivileged_python)
        shutil.rmtree(home, ignore_errors=True)
