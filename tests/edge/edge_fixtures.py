"""Helpers for the edge tests: a private, restartable Mosquitto on a free loopback port, a collecting subscriber,
reading factories and gateway configurations. Never touches the system broker."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.config import EdgeConfig
from varde.net import free_port, wait_until
from vitals import DeviceRef, Reading, parse_envelope, readings_topic, status_topic

MOSQUITTO = Path("/usr/sbin/mosquitto")
GW = "gw-test-0001"
_RUN_AS = "user root\n" if os.geteuid() == 0 else ""
"""As root, mosquitto would switch to user `mosquitto`, which cannot reach pytest's private tmp dirs."""


class Broker:
    """A private mosquitto with persistence, so stop/start keeps sessions and queued messages."""

    def __init__(self, workdir: Path, port: int | None = None, extra_conf: str = "") -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.conf = workdir / "mosquitto.conf"
        data = workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"{extra_conf or 'allow_anonymous true'}\n"
            "persistence true\n"
            f"persistence_location {data}/\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
            f"log_dest file {workdir}/mosquitto.log\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"{_RUN_AS}"
        )
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        self._proc = subprocess.Popen([str(MOSQUITTO), "-c", str(self.conf)], stderr=subprocess.DEVNULL)
        if not wait_until(self._accepts, 10.0, 0.05):
            self.stop()
            raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            self._proc = None

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False


class Collector:
    """An ingest stand-in: persistent QoS 1 session on the gateway's topics; counts readings by id."""

    def __init__(
        self,
        port: int,
        gateway_id: str = GW,
        client_id: str = "test-collector",
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.gateway_id = gateway_id
        self.ids: Counter[str] = Counter()
        self.envelopes = 0
        self.statuses: list[dict[str, Any]] = []
        self.bad: list[str] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5)
        if credentials is not None:
            client.username_pw_set(*credentials)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_subscribe = lambda *_a: self._subscribed.set()
        client.reconnect_delay_set(min_delay=1, max_delay=1)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        client.connect("127.0.0.1", port, keepalive=10, clean_start=False, properties=props)
        client.loop_start()
        self.client = client
        if not self._subscribed.wait(10):
            raise RuntimeError("collector did not subscribe")

    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, _rc: Any, _props: Any) -> None:
        client.subscribe([(readings_topic(self.gateway_id), 1), (status_topic(self.gateway_id), 1)])

    def _on_message(self, _client: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            if msg.topic.endswith("/status"):
                self.statuses.append(json.loads(msg.payload))
                return
            try:
                parsed = parse_envelope(msg.payload, self.gateway_id)
            except ValueError as exc:
                self.bad.append(str(exc))
                return
            self.envelopes += 1
            self.bad.extend(r.detail for r in parsed.rejected)
            self.ids.update(str(r.id) for r in parsed.readings)

    @property
    def unique(self) -> int:
        with self._lock:
            return len(self.ids)

    @property
    def duplicates(self) -> int:
        with self._lock:
            return sum(self.ids.values()) - len(self.ids)

    def last_status(self) -> dict[str, Any] | None:
        with self._lock:
            return self.statuses[-1] if self.statuses else None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


_T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def make_readings(n: int, *, start: int = 0, device: str = "A4:C1:38:00:00:02") -> list[Reading]:
    """`n` distinct 1 Hz oximeter readings (ids are random UUIDs, so tests never collide)."""
    ref = DeviceRef(address=device, type="pulse_oximeter", model="PO-60")
    return [
        Reading(
            id=uuid.uuid4(),
            kind="spo2",
            value=90.0 + (i % 10),
            unit="%",
            measured_at=_T0 + timedelta(seconds=start + i),
            device=ref,
        )
        for i in range(n)
    ]


def make_config(tmp_path: Path, port: int, **publisher: Any) -> EdgeConfig:
    return EdgeConfig.model_validate(
        {
            "gateway_id": GW,
            "patient_timezone": "Europe/Oslo",
            "broker": {"host": "127.0.0.1", "port": port, "keepalive_s": 10},
            "outbox": {"path": str(tmp_path / "state" / "outbox.sqlite")},
            "publisher": {"batch_linger_ms": 20, **publisher},
            "ble": {"enabled": False},
            "devices": [{"address": "A4:C1:38:00:00:02", "type": "pulse_oximeter", "model": "PO-60"}],
        }
    )


def write_config_file(tmp_path: Path, port: int, publisher: str = "") -> Path:
    path = tmp_path / "varde-edge.toml"
    path.write_text(
        f'gateway_id = "{GW}"\n'
        'patient_timezone = "Europe/Oslo"\n'
        "[broker]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        "keepalive_s = 10\n"
        "[outbox]\n"
        f'path = "{tmp_path / "state" / "outbox.sqlite"}"\n'
        "[publisher]\n"
        "status_interval_s = 2\n"
        f"{publisher}"
        "[ble]\n"
        "enabled = false\n"
        "[[devices]]\n"
        'address = "A4:C1:38:00:00:02"\n'
        'type = "pulse_oximeter"\n'
    )
    return path
