"""Ingest benchmark: end-to-end readings/s stored (rules on), latency sent_at → committed, and the raw COPY
ceiling of the same table from one Python process, measured in the same run. Prints one JSON line.

Runs its own local stack under `.varde/bench-ingest` (PostgreSQL and Mosquitto) and starts real ingest workers
(`varde ingest run`, rules on, as separate processes sharing the subscription), provisions a fleet of gateways and
drives it with `device_simulators.fleet`:

1. ceiling: binary COPY of `--ceiling-rows` readings straight into `readings` from this process;
2. throughput, once per worker count in `--workers` (default 1 and 2): the fleet publishes `--readings` readings as
   fast as its windows allow; the rate is what ingest committed, from the first publish to the last commit (the
   broker queues what ingest has not taken yet). `readings_per_s` is the best of these, with its worker count;
3. latency, with that worker count: the fleet at half the measured rate, with probe envelopes (one reading each)
   whose arrival in the table is polled every 5 ms: p50/p99 of committed-and-visible time minus sent_at.
Lost and duplicated readings are counted over every reading the fleet had acknowledged.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VARDE_HOME", str(ROOT / ".varde" / "bench-ingest"))


def _count(conn: Any, gateway_ids: list[str]) -> tuple[int, int]:
    row = conn.execute(
        "SELECT count(*), count(DISTINCT id) FROM readings WHERE gateway_id = ANY(%s)", (gateway_ids,)
    ).fetchone()
    return int(row[0]), int(row[1])


def copy_ceiling(database_url: str, patient_id: uuid.UUID, gateway_id: str, rows: int) -> float:
    import psycopg

    from ingest_service.writer import STAGE_COLUMNS, STAGE_TYPES

    now = datetime.now(UTC)
    data = [
        (
            uuid.uuid4(),
            patient_id,
            gateway_id,
            "spo2",
            97.0,
            now,
            now,
            "C0:FE:00:00:00:01",
            "pulse_oximeter",
            None,
            None,
            [],
        )
        for _ in range(rows)
    ]
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        with cur.copy(f"COPY readings ({STAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(STAGE_TYPES)
            for row in data:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        cur.execute("DELETE FROM readings WHERE gateway_id = %s", (gateway_id,))
        conn.commit()
    return rows / elapsed


def wait_until_stored(database_url: str, gateway_ids: list[str], expected: int, timeout: float) -> tuple[float, int]:
    """Poll until `expected` readings are stored; returns (monotonic time of the last increase, rows)."""
    import psycopg

    last_change, last_rows = time.monotonic(), -1
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            rows, _ = _count(conn, gateway_ids)
            if rows != last_rows:
                last_change, last_rows = time.monotonic(), rows
            if rows >= expected or time.monotonic() - last_change > 20:
                break
            time.sleep(0.1)
    return last_change, last_rows


class Probes(threading.Thread):
    """Single-reading envelopes from one gateway; each one's time to become visible in the readings table."""

    def __init__(self, gateway: Any, database_url: str, per_s: float, seconds: float) -> None:
        super().__init__(daemon=True)
        self._gateway, self._url, self._interval, self._seconds = gateway, database_url, 1.0 / per_s, seconds
        self.latencies_ms: list[float] = []
        self.lost = 0

    def run(self) -> None:
        import paho.mqtt.client as mqtt
        import psycopg
        from paho.mqtt.enums import CallbackAPIVersion

        from vitals import DeviceRef, Envelope, Reading, readings_topic

        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self._gateway.gateway_id, protocol=mqtt.MQTTv5)
        client.username_pw_set(self._gateway.gateway_id, self._gateway.password)
        client.connect(self._gateway.host, self._gateway.port)
        client.loop_start()
        device = DeviceRef(address="C0:FE:FF:FF:00:01", type="pulse_oximeter")
        pending: dict[uuid.UUID, float] = {}
        end = time.monotonic() + self._seconds
        next_probe = time.monotonic()
        with psycopg.connect(self._url, autocommit=True) as conn:
            while time.monotonic() < end or (pending and time.monotonic() < end + 10):
                if time.monotonic() >= next_probe and time.monotonic() < end:
                    sent = datetime.now(UTC)
                    reading = Reading(
                        id=uuid.uuid4(), kind="spo2", value=96.0, unit="%", measured_at=sent, device=device
                    )
                    envelope = Envelope(gateway_id=self._gateway.gateway_id, sent_at=sent, readings=(reading,))
                    client.publish(readings_topic(self._gateway.gateway_id), envelope.to_json(), qos=1)
                    pending[reading.id] = sent.timestamp()
                    next_probe += self._interval
                if pending:
                    seen = conn.execute("SELECT id FROM readings WHERE id = ANY(%s)", (list(pending),)).fetchall()
                    now = time.time()
                    for (rid,) in seen:
                        self.latencies_ms.append((now - pending.pop(rid)) * 1000)
                time.sleep(0.005)
        self.lost = len(pending)
        client.disconnect()
        client.loop_stop()


def _delivered(report: Any) -> int:
    """Readings the broker acknowledged as delivered to a subscriber (PUBACK 0x10 is not delivered)."""
    return int(report.readings_acked - report.no_matching_subscribers * report.batch)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextlib.contextmanager
