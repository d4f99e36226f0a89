"""Ingest benchmark at production shape. Prints one JSON line (kept in bench/results/ingest.jsonl).

Runs its own local stack under `.varde/bench-ingest` (PostgreSQL and Mosquitto), real ingest workers
(`varde ingest run`, rules on, separate processes sharing the subscription) and a real API process, and drives
`--gateways` provisioned gateways (heart-failure patients) with `device_simulators.fleet` over the broker's TLS
listener. Reading ids are the UUIDv5 a gateway gives; `--alarm-fraction` of the readings are past the red limits
(alarms are raised and updated), `--implausible-fraction` outside the plausible range (per-reading dead letters).

Arms, alternated A B A B … `--repeats` times per worker count, each reported as median and range:
- end to end: the fleet publishes `--readings` as fast as its windows allow; the rate is what ingest committed,
  from the first publish to the last commit (read off the workers' own counters, no table scans);
- COPY ceiling: the same kind of rows (same id shape, patients, kinds, values) by binary COPY from as many
  parallel writer processes as the arm's workers, in transactions of ingest's size.
Latency, with the best worker count, at 50 % and 80 % of its median rate: probe readings from other patients'
gateways (past the red limit, UUIDv5 ids as the load's), each timed from publish to (a) the first alarm event on a
nurse's SSE stream that shows it or a later probe of its patient, the end point a nurse sees, and (b) its row
visible in the table (the baseline). Then one arm with one of two workers killed with SIGKILL mid-load and restarted.

Checked at the end, by id set: every id the broker acknowledged as delivered is stored exactly once or is in
`rejected_messages`; at most one open alarm per patient and rule; in each latency arm every probe was sent and
acknowledged, and 99 % of them reached the stream and the table. Targets are asserted (exit status 1).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import multiprocessing
import os
import random
import resource
import selectors
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VARDE_HOME", str(ROOT / ".varde" / "bench-ingest"))

from bench.checks import (  # noqa: E402
    account_by_id,
    covering_arrivals,
    duplicate_open_alarms,
    failed_targets,
    percentile,
    probe_path_failures,
    spread,
)
from bench.results import keep, machine_facts  # noqa: E402
from device_simulators.fleet import NO_MATCHING_SUBSCRIBERS  # noqa: E402

TARGETS = {
    "readings_per_s": (">=", 30_000.0),
    "ratio": (">=", 0.35),
    "sse_p99_ms_at_50": ("<", 500.0),
    "lost": ("==", 0.0),
    "duplicated": ("==", 0.0),
    "duplicate_open_alarms": ("==", 0.0),
}
_CLK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class _ProbeGateway:
    gateway_id: str
    password: str
    host: str
    port: int
    patient_id: uuid.UUID


# --- processes ---------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK


def postgres_cpu_seconds(postmaster: int) -> float:
    """The postmaster and every backend it forked."""
    total = cpu_seconds(postmaster)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == postmaster:
                total += cpu_seconds(int(entry.name))
    return total


class Workers:
    """`count` real ingest workers with their metrics ports; stopped with SIGTERM (drain, commit, end session)."""

    def __init__(self, home: Path, count: int, extra: list[str], tag: str) -> None:
        from varde.net import free_port
        from varde.stack import ensure_service_instances

        self.home, self.extra, self.tag = home, extra, tag
        # Each worker connects with its own broker login, bound to its client id.
        ensure_service_instances(home, {"ingest": [f"bench-{tag}-{n}" for n in range(count)]})
        self.env = {**os.environ, "VARDE_HOME": str(home), "PYTHONPATH": str(ROOT)}
        self.logs = home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.ports = [free_port() for _ in range(count)]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.cpu_before_restart = 0.0
        for n in range(count):
            self.procs.append(self._start(n))
        self._wait_subscribed(range(count))

    def _log(self, n: int) -> Path:
        return self.logs / f"bench-ingest-{self.tag}-{n}.log"

    def _start(self, n: int) -> subprocess.Popen[bytes]:
        log = open(self._log(n), "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "varde", "ingest", "run", "--worker-id", f"bench-{self.tag}-{n}"),
                *("--metrics-port", str(self.ports[n]), *self.extra),
            ],
            stdout=log,
            stderr=log,
            env=self.env,
        )
        log.close()
        return proc

    def _wait_subscribed(self, which: Any) -> None:
        # Subscribed before the fleet starts: a publish before that is answered 0x10 (no matching subscribers).
        import httpx

        deadline = time.monotonic() + 120
        for n in which:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    text = httpx.get(f"http://127.0.0.1:{self.ports[n]}/metrics", timeout=2).text
                    if _metric(text, "varde_ingest_mqtt_connected") >= 1:
                        break
                if self.procs[n].poll() is not None:
                    raise RuntimeError(f"ingest worker exited at start; see {self._log(n)}")
                time.sleep(0.2)
            else:
                raise RuntimeError(f"ingest workers did not subscribe; see {self.logs}")
        time.sleep(0.5)  # the SUBSCRIBE follows the CONNACK

    def stored(self) -> float:
        """Readings stored plus dead-lettered, summed over the workers' own counters (exact at commit)."""
        import httpx

        total = 0.0
        for port in self.ports:
            with contextlib.suppress(httpx.HTTPError):
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                total += _metric(text, "varde_ingest_readings_stored_total")
        return total

    def cpu(self) -> float:
        return self.cpu_before_restart + sum(cpu_seconds(p.pid) for p in self.procs)

    def kill_and_restart(self, n: int) -> None:
        self.cpu_before_restart += cpu_seconds(self.procs[n].pid)
        self.procs[n].send_signal(signal.SIGKILL)
        self.procs[n].wait()
        self.procs[n] = self._start(n)
        self._wait_subscribed([n])

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()


