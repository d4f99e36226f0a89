"""API replicas behind a load balancer on one machine: N `varde api run` processes on free ports and one HAProxy in
front of them, with active health checks, so a replica that dies is taken out of the rotation.

Used by the scale-out test, `bench/scaleout.py` and `varde stack replicas`. The HAProxy configuration is rendered at
run time (free ports) into `<VARDE_HOME>/lb/haproxy-<port>.cfg` (removed at exit); production (deploy/compose.yaml)
puts Caddy in front of the replicas with a like policy (round robin, /healthz checks, retry elsewhere, SSE
unbuffered). Responses carry `X-Varde-Replica: api<N>` (the LB's name of the replica that answered, an index from
this configuration, never a host name), so an operator or a test can see the spread.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from varde.broker import BrokerAdminError
from varde.net import free_port, port_open
from varde.stack import (
    StackError,
    _apt_install,
    _wait_until,
    ensure_service_instances,
    pid_alive,
    retire_service_instances,
)

REPLICA_HEADER = "X-Varde-Replica"
BACKEND = "api"


def find_haproxy() -> Path:
    """The haproxy binary, installed from Debian when missing and running as root."""
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if found is None:
        _apt_install(["haproxy"], "HAProxy (the load balancer in front of the API replicas) not found")
        found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(found).exists():
        raise StackError("HAProxy still missing after install")
    return Path(found)


def render_haproxy_config(listen_port: int, replica_ports: list[int], stats_port: int, admin_socket: Path) -> str:
    """HAProxy config: round robin over the replicas; /healthz checked every second, every 500 ms once a check has
    failed, out after 3 failures (a refused connection fails at once; a slow answer after 3 s, so a busy replica is
    not taken out), in after 2 passes; a request whose connection fails is retried on another replica; SSE streams
    may stay open between heartbeats."""
    servers = "\n".join(
        f"    server {BACKEND}{i} 127.0.0.1:{port} check" for i, port in enumerate(replica_ports, start=1)
    )
    return f"""# Rendered by varde.scaleout for API replicas on this machine; production uses deploy/caddy/Caddyfile.
global
    maxconn 4096
    stats socket {admin_socket} mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout client 65s
    timeout server 65s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout queue 10s
    timeout check 3s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

frontend {BACKEND}_in
    bind 127.0.0.1:{listen_port}
    # The replicas trust these two headers from this proxy only (VARDE_FORWARDED_ALLOW_IPS): a client's own copies
    # are dropped, and forwardfor adds the real peer address.
    http-request del-header X-Forwarded-For
    http-request set-header X-Forwarded-Proto http
    option forwardfor
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 1s fastinter 500ms downinter 1s fall 3 rise 2
    http-response set-header {REPLICA_HEADER} %[srv_name]
{servers}

frontend stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
"""


@dataclass
class ApiReplica:
    index: int
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    instance: str
    """Its VARDE_API_REPLICA: the broker login `varde-api-<instance>` it publishes to gateways with."""

    @property
    def name(self) -> str:
        return f"{BACKEND}{self.index}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class ReplicaPool:
    """API replicas and the HAProxy in front of them; `url` is the load balancer."""

    home: Path
    replicas: list[ApiReplica]
    lb: subprocess.Popen[bytes]
    lb_port: int
    stats_port: int
    admin_socket: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    def server_states(self) -> dict[str, str]:
        """HAProxy's view of each replica: UP, DOWN, MAINT, … (from its CSV statistics)."""
        rows = csv.DictReader(io.StringIO(self._admin("show stat").lstrip("# ")))
        return {row["svname"]: row["status"] for row in rows if row["pxname"] == BACKEND and row["svname"] != "BACKEND"}

    def set_serving(self, count: int) -> None:
        """Keep the first `count` replicas in the rotation and put the others in maintenance (bench: 1 vs 2)."""
        for replica in self.replicas:
            state = "ready" if replica.index <= count else "maint"
            self._admin(f"set server {BACKEND}/{replica.name} state {state}")
        self.wait_states({r.name: ("UP" if r.index <= count else "MAINT") for r in self.replicas})

    def wait_states(self, wanted: Mapping[str, str], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            states = self.server_states()
            if all(states.get(name, "").startswith(state) for name, state in wanted.items()):
                return
            if time.monotonic() > deadline:
                raise StackError(f"HAProxy servers are {states}, wanted {dict(wanted)}")
            time.sleep(0.1)

    def kill(self, index: int, sig: int = signal.SIGKILL) -> None:
        """Kill one replica (its whole process group), as a crash would."""
        replica = self.replicas[index - 1]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(replica.process.pid, sig)
        replica.process.wait(30)

    def _admin(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.admin_socket))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()


