"""Ports and waits for the local stack, the tests and the benchmarks: one free-port finder, one port probe and one
wait loop instead of a copy in each."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """`preferred` if it is free on `host`, else a port the kernel picks (free when asked; bind it soon)."""
    for candidate in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, candidate or 0))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError(f"no free TCP port on {host}")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.02) -> bool:
    """Poll `predicate` until it holds or `timeout_s` has passed; its last answer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


__all__ = ["free_port", "port_open", "wait_until"]