def _metric(text: str, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                total += sample.value
    return total


@contextlib.contextmanager
def api_process(home: Path) -> Iterator[str]:
    from varde.net import free_port, port_open
    from varde.stack import ensure_service_instances

    port = free_port()
    ensure_service_instances(home, {"api": ["bench"]})  # its own login, beside the stack's API
    env = {**os.environ, "VARDE_HOME": str(home), "PYTHONPATH": str(ROOT), "VARDE_API_REPLICA": "bench"}
    log = open(home / "logs" / "bench-api.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "varde", "api", "run", "--port", str(port)], stdout=log, stderr=log, env=env
    )
    log.close()
    deadline = time.monotonic() + 60
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the API did not start; see {home / 'logs' / 'bench-api.log'}")
        time.sleep(0.2)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --- the arms ----------------------------------------------------------------------------------------------------


def wait_stored(workers: Workers, before: float, expected: float, timeout: float = 600) -> tuple[float, float]:
    """Until the workers stored `expected` more readings (or nothing moved for 15 s): (time of the last change,
    readings stored since `before`)."""
    last_change, last = time.monotonic(), -1.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now_stored = workers.stored() - before
        if now_stored != last:
            last_change, last = time.monotonic(), now_stored
        if now_stored >= expected or time.monotonic() - last_change > 15:
            break
        time.sleep(0.05)
    return last_change, last


def production_fleet(gateways: list[Any], args: Any, tls: str | None) -> Any:
    """The load of every arm: abnormal readings at the asked fractions, acknowledged ids kept, over TLS if asked."""
    from device_simulators.fleet import Fleet

    return Fleet(
        gateways,
        batch=args.batch,
        window=args.window,
        alarm_fraction=args.alarm_fraction,
        implausible_fraction=args.implausible_fraction,
        keep_ids=True,
        tls_ca_file=tls,
    )


def end_to_end_arm(
    home: Path, gateways: list[Any], count: int, args: Any, tls: str | None, acked: list[bytes]
) -> dict[str, Any]:
    workers = Workers(home, count, args.extra, f"e2e{count}")
    try:
        fleet = production_fleet(gateways, args, tls)
        with fleet:
            cpu0, me0 = workers.cpu(), _self_cpu()
            before = workers.stored()
            started = time.monotonic()
            report = fleet.run(None, 600, max_readings=args.readings)
        expected = report.readings_acked - report.no_matching_subscribers * args.batch - report.readings_implausible
        last_commit, stored = wait_stored(workers, before, expected)
        cpu = workers.cpu() - cpu0
        acked.extend(fleet.acked_ids or [])
    finally:
        workers.stop()
    return {
        "rate": stored / (last_commit - started),
        "ingest_cpu_ms_per_1000": 1e6 * cpu / max(1.0, stored) / count,
        "fleet_cpu_ms_per_1000": 1e6 * (_self_cpu() - me0) / max(1.0, stored),
        "no_matching_subscribers": report.no_matching_subscribers,
    }


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ceiling_writer(database_url: str, rows: list[tuple[Any, ...]], per_txn: int, out: Any) -> None:
    import psycopg

    from store.readings import STAGE_COLUMNS, STAGE_TYPES

    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        for i in range(0, len(rows), per_txn):
            with cur.copy(f"COPY readings ({STAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(STAGE_TYPES)
                for row in rows[i : i + per_txn]:
                    copy.write_row(row)
            conn.commit()
        out.put(time.perf_counter() - started)


def ceiling_rows(patients: list[tuple[uuid.UUID, str]], total: int, seed: int) -> list[tuple[Any, ...]]:
    """Rows of the same shape as the end-to-end arm's: UUIDv5 ids, every patient, the fleet's kinds and values."""
    from device_simulators.fleet import _TEMPLATE_READINGS
    from vitals import reading_id

    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    rows = []
    for n in range(total):
        patient_id, gateway_id = patients[n % len(patients)]
        kind, value, device_type = _TEMPLATE_READINGS[n % len(_TEMPLATE_READINGS)]
        address = f"C0:FE:00:{n % 256:02X}:00:01"
        at = now - timedelta(seconds=rng.randrange(600))
        rid = reading_id(gateway_id, address, str(kind), f"ceiling-{seed}/{at.isoformat()}", n)
        rows.append((rid, patient_id, gateway_id, str(kind), value, at, now, address, device_type, None, None, []))
    return rows


def ceiling_arm(database_url: str, patients: list[tuple[uuid.UUID, str]], writers: int, args: Any, seed: int) -> float:
    rows = ceiling_rows(patients, args.readings, seed)
    per_writer = -(-len(rows) // writers)
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=_ceiling_writer, args=(database_url, rows[i * per_writer : (i + 1) * per_writer], args.txn, out)
        )
        for i in range(writers)
    ]
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - started
    if any(p.exitcode for p in procs):
        raise RuntimeError("a COPY ceiling writer failed")
    return len(rows) / elapsed


class AlarmStream(threading.Thread):
    """A nurse's SSE stream: each `alarm` event's arrival time, by (patient, last measured time). A stream that
    broke off keeps its error, so the arm fails instead of counting the probes after it as merely missing."""

    def __init__(self, api_url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = api_url, token
        self.arrivals: dict[tuple[str, datetime], float] = {}
        self.connected = threading.Event()
        self.resyncs = 0
        self.error: str | None = None
        self.stop = False

    def run(self) -> None:
        try:
            self._read()
        except Exception as exc:  # reported in the arm's result
            self.error = f"the alarm stream broke off: {type(exc).__name__}: {exc}"

    def _read(self) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        with httpx.stream(
            "GET", f"{self.url}/api/v1/alarms/stream?heartbeat=1", headers=headers, timeout=httpx.Timeout(10, read=30)
        ) as response:
            response.raise_for_status()
            event = ""
            for line in response.iter_lines():
                if self.stop:
                    return
                if line.startswith(":"):
                    self.connected.set()
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "alarm":
                    doc = json.loads(line[5:])
                    if doc.get("last_measured_at"):
                        key = (doc["patient_id"], datetime.fromisoformat(doc["last_measured_at"]))
                        self.arrivals.setdefault(key, time.time())
                elif line.startswith("data:") and event == "resync":
                    self.resyncs += 1


class ProbeError(RuntimeError):
    pass


class Probes(threading.Thread):
    """Probe readings past the red SpO2 limit from the probe patients' gateways, one patient after another, each
    with its own measured time and the UUIDv5 id a gateway gives; records publish times, which probes the broker
    acknowledged as delivered, and when each row became visible.

    The connections are driven from this thread through one selector, as the fleet drives its own: paho's
    `loop_start` waits in select(), which cannot watch a descriptor above 1024, and with the load fleet's
    connections open every probe socket is above it, so a client would never read its CONNACK and would keep every
    publish queued without a word. Anything that stops the probes is kept in `error`."""

    def __init__(self, gateways: list[Any], database_url: str, per_s: float, count: int, tls: str | None) -> None:
        super().__init__(daemon=True)
        self.gateways, self.url, self.per_s, self.count, self.tls = gateways, database_url, per_s, count, tls
        self.sent: dict[tuple[str, datetime], float] = {}
        self.row_ms: list[float] = []
        self.acked: list[bytes] = []
        self.puback_failures: dict[str, int] = {}
        self.error: str | None = None
        self._selector = selectors.DefaultSelector()
        self._clients: list[Any] = []
        self._inflight: dict[tuple[int, int], bytes] = {}
        self._connected: set[int] = set()
        self._refused: dict[int, str] = {}
        self._lost: dict[int, str] = {}
        self._closing = False
        self.ready = threading.Event()
        """Set once every probe login is answered (or the probes failed)."""

    def run(self) -> None:
        try:
            self._connect()
            self.ready.set()
            self._probe()
        except Exception as exc:  # reported in the arm's result
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ready.set()
            self._close()
        if self.error is None and self._lost:
            n, reason = next(iter(self._lost.items()))
            self.error = f"{len(self._lost)} probe connection(s) lost, e.g. {self.gateways[n].gateway_id}: {reason}"

    # --- connections ----------------------------------------------------------------------------------------

    def _connect(self, timeout_s: float = 30.0) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        for i, gw in enumerate(self.gateways):
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gw.gateway_id, protocol=mqtt.MQTTv5)
            client.username_pw_set(gw.gateway_id, gw.password)
            if self.tls:
                client.tls_set(ca_certs=self.tls, tls_version=ssl.PROTOCOL_TLS_CLIENT)
            client.on_connect = functools.partial(self._on_connect, i)
            client.on_publish = functools.partial(self._on_publish, i)
            client.on_disconnect = functools.partial(self._on_disconnect, i)
            client.connect(gw.host, gw.port, keepalive=60)
            self._selector.register(client.socket(), selectors.EVENT_READ, client)
            self._clients.append(client)
        deadline = time.monotonic() + timeout_s
        while len(self._connected) + len(self._refused) < len(self._clients) and time.monotonic() < deadline:
            self._service(0.05)
        if self._refused:
            n, reason = next(iter(self._refused.items()))
            raise ProbeError(
                f"broker refused {len(self._refused)} probe gateway login(s), e.g. {self.gateways[n].gateway_id}: "
                f"{reason}"
            )
        waiting = len(self._clients) - len(self._connected)
        if waiting:
            raise ProbeError(f"{waiting} probe connection(s) got no CONNACK within {timeout_s:.0f} s")

    def _on_connect(self, n: int, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._refused[n] = str(reason)
        else:
            self._connected.add(n)

    def _on_disconnect(self, n: int, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if not self._closing:
            self._lost[n] = str(reason)

    def _on_publish(self, n: int, _c: Any, _u: Any, mid: int, reason: Any, _props: Any) -> None:
        rid = self._inflight.pop((n, mid), None)
        code = int(getattr(reason, "value", 0))
        if rid is None:
            return
        if code >= 0x80 or code == NO_MATCHING_SUBSCRIBERS:
            key = f"0x{code:02x}"
            self.puback_failures[key] = self.puback_failures.get(key, 0) + 1
        else:
            self.acked.append(rid)

    def _service(self, timeout: float) -> None:
        for key, _events in self._selector.select(timeout):
            key.data.loop_read()
        for client in self._clients:
            sock = client.socket()
            while isinstance(sock, ssl.SSLSocket) and sock.pending():  # decrypted bytes the socket no longer signals
                client.loop_read()
            if client.want_write():
                client.loop_write()

    def _close(self) -> None:
        self._closing = True
        for client in self._clients:
            client.disconnect()
            client.loop_write()
        self._selector.close()

    # --- the probes -----------------------------------------------------------------------------------------

    def _probe(self) -> None:
        import psycopg
        from paho.mqtt.enums import MQTTErrorCode

        from vitals import DeviceRef, Envelope, Reading, reading_id, readings_topic

        devices = [
            DeviceRef(address=f"C0:FF:{(n >> 8) & 0xFF:02X}:{n & 0xFF:02X}:00:01", type="pulse_oximeter")
            for n in range(len(self.gateways))
        ]
        pending: dict[uuid.UUID, float] = {}
        interval = 1.0 / self.per_s
        next_probe = next_misc = time.monotonic()
        last_sent = next_probe
        sent = 0
        with psycopg.connect(self.url, autocommit=True) as conn:
            window_start = datetime.now(UTC) - timedelta(minutes=1)
            while sent < self.count or ((pending or self._inflight) and time.monotonic() < last_sent + 15):
                if self._lost:
                    return
                now = time.monotonic()
                if sent < self.count and now >= next_probe:
                    n = sent % len(self.gateways)
                    gw, client, device = self.gateways[n], self._clients[n], devices[n]
                    at = datetime.now(UTC)
                    # The device's own time and its sequence number, as a gateway names a reading.
                    rid = reading_id(gw.gateway_id, device.address, "spo2", at.isoformat(), sent // len(self.gateways))
                    reading = Reading(id=rid, kind="spo2", value=84.0, unit="%", measured_at=at, device=device)
                    envelope = Envelope(gateway_id=gw.gateway_id, sent_at=at, readings=(reading,))
                    published = time.time()
                    info = client.publish(readings_topic(gw.gateway_id), envelope.to_json(), qos=1)
                    if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        raise ProbeError(f"probe {sent} from {gw.gateway_id} not published: {info.rc.name}")
                    self._inflight[(n, info.mid)] = rid.bytes
                    self.sent[(str(gw.patient_id), at)] = published
                    pending[rid] = published
                    sent += 1
                    next_probe += interval
                    last_sent = now
                if pending:
                    seen = conn.execute(
                        "SELECT id FROM readings WHERE id = ANY(%s) AND measured_at >= %s",
                        (list(pending), window_start),
                    ).fetchall()
                    seen_at = time.time()
                    for (rid_seen,) in seen:
                        self.row_ms.append((seen_at - pending.pop(rid_seen)) * 1000)
                if now >= next_misc:
                    for c in self._clients:
                        c.loop_misc()  # keepalive
                    next_misc = now + 1.0
                self._service(min(0.01, max(0.0, next_probe - time.monotonic())) if sent < self.count else 0.01)


def latency_arm(
    home: Path,
    url: str,
    api_url: str,
    token: str,
    load: list[Any],
    probes: list[Any],
    count: int,
    rate: float,
    args: Any,
    tls: str | None,
    acked: list[bytes],
) -> dict[str, Any]:
    stream = AlarmStream(api_url, token)
    stream.start()
    if not stream.connected.wait(30):
        raise RuntimeError("the alarm stream did not connect")
    workers = Workers(home, count, args.extra, f"lat{count}")
    try:
        fleet = production_fleet(load, args, tls)
        probe = Probes(probes, url, args.probe_rate, args.probes, tls)
        with fleet:
            probe.start()
            probe.ready.wait(60)  # the probe logins answered before the load starts: the probes run under it
            report = fleet.run(rate, args.probes / args.probe_rate + 2)
            probe.join(timeout=120)
        acked.extend(fleet.acked_ids or [])
        acked.extend(probe.acked)
        time.sleep(2)
    finally:
        workers.stop()
        stream.stop = True
    sent = dict(probe.sent)
    arrived = covering_arrivals(sent, dict(stream.arrivals))
    sse_ms = [(arrived[k] - t) * 1000 for k, t in sent.items() if k in arrived]
    return {
        "offered_readings_per_s": round(rate, 1),
        "achieved_readings_per_s": report.readings_per_s,
        "probes": len(sent),
        "probes_acked": len(probe.acked),
        "probe_puback_failures": probe.puback_failures,
        "probe_error": probe.error if not probe.is_alive() else "the probes did not finish within 120 s",
        "sse_error": stream.error,
        "rows_seen": len(probe.row_ms),
        "sse_events": len(sse_ms),
        "sse_missing": len(sent) - len(sse_ms),
        "sse_p50_ms": round(percentile(sse_ms, 0.5), 1),
        "sse_p99_ms": round(percentile(sse_ms, 0.99), 1),
        "sse_p999_ms": round(percentile(sse_ms, 0.999), 1),
        "row_p50_ms": round(percentile(probe.row_ms, 0.5), 1),
        "row_p99_ms": round(percentile(probe.row_ms, 0.99), 1),
        "resyncs": stream.resyncs,
    }


def kill_arm(home: Path, gateways: list[Any], args: Any, tls: str | None, acked: list[bytes]) -> dict[str, Any]:
    """Two workers; one is killed with SIGKILL halfway and restarted while the fleet keeps publishing."""
    workers = Workers(home, 2, args.extra, "kill")
    try:
        fleet = production_fleet(gateways, args, tls)
        killed = threading.Event()

        def killer() -> None:
            time.sleep(args.kill_after)
            workers.kill_and_restart(0)
            killed.set()

        with fleet:
            thread = threading.Thread(target=killer, daemon=True)
            thread.start()
            report = fleet.run(None, 600, max_readings=args.readings)
            thread.join(timeout=180)
        time.sleep(5)
        acked.extend(fleet.acked_ids or [])
    finally:
        workers.stop()
    return {"readings_acked": report.readings_acked, "killed": killed.is_set()}


# --- main ------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=2000)
    parser.add_argument("--probe-gateways", type=int, default=100)
    parser.add_argument("--readings", type=int, default=300_000, help="readings in each throughput arm")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--workers", default="1,2", help="ingest worker counts, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--txn", type=int, default=2500, help="readings per transaction of the COPY ceiling")
    parser.add_argument("--alarm-fraction", type=float, default=0.01)
    parser.add_argument("--implausible-fraction", type=float, default=0.001)
    parser.add_argument("--probes", type=int, default=2000, help="probes at each latency load")
    parser.add_argument("--probe-rate", type=float, default=40.0)
    parser.add_argument("--kill-after", type=float, default=4.0, help="seconds into the kill arm")
    parser.add_argument("--no-tls", action="store_true", help="the fleet on the plain listener")
    parser.add_argument("--batch-readings", type=int, default=None, help="ingest's readings per transaction")
    args = parser.parse_args()
    args.extra = ["--batch-readings", str(args.batch_readings)] if args.batch_readings else []
    worker_counts = [int(n) for n in args.workers.split(",")]

    import httpx
    import psycopg

    from device_simulators.fleet import FleetGateway
    from store.settings import Settings, varde_home
    from varde import stack
    from varde.admin import add_user, provision_fleet

    home = varde_home()
    began = time.monotonic()
    with stack.running(home, services=False) as state:
        settings = Settings()
        url = settings.require_database_url()
        tls = None if args.no_tls else str(state["tls_ca_file"])
        port = int(state["mqtt_port"] if args.no_tls else state["mqtts_port"])
        tag = uuid.uuid4().hex[:6]
        load_team, probe_team = f"Bench ingest {tag}", f"Bench probes {tag}"
        created = provision_fleet(settings, args.gateways, team=load_team, protocol="heart_failure")
        probe_created = provision_fleet(settings, args.probe_gateways, team=probe_team, protocol="heart_failure")
        with psycopg.connect(url) as conn:
            patient_of = {
                gw: pid
                for gw, pid in conn.execute(
                    "SELECT id, patient_id FROM gateways WHERE id = ANY(%s)",
                    ([c.gateway_id for c in created + probe_created],),
                )
            }
        load = [FleetGateway(c.gateway_id, c.password, c.mqtt_host, port) for c in created]
        probes = [
            _ProbeGateway(c.gateway_id, c.password, c.mqtt_host, port, patient_of[c.gateway_id]) for c in probe_created
        ]
        nurse_password = uuid.uuid4().hex
        add_user(settings, f"bench-nurse-{tag}", "nurse", [probe_team], nurse_password)
        patients = [(patient_of[c.gateway_id], c.gateway_id) for c in created]
        acked: list[bytes] = []

        e2e: dict[int, list[dict[str, Any]]] = {n: [] for n in worker_counts}
        ceiling: dict[int, list[float]] = {n: [] for n in worker_counts}
        for rep in range(args.repeats):
            for count in worker_counts:
                e2e[count].append(end_to_end_arm(home, load, count, args, tls, acked))
                ceiling[count].append(ceiling_arm(url, patients, count, args, seed=rep * 10 + count))
        medians = {n: spread(a["rate"] for a in e2e[n])["median"] for n in worker_counts}
        best = max(medians, key=lambda n: medians[n])
        throughput = medians[best]
        ceiling_best = spread(ceiling[best])["median"]

        with api_process(home) as api_url:
            token = httpx.post(
                f"{api_url}/api/v1/auth/token",
                data={"username": f"bench-nurse-{tag}", "password": nurse_password},
                timeout=30,
            ).json()["access_token"]
            latency = {
                f"{round(share * 100)}": latency_arm(
                    home, url, api_url, token, load, probes, best, throughput * share, args, tls, acked
                )
                for share in (0.5, 0.8)
            }
        killed = kill_arm(home, load, args, tls, acked)

        gateway_ids = [g.gateway_id for g in load] + [g.gateway_id for g in probes]
        with psycopg.connect(url) as conn:
            stored_rows = {
                rid: int(n)
                for rid, n in conn.execute(
                    "SELECT id, count(*) FROM readings WHERE gateway_id = ANY(%s) GROUP BY id", (gateway_ids,)
                )
            }
            dead = [
                r[0]
                for r in conn.execute(
                    "SELECT reading_id FROM rejected_messages WHERE gateway_id = ANY(%s) AND reading_id IS NOT NULL",
                    (gateway_ids,),
                )
            ]
            whole_messages_dead = conn.execute(
                "SELECT count(*) FROM rejected_messages WHERE gateway_id = ANY(%s) AND reading_id IS NULL",
                (gateway_ids,),
            ).fetchone()
            open_alarms = conn.execute(
                "SELECT a.patient_id, a.rule FROM alarms a JOIN patients p ON p.id = a.patient_id "
                "JOIN care_teams t ON t.id = p.team_id WHERE t.name = ANY(%s) AND a.state <> 'resolved'",
                ([load_team, probe_team],),
            ).fetchall()
        account = account_by_id(acked, stored_rows, dead)
        machine = machine_facts(url)

    result: dict[str, Any] = {
        "bench": "ingest",
        "readings_per_s": throughput,
        "copy_ceiling_per_s": ceiling_best,
        "ratio": round(throughput / ceiling_best, 3) if ceiling_best else None,
        "workers": best,
        "by_workers": {
            str(n): {
                "end_to_end": spread(a["rate"] for a in e2e[n]),
                "copy_ceiling": spread(ceiling[n]),
                "ingest_cpu_ms_per_1000_per_process": spread(a["ingest_cpu_ms_per_1000"] for a in e2e[n]),
                "fleet_cpu_ms_per_1000": spread(a["fleet_cpu_ms_per_1000"] for a in e2e[n]),
            }
            for n in worker_counts
        },
        "latency": latency,
        "sse_p99_ms_at_50": latency["50"]["sse_p99_ms"],
        "kill_arm": killed,
        "acked": account.acked,
        "stored": account.stored,
        "dead_lettered": account.dead_lettered,
        "lost": account.lost,
        "duplicated": account.duplicated,
        "lost_sample": list(account.lost_sample),
        "whole_messages_dead_lettered": int(whole_messages_dead[0]) if whole_messages_dead else 0,
        "open_alarms": len(open_alarms),
        "duplicate_open_alarms": duplicate_open_alarms((str(p), r) for p, r in open_alarms),
        "gateways": len(load),
        "batch": args.batch,
        "alarm_fraction": args.alarm_fraction,
        "tls": tls is not None,
        "seconds": round(time.monotonic() - began, 1),
    }
    result["failed"] = failed_targets(result, TARGETS) + probe_path_failures(latency, args.probes)
    keep("ingest", result, machine=machine)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