def _start_replica(home: Path, index: int, instance: str, env: dict[str, str]) -> ApiReplica:
    port = free_port()
    log = home / "logs" / f"api-replica-{index}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "varde", "api", "run", "--port", str(port)],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**env, "VARDE_API_REPLICA": instance},
        )
    return ApiReplica(index, port, process, log, instance)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(15)


@contextlib.contextmanager
def replicas(home: Path, count: int = 2, env: Mapping[str, str] | None = None) -> Iterator[ReplicaPool]:
    """Run `count` API replicas (settings from `home`'s stack, overridden by `env`) behind HAProxy for a block;
    stops all of them afterwards."""
    haproxy = find_haproxy()
    lb_dir = home / "lb"
    lb_dir.mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(parents=True, exist_ok=True)
    child_env = {
        **os.environ,
        "VARDE_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "VARDE_FORWARDED_ALLOW_IPS": "127.0.0.1",  # HAProxy, which connects from loopback
        **(env or {}),
    }
    started: list[ApiReplica] = []
    lb: subprocess.Popen[bytes] | None = None
    socket_dir: Path | None = None
    config: Path | None = None
    # Each replica its own broker login, bound to its client id; named per pool, so two pools on one home never
    # share one (a shared client id would have them take over each other's session).
    pool_tag = secrets.token_hex(3)
    instances = [f"pool-{pool_tag}-{BACKEND}{index}" for index in range(1, count + 1)]
    ensure_service_instances(home, {"api": instances})
    try:
        for index, instance in enumerate(instances, start=1):
            started.append(_start_replica(home, index, instance, child_env))
        for replica in started:
            _wait_until(
                lambda r=replica: port_open("127.0.0.1", r.port) or not pid_alive(r.process.pid),  # type: ignore[misc]
                60,
                f"API replica {replica.index} to listen",
            )
            if replica.process.poll() is not None:
                raise StackError(f"API replica {replica.index} exited at start; see {replica.log}")
        lb_port, stats_port = free_port(), free_port()
        while stats_port == lb_port:
            stats_port = free_port()
        # Per pool, so two pools on one home do not share them; the socket in a short private directory (the
        # 108-byte limit of a Unix socket path), removed on exit.
        socket_dir = Path(tempfile.mkdtemp(prefix="varde-lb-"))
        admin_socket = socket_dir / "admin.sock"
        config = lb_dir / f"haproxy-{lb_port}.cfg"
        config.write_text(render_haproxy_config(lb_port, [r.port for r in started], stats_port, admin_socket))
        check = subprocess.run([str(haproxy), "-c", "-q", "-f", str(config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise StackError(f"HAProxy rejected {config}: {check.stderr.strip() or check.stdout.strip()}")
        with open(home / "logs" / "haproxy.log", "ab") as out:
            lb = subprocess.Popen(
                [str(haproxy), "-db", "-f", str(config)],
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        pool = ReplicaPool(home, started, lb, lb_port, stats_port, admin_socket, dict(env or {}))
        _wait_until(lambda: admin_socket.exists() or lb.poll() is not None, 15, "HAProxy")
        if lb.poll() is not None:
            raise StackError(f"HAProxy exited at start; see {home / 'logs' / 'haproxy.log'}")
        pool.wait_states({r.name: "UP" for r in started})
        yield pool
    finally:
        if lb is not None:
            _stop(lb)
        for replica in started:
            _stop(replica.process)
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)
        if config is not None:
            config.unlink(missing_ok=True)
        # A login left behind (the broker is down just now) is harmless: the next pool's names differ.
        with contextlib.suppress(StackError, BrokerAdminError):
            retire_service_instances(home, {"api": instances})


__all__ = ["REPLICA_HEADER", "ApiReplica", "ReplicaPool", "find_haproxy", "render_haproxy_config", "replicas"]