def ingest_workers(home: Path, count: int, extra: list[str]) -> Any:
    """`count` real ingest workers; stopped with SIGTERM, so each drains, commits and ends its session."""
    env = {**os.environ, "VARDE_HOME": str(home), "PYTHONPATH": str(ROOT)}
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    paths = [logs / f"bench-ingest-{count}-{n}.log" for n in range(count)]
    offsets = [p.stat().st_size if p.exists() else 0 for p in paths]
    for n in range(count):
        log = open(logs / f"bench-ingest-{count}-{n}.log", "ab")  # noqa: SIM115 - handed to the child
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "varde", "ingest", "run", "--worker-id", f"bench-{count}-{n}", *extra],
                stdout=log,
                stderr=log,
                env=env,
            )
        )
        log.close()
    # Connected and subscribed before the fleet starts: a message published before that is answered PUBACK 0x10
    # (no matching subscribers) and dropped by the broker.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all(b"mqtt_subscribed" in p.read_bytes()[offset:] for p, offset in zip(paths, offsets, strict=True)):
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"ingest workers did not subscribe; see {logs}")
    try:
        yield procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=20)
    parser.add_argument("--readings", type=int, default=600_000, help="readings in each throughput phase")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--workers", default="1,2", help="ingest worker counts to measure, comma-separated")
    parser.add_argument("--batch-readings", type=int, default=None, help="ingest's readings per transaction")
    parser.add_argument("--ceiling-rows", type=int, default=300_000)
    parser.add_argument("--latency-seconds", type=float, default=15)
    args = parser.parse_args()
    worker_counts = [int(n) for n in args.workers.split(",")]
    extra = ["--batch-readings", str(args.batch_readings)] if args.batch_readings else []

    from device_simulators.fleet import Fleet, FleetGateway
    from store.settings import Settings, varde_home
    from varde import stack
    from varde.admin import provision_fleet

    home = varde_home()
    with stack.running(home, services=False):
        settings = Settings()
        url = settings.require_database_url()
        created = provision_fleet(settings, args.gateways + 2, team="Bench ingest")
        fleet_gw = [FleetGateway(c.gateway_id, c.password, c.mqtt_host, c.mqtt_port) for c in created]
        probe_gw, ceiling_gw, load_gw = fleet_gw[0], fleet_gw[1], fleet_gw[2:]
        import psycopg

        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT patient_id FROM gateways WHERE id = %s", (ceiling_gw.gateway_id,)).fetchone()
        assert row is not None
        ceiling = copy_ceiling(url, row[0], ceiling_gw.gateway_id, args.ceiling_rows)

        load_ids = [g.gateway_id for g in load_gw]
        rates: dict[int, float] = {}
        acked_total, no_subscribers = 0, 0
        for count in worker_counts:
            with psycopg.connect(url) as conn:
                before, _ = _count(conn, load_ids)
            with ingest_workers(home, count, extra), Fleet(load_gw, batch=args.batch, window=args.window) as fleet:
                started = time.monotonic()
                sent = fleet.run(None, 600, max_readings=args.readings)
                last_commit, stored_rows = wait_until_stored(url, load_ids, before + sent.readings_acked, timeout=600)
            rates[count] = (stored_rows - before) / (last_commit - started)
            acked_total += sent.readings_acked
            no_subscribers += sent.no_matching_subscribers
        best = max(rates, key=lambda n: rates[n])
        throughput = rates[best]

        half = throughput / 2
        probes = Probes(probe_gw, url, per_s=20, seconds=args.latency_seconds)
        with ingest_workers(home, best, extra), Fleet(load_gw, batch=args.batch, window=args.window) as fleet:
            probes.start()
            half_report = fleet.run(half, args.latency_seconds)
            probes.join(timeout=60)
            acked_total += _delivered(half_report)
            no_subscribers += half_report.no_matching_subscribers
            wait_until_stored(url, load_ids, acked_total, timeout=300)
        with psycopg.connect(url) as conn:
            rows, distinct = _count(conn, load_ids)
            dead = conn.execute(
                "SELECT coalesce(sum(reading_count), 0) FROM rejected_messages WHERE gateway_id = ANY(%s)",
                (load_ids,),
            ).fetchone()
    result = {
        "bench": "ingest",
        "readings_per_s": round(throughput, 1),
        "copy_ceiling_per_s": round(ceiling, 1),
        "ratio": round(throughput / ceiling, 3),
        "p50_ms": round(_percentile(probes.latencies_ms, 0.50), 1),
        "p99_ms": round(_percentile(probes.latencies_ms, 0.99), 1),
        "latency_at_readings_per_s": round(half_report.readings_per_s, 1),
        "latency_probes": len(probes.latencies_ms),
        "sent": acked_total,
        "stored": distinct,
        "lost": max(0, acked_total - distinct - int(dead[0] if dead else 0)),
        "duplicated": rows - distinct,
        "dead_lettered": int(dead[0]) if dead else 0,
        "no_matching_subscribers": no_subscribers,
        "readings_per_s_by_workers": {str(n): round(r, 1) for n, r in rates.items()},
        "workers": best,
        "gateways": len(load_gw),
        "batch": args.batch,
        "rules": True,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
