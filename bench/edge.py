"""Edge benchmark: agent memory/CPU with a 1 Hz oximeter, outbox replay rate after a broker outage, and readings
through the whole agent from five virtual devices over each link.

Prints one JSON line and keeps it in `bench/results/edge.jsonl`. Baselines measured in the same run: the RSS of a
bare Python interpreter, the rate of a bare paho client publishing the same envelopes with the same bounded window
(no outbox, no SQLite), for the real Bluetooth stack (Bumble: ATT/GATT/SMP between virtual controllers) the
in-process Python link, and for the Bumble agent's memory the same arm with the `cryptography` wheel's primitives.
Starts its own private Mosquitto on a free loopback port.

    PYTHONPATH=. python bench/edge.py [--readings 50000] [--feed-s 10] [--glucose-records 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from varde.net import free_port, wait_until

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.checks import failed_targets  # noqa: E402
from bench.results import keep, machine_facts  # noqa: E402
from edge_agent.agent import Agent  # noqa: E402
from edge_agent.config import EdgeConfig  # noqa: E402
from edge_agent.publisher import build_envelope, utc_timestamp  # noqa: E402
from vitals import DeviceRef, Reading, readings_topic  # noqa: E402

GW = "gw-bench-0001"
RAW_GW = "gw-bench-raw"
OXIMETER = "A4:C1:38:00:00:02"
GLUCOSE_PASSKEY = "246810"
DEVICES = [
    {"address": "A4:C1:38:00:00:01", "type": "blood_pressure_monitor", "model": "UA-651BLE"},
    {"address": OXIMETER, "type": "pulse_oximeter", "model": "PO-60"},
    {"address": "A4:C1:38:00:00:03", "type": "weight_scale", "model": "UC-352BLE"},
    {"address": "A4:C1:38:00:00:04", "type": "thermometer", "model": "UT-201BLE"},
    {"address": "A4:C1:38:00:00:05", "type": "glucose_meter", "model": "Contour Next One", "bond": True},
]


class _Mosquitto:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        (workdir / "data").mkdir(parents=True)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {workdir}/data/\nmax_queued_messages 0\nmax_inflight_messages 0\n"
            f"log_dest file {workdir}/mosquitto.log\n" + ("user root\n" if os.geteuid() == 0 else "")
        )
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(self.conf)], stderr=subprocess.DEVNULL)
        if not wait_until(self._accepts, 10, 0.05):
            raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False


class _Subscriber:
    """Stands in for ingest: persistent QoS 1 session, counts reading ids per gateway."""

    def __init__(self, port: int) -> None:
        self.ids: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._lock = threading.Lock()
        ready = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-ingest", protocol=MQTTProtocolVersion.MQTTv5)
        client.on_connect = lambda c, *_a: c.subscribe("varde/v1/gw/+/readings", qos=1)
        client.on_subscribe = lambda *_a: ready.set()
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 1)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        client.connect("127.0.0.1", port, clean_start=False, properties=props)
        client.loop_start()
        self.client = client
        if not ready.wait(10):
            raise RuntimeError("bench subscriber did not subscribe")

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        gateway = msg.topic.split("/")[3]
        ids = [r["id"] for r in json.loads(msg.payload)["readings"]]
        with self._lock:
            self.ids[gateway].update(ids)

    def unique(self, gateway: str) -> int:
        with self._lock:
            return len(self.ids[gateway])

    def duplicates(self, gateway: str) -> int:
        with self._lock:
            return sum(self.ids[gateway].values()) - len(self.ids[gateway])

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _config(state: Path, port: int, *, ble: bool) -> dict[str, Any]:
    return {
        "gateway_id": GW,
        "patient_timezone": "Europe/Oslo",
        "broker": {"host": "127.0.0.1", "port": port},
        "outbox": {"path": str(state / "outbox.sqlite")},
        "ble": {"enabled": ble},
        "devices": DEVICES,
    }


def _readings(n: int, start: datetime) -> list[Reading]:
    ref = DeviceRef(address=OXIMETER, type="pulse_oximeter", model="PO-60")
    out: list[Reading] = []
    for i in range(n):
        at = start + timedelta(seconds=i // 2)
        kind, unit, value = ("spo2", "%", 95.0 + i % 4) if i % 2 == 0 else ("pulse_rate", "/min", 60.0 + i % 30)
        out.append(Reading(id=uuid.uuid4(), kind=kind, value=value, unit=unit, measured_at=at, device=ref))
    return out


def _rss_kb(pid: int | str = "self") -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


# ---- the agent process with a 1 Hz oximeter feed ------------------------------------------------------------


def _agent_child(config_path: Path, feed_s: float) -> None:
    """Runs in the child: a real Agent (BLE enabled, 5 devices) fed one spo2 + pulse pair per second."""
    config = EdgeConfig.model_validate_json(config_path.read_text())
    agent = Agent(config)
    report: dict[str, float] = {}

    async def oximeter(a: Agent) -> None:
        await asyncio.sleep(1.0)
        cpu0, t0 = time.process_time(), time.monotonic()
        sent = 0
        while time.monotonic() - t0 < feed_s:
            a.accept(_readings(2, datetime.now(UTC)))
            sent += 2
            await asyncio.sleep(1.0)
        report.update(cpu_s=time.process_time() - cpu0, wall_s=time.monotonic() - t0, sent=sent, **_rss_kb())
        a.request_stop()

    asyncio.run(agent.run([oximeter]))
    print(json.dumps(report), flush=True)


def _measure_agent(tmp: Path, port: int, subscriber: _Subscriber, feed_s: float) -> dict[str, Any]:
    config_path = tmp / "agent-config.json"
    config_path.write_text(json.dumps(_config(tmp / "agent-state", port, ble=True)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, __file__, "--agent-child", str(config_path), "--feed-s", str(feed_s)],
        capture_output=True,
        text=True,
        env=env,
        timeout=feed_s + 60,
        check=True,
    )
    child = json.loads(done.stdout.strip().splitlines()[-1])
    wait_until(lambda: subscriber.unique(GW) >= child["sent"], 10)
    return {
        "rss_mb": round(child["VmRSS"] / 1024, 1),
        "rss_mb_peak": round(child["VmHWM"] / 1024, 1),
        "agent_cpu_percent": round(100 * child["cpu_s"] / child["wall_s"], 2),
        "feed_readings": child["sent"],
        "feed_delivered": subscriber.unique(GW),
    }


# ---- readings through the agent from five virtual devices, per link ------------------------------------------


def _stock(air: Any, records: int) -> int:
    """The five paired devices on `air`, each holding stored measurements (the glucose meter `records`, fetched by
    RACP); returns how many readings they make."""
    from device_simulators.peripherals import BloodPressureCuff, GlucoseMeter, PulseOximeter, Thermometer, WeightScale

    cuff = BloodPressureCuff(air, DEVICES[0]["address"], capacity=100)
    oximeter = PulseOximeter(air, OXIMETER)
    scale = WeightScale(air, DEVICES[2]["address"])
    thermometer = Thermometer(air, DEVICES[3]["address"])
    meter = GlucoseMeter(
        air, DEVICES[4]["address"], model=str(DEVICES[4]["model"]), passkey=GLUCOSE_PASSKEY, capacity=records + 10
    )
    start = datetime.now().replace(microsecond=0) - timedelta(days=30)
    for i in range(20):
        at = start + timedelta(hours=i)
        cuff.measure(120 + i, 80, pulse=60 + i, at=at)
        oximeter.measure(95 + i % 4, 60 + i, at=at)
        scale.measure(80 + i / 10, at=at)
        thermometer.measure(36.5 + i / 50, at=at)
    for i in range(records):
        meter.measure(5.0 + i % 40 / 10, at=start + timedelta(minutes=10 * i))
    return 20 * 4 + 20 * 2 + 20 + 20 + records


def _devices_child(port: int, records: int) -> None:
    """Runs in a child: the five virtual devices as Bumble GATT servers, and the gateway's controller on the same
    LocalLink behind an HCI transport on `port` — what a USB dongle is to the agent. Ends when stdin closes."""
    from bumble.controller import Controller
    from bumble.transport import open_transport

    from device_simulators.bumble_air import BumbleAir
    from device_simulators.link import WallClock

    async def main() -> None:
        air = BumbleAir(WallClock())
        server = await open_transport(f"tcp-server:127.0.0.1:{port}")
        Controller("gateway-dongle", host_source=server.source, host_sink=server.sink, link=air.link)
        expected = _stock(air, records)
        print(json.dumps({"readings": expected}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        print(json.dumps({"cpu_s": time.process_time()}), flush=True)
        await server.close()

    asyncio.run(main())


def _link_child(config_path: Path, link: str, records: int) -> None:
    """Runs in the child: an Agent with the 5 paired devices. On the Python link the devices live in this process
    (the medium is in-process); on the Bumble link the agent runs its configured radio (`[ble] backend = "bumble"`)
    over an HCI transport to the devices' process. Reports the time and CPU from the start of scanning until every
    reading is in the outbox and then delivered, and the RSS with the five devices served."""
    config = EdgeConfig.model_validate_json(config_path.read_text())
    report: dict[str, float] = {}

    if link == "bumble_cryptography":
        # The baseline: Bumble loaded before the agent's link, so it keeps the `cryptography` wheel's primitives.
        import bumble.crypto  # noqa: F401

    async def main() -> None:
        expected = records
        if link == "python":
            from device_simulators.link import Air, WallClock

            air = Air(WallClock())
            radio = air.radio()
            agent = Agent(config, radio_factory=lambda _ble: radio)
        else:
            agent = Agent(config)
        accept = agent.accept
        accepted = [0]

        def counting(readings: Any) -> Any:
            result = accept(readings)
            accepted[0] += result.added + result.duplicates
            return result

        agent.accept = counting  # type: ignore[method-assign]

        async def scenario(a: Agent) -> None:
            try:
                await measured(a)
            except BaseException as exc:
                report["error"] = repr(exc)  # type: ignore[assignment]
                a.request_stop()
                raise

        async def measured(a: Agent) -> None:
            nonlocal expected
            t_start = time.monotonic()
            while a.devices is None or a.devices.radio is None:
                if time.monotonic() - t_start > 60:
                    raise RuntimeError(f"{link}: the radio did not start scanning in 60 s")
                await asyncio.sleep(0.01)
            manager = a.devices
            cpu0, t0 = time.process_time(), time.monotonic()
            if link == "python":
                expected = _stock(air, records)
            while accepted[0] < expected or any(r.busy for r in manager.devices.values()):
                if time.monotonic() - t0 > 300:
                    errors = {a: str(r.last_error) for a, r in manager.devices.items() if r.last_error}
                    raise RuntimeError(f"{link}: {accepted[0]} of {expected} readings after 300 s; errors {errors}")
                await asyncio.sleep(0.01)
            report["outbox_s"] = time.monotonic() - t0
            while a.outbox.depth:
                await asyncio.sleep(0.01)
            report["delivered_s"] = time.monotonic() - t0
            report["cpu_s"] = time.process_time() - cpu0
            report["readings"] = expected
            report.update(_rss_kb())
            a.request_stop()

        await agent.run([scenario])

    asyncio.run(main())
    print(json.dumps(report), flush=True)
    if "error" in report:
        raise SystemExit(f"link arm failed: {report['error']}")


def _measure_links(tmp: Path, port: int, records: int) -> dict[str, Any]:
    arms: dict[str, Any] = {}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for link in ("python", "bumble", "bumble_cryptography"):
        config = _config(tmp / f"link-{link}", port, ble=True)
        # Each arm its own gateway, apart from the feed's gateway whose deliveries are counted.
        config["gateway_id"] = f"gw-bench-{link.replace('_', '-')}"
        config["patient_screen"] = {"enabled": False}
        config["devices"] = [dict(d, passkey=GLUCOSE_PASSKEY) if d.get("bond") else d for d in DEVICES]
        devices: subprocess.Popen[str] | None = None
        expected = records
        if link != "python":
            hci_port = free_port()
            config["ble"] = {"backend": "bumble", "bumble_transport": f"tcp-client:127.0.0.1:{hci_port}"}
            devices = subprocess.Popen(
                [sys.executable, __file__, "--devices-child", str(hci_port), "--glucose-records", str(records)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            assert devices.stdout is not None
            expected = json.loads(devices.stdout.readline())["readings"]
        config_path = tmp / f"link-{link}.json"
        config_path.write_text(json.dumps(config))
        count = str(records if link == "python" else expected)
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--link-child",
                    str(config_path),
                    "--link",
                    link,
                    "--glucose-records",
                    count,
                ],
                capture_output=True,
                text=True,
                env=env,
                timeout=900,
                check=True,
            )
        finally:
            device_cpu = None
            if devices is not None:
                out, _ = devices.communicate("", timeout=60)
                device_cpu = json.loads(out.strip().splitlines()[-1])["cpu_s"]
        child = json.loads(done.stdout.strip().splitlines()[-1])
        arms[link] = {
            "readings": child["readings"],
            "readings_per_s_to_outbox": round(child["readings"] / child["outbox_s"], 1),
            "readings_per_s_delivered": round(child["readings"] / child["delivered_s"], 1),
            "agent_cpu_ms_per_reading": round(1000 * child["cpu_s"] / child["readings"], 3),
            "agent_rss_mb_5_devices": round(child["VmRSS"] / 1024, 1),
            "agent_rss_mb_peak": round(child["VmHWM"] / 1024, 1),
        }
        if device_cpu is not None:
            arms[link]["devices_process_cpu_s"] = round(device_cpu, 2)
    arms["python"]["note"] = "the in-process medium: the virtual devices run inside the agent's process"
    arms["bumble"]["note"] = "agent over [ble] backend=bumble, HCI over TCP to the devices' process"
    arms["bumble_cryptography"]["note"] = (
        "baseline: the same Bumble arm with the cryptography wheel's primitives (Bumble imported before the link)"
    )
    arms["bumble_rss_saved_mb"] = round(
        arms["bumble_cryptography"]["agent_rss_mb_5_devices"] - arms["bumble"]["agent_rss_mb_5_devices"], 1
    )
    arms["bumble_vs_python_agent_cpu"] = round(
        arms["bumble"]["agent_cpu_ms_per_reading"] / arms["python"]["agent_cpu_ms_per_reading"], 2
    )
    return {"links": arms}


def _bare_python_rss_mb() -> float:
    code = "print(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    return round(int(out.stdout) / 1024, 1)


# ---- replay after an outage ------------------------------------------------------------------------------------


def _replay(tmp: Path, broker: _Mosquitto, subscriber: _Subscriber, n: int) -> dict[str, Any]:
    config = EdgeConfig.model_validate(_config(tmp / "replay-state", broker.port, ble=False))
    agent = Agent(config, radio_factory=None)
    before_unique = subscriber.unique(GW)
    readings = _readings(n, datetime.now(UTC) - timedelta(days=1))
    try:
        broker.stop()
        agent.publisher.start()
        t0 = time.perf_counter()
        for i in range(0, n, 1000):
            agent.accept(readings[i : i + 1000])
        fill_s = time.perf_counter() - t0
        assert agent.outbox.depth == n
        broker.start()
        if not wait_until(lambda: agent.publisher.connected, 120):
            raise RuntimeError("agent did not reconnect")
        t1 = time.perf_counter()
        if not wait_until(lambda: agent.outbox.depth == 0, 300, 0.002):
            raise RuntimeError(f"outbox not drained: depth {agent.outbox.depth}")
        replay_s = time.perf_counter() - t1
        wait_until(lambda: subscriber.unique(GW) - before_unique >= n, 60)
    finally:
        agent.publisher.stop()
        agent.outbox.close()
        agent.plans.close()
    return {
        "replay_readings": n,
        "replay_s": round(replay_s, 3),
        "replay_readings_per_s": round(n / replay_s),
        "replay_delivered_unique": subscriber.unique(GW) - before_unique,
        "fill_readings_per_s": round(n / fill_s),
        "window": config.publisher.window,
        "batch_max_readings": config.publisher.batch_max_readings,
    }


def _raw_paho_rate(port: int, subscriber: _Subscriber, n: int, window: int, batch: int) -> dict[str, Any]:
    """Baseline: the same envelopes, the same window, straight from memory through paho."""
    readings = _readings(n, datetime.now(UTC) - timedelta(days=1))
    bodies = [r.model_dump_json().encode() for r in readings]
    payloads = [build_envelope(RAW_GW, bodies[i : i + batch], utc_timestamp()) for i in range(0, n, batch)]
    slots = threading.Semaphore(window)
    acked = threading.Event()
    remaining = [len(payloads)]

    def on_publish(*_a: Any) -> None:
        slots.release()
        remaining[0] -= 1
        if remaining[0] == 0:
            acked.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=MQTTProtocolVersion.MQTTv5)
    client.on_publish = on_publish
    client.max_inflight_messages_set(window + 4)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        topic = readings_topic(RAW_GW)
        t0 = time.perf_counter()
        for payload in payloads:
            slots.acquire(timeout=30)
            client.publish(topic, payload, qos=1)
        if not acked.wait(120):
            raise RuntimeError("raw publisher not acknowledged")
        elapsed = time.perf_counter() - t0
    finally:
        client.loop_stop()
        client.disconnect()
    return {"raw_paho_readings_per_s": round(n / elapsed)}


class _Done(Exception):
    """The arms asked for are measured."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=50_000)
    parser.add_argument("--feed-s", type=float, default=10.0)
    parser.add_argument("--glucose-records", type=int, default=2000)
    parser.add_argument("--links-only", action="store_true", help="Only the per-link arms (Python and Bumble).")
    parser.add_argument("--agent-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--link-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--link", default="python", help=argparse.SUPPRESS)
    parser.add_argument("--devices-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.agent_child is not None:
        _agent_child(args.agent_child, args.feed_s)
        return
    if args.devices_child is not None:
        _devices_child(args.devices_child, args.glucose_records)
        return
    if args.link_child is not None:
        _link_child(args.link_child, args.link, args.glucose_records)
        return

    machine = machine_facts()
    with tempfile.TemporaryDirectory(prefix="varde-bench-edge-") as tmpdir:
        tmp = Path(tmpdir)
        broker = _Mosquitto(tmp / "broker")
        broker.start()
        subscriber = _Subscriber(broker.port)
        try:
            figures: dict[str, Any] = {}
            figures["bare_python_rss_mb"] = _bare_python_rss_mb()
            figures.update(_measure_links(tmp, broker.port, args.glucose_records))
            if args.links_only:
                raise _Done
            figures.update(_measure_agent(tmp, broker.port, subscriber, args.feed_s))
            figures.update(_replay(tmp, broker, subscriber, args.readings))
            figures.update(
                _raw_paho_rate(broker.port, subscriber, args.readings, figures["window"], figures["batch_max_readings"])
            )
            figures["replay_vs_raw_paho"] = round(
                figures["replay_readings_per_s"] / figures["raw_paho_readings_per_s"], 3
            )
        except _Done:
            pass
        finally:
            subscriber.close()
            broker.stop()
    figures["python"] = platform.python_version()
    figures["cpus"] = os.cpu_count()
    # The goal: the agent under 60 MB with five devices, on the Bumble link too.
    targets = {"agent_rss_mb_bumble_5_devices": ("<", 60.0)}
    figures["agent_rss_mb_bumble_5_devices"] = figures["links"]["bumble"]["agent_rss_mb_5_devices"]
    figures["failed"] = failed_targets(figures, targets)
    keep("edge", {"bench": "edge", "links_only": args.links_only, **figures}, machine=machine)


if __name__ == "__main__":
    main()
