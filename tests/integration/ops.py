"""Helpers to reach the services' operations endpoints (/metrics, /healthz, /readyz) in the test stack."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from store.settings import varde_home

ROOT = Path(__file__).resolve().parents[2]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def metrics_port(service: str) -> int:
    state = json.loads((varde_home() / "stack.json").read_text())
    return int(state["services"][service]["metrics_port"])


def scrape(port: int) -> tuple[Samples, set[str]]:
    """Every sample of a process's /metrics, and the names of its metric families (with and without samples)."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    response.raise_for_status()
    from tests.unit.test_grafana_dashboard import exposed_names

    families = list(text_string_to_metric_families(response.text))
    samples: Samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }
    return samples, exposed_names(families)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def service_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "VARDE_HOME": str(varde_home()), "PYTHONUNBUFFERED": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


@contextmanager
def service_process(args: list[str], log_name: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m varde ARGS` beside the stack's own services, terminated at the end of the block."""
    log = open(varde_home() / "logs" / f"{log_name}.log", "ab")  # noqa: SIM115 - the child's log
    proc = subprocess.Popen([sys.executable, "-m", "varde", *args], stdout=log, stderr=log, env=service_env(**env))
    log.close()
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class TcpRelay:
    """A loopback TCP relay to a real server that the test can cut: the server stays up for everyone else, but
    whoever connects through the relay finds it unreachable once `cut()` (for good) or `pause()` (until
    `restore()`) is called."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._refusing = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._refusing.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def pause(self) -> None:
        """The server goes away for a while: open connections break, new ones are accepted and dropped at once."""
        self._refusing.set()
        with self._lock:
            for s in self._open:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def restore(self) -> None:
        """The server is back (after `pause()`): new connections reach it again."""
        self._refusing.clear()

    def cut(self) -> None:
        """Refuse new connections and drop the open ones for good, as if the database host went away."""
        self.pause()
        self._listener.close()

    close = cut


def readiness(port: int) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    return response.status_code, response.json()
