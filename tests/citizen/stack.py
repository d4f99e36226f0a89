"""A real OpenID Provider (`oidc-provider` from npm, tests/oidc_provider/provider.mjs) on a loopback port, and an
API process of the test stack configured as its relying party (patients and staff), sharing the stack's database.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from store.settings import varde_home
from varde.net import free_port
from varde.stack import ensure_service_instances

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "oidc_provider"
PATIENT_CLIENT = "varde-min"
STAFF_CLIENT = "varde-dashboard"


def ensure_provider_installed() -> None:
    """`npm ci` from the committed lockfile when node_modules is missing (a fresh clone)."""
    if (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found: install Node.js 20 and npm (make system-deps)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PROVIDER_DIR, check=True, timeout=600)


@dataclass
class OidcStack:
    issuer: str
    api_url: str
    accounts: dict[str, dict[str, str]]


@contextmanager
def oidc_stack(workdir: Path, accounts: dict[str, dict[str, str]]) -> Iterator[OidcStack]:
    """Start the provider (accounts: login → claims) and an API process using it; both stop on exit."""
    ensure_provider_installed()
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node not found: install Node.js 20 (make system-deps)")
    api_port = free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    patient_secret, staff_secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    config = {
        "port": 0,
        "clients": [
            {
                "client_id": PATIENT_CLIENT,
                "client_secret": patient_secret,
                "redirect_uris": [f"{api_url}/auth/oidc/patient/callback"],
            },
            {
                "client_id": STAFF_CLIENT,
                "client_secret": staff_secret,
                "redirect_uris": [f"{api_url}/auth/oidc/staff/callback"],
            },
        ],
        "accounts": accounts,
    }
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "oidc-provider.json"
    config_file.write_text(json.dumps(config))
    config_file.chmod(0o600)
    provider: subprocess.Popen[str] | None = None
    api: subprocess.Popen[bytes] | None = None
    try:
        provider, issuer = _start_provider(node, config_file, workdir)
        env = {
            **os.environ,
            "VARDE_HOME": str(varde_home()),
            "PYTHONUNBUFFERED": "1",
            "VARDE_OIDC_PATIENT_ISSUER": issuer,
            "VARDE_OIDC_PATIENT_CLIENT_ID": PATIENT_CLIENT,
            "VARDE_OIDC_PATIENT_CLIENT_SECRET": patient_secret,
            "VARDE_OIDC_STAFF_ISSUER": issuer,
            "VARDE_OIDC_STAFF_CLIENT_ID": STAFF_CLIENT,
            "VARDE_OIDC_STAFF_CLIENT_SECRET": staff_secret,
            # Its own broker login beside the stack's API (a shared client id would take over that one's session).
            "VARDE_API_REPLICA": "citizen",
        }
        ensure_service_instances(varde_home(), {"api": ["citizen"]})
        api = subprocess.Popen(
            [sys.executable, "-m", "varde", "api", "run", "--port", str(api_port)],
            stdout=open(workdir / "api.log", "wb"),  # noqa: SIM115 - handed to the child
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        _wait_ready(api_url, api)
        yield OidcStack(issuer, api_url, accounts)
    finally:
        for proc in (api, provider):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


PROVIDER_START_S = 30.0
PROVIDER_ATTEMPTS = 3


def _start_provider(node: str, config_file: Path, workdir: Path) -> tuple[subprocess.Popen[str], str]:
    """The provider and its issuer. A start that prints no issuer within `PROVIDER_START_S` is killed and tried
    again: in one CI run two providers printed node's first warning and then nothing until the test's 300-s
    timeout, which a plain `readline()` waited out."""
    for attempt in range(1, PROVIDER_ATTEMPTS + 1):
        provider = subprocess.Popen(
            [node, str(PROVIDER_DIR / "provider.mjs"), str(config_file)],
            stdout=subprocess.PIPE,
            stderr=open(workdir / "oidc-provider.log", "ab"),  # noqa: SIM115 - handed to the child
            stdin=subprocess.DEVNULL,
            text=True,
        )
        try:
            return provider, _read_issuer(provider, PROVIDER_START_S)
        except TimeoutError:
            provider.kill()
            provider.wait()
            if attempt == PROVIDER_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _read_issuer(provider: subprocess.Popen[str], timeout_s: float) -> str:
    assert provider.stdout is not None
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as waiting:
        waiting.register(provider.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not waiting.select(timeout=left):
                continue
            line = provider.stdout.readline()
            if not line:
                raise RuntimeError("the OpenID provider exited at start; see oidc-provider.log")
            try:
                doc: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            if "issuer" in doc:
                return str(doc["issuer"])
    raise TimeoutError(f"the OpenID provider printed no issuer within {timeout_s:.0f} s; see oidc-provider.log")


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the API exited at start; see api.log")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API did not answer within 90 s")
