"""The fleet load generator: N gateways, each on its own MQTT v5 connection with its own login, publishing real
readings envelopes at QoS 1 at a paced total rate, with a bounded in-flight window per connection.

One thread drives every connection through paho's external-loop API (`loop_read`/`loop_write`/`loop_misc` on a
selector), so no connection queues more than `window` unacknowledged envelopes and paho's own queue never grows.
Envelopes are cut from pre-serialised templates: per reading only the id and the timestamp are written at send
time (ids are a per-run random prefix, the gateway's index and a counter, so they never repeat).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import selectors
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from vitals import KINDS, MAX_READINGS_PER_ENVELOPE, SCHEMA, Kind, readings_topic

NO_MATCHING_SUBSCRIBERS = 0x10
_TEMPLATE_READINGS: tuple[tuple[Kind, float, str], ...] = (
    (Kind.SPO2, 96.0, "pulse_oximeter"),
    (Kind.PULSE_RATE, 72.0, "pulse_oximeter"),
    (Kind.BP_SYSTOLIC, 128.0, "blood_pressure_monitor"),
    (Kind.BP_DIASTOLIC, 78.0, "blood_pressure_monitor"),
    (Kind.BODY_WEIGHT, 82.4, "weight_scale"),
    (Kind.BODY_TEMPERATURE, 36.7, "thermometer"),
)


class FleetError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class FleetGateway:
    gateway_id: str
    password: str
    host: str
    port: int

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> FleetGateway:
        return cls(str(doc["gateway_id"]), str(doc["password"]), str(doc["mqtt_host"]), int(doc["mqtt_port"]))


@dataclass(slots=True)
class FleetReport:
    gateways: int
    connections: int
    batch: int
    window: int
    target_readings_per_s: float | None
    seconds: float
    envelopes_sent: int = 0
    readings_sent: int = 0
    envelopes_acked: int = 0
    readings_acked: int = 0
    no_matching_subscribers: int = 0
    """PUBACK 0x10: accepted by the broker but nobody subscribed (ingest not running)."""
    puback_failures: dict[str, int] = field(default_factory=dict)
    """PUBACK reason codes ≥ 0x80 (e.g. 0x87 not authorised), by code."""
    window_full_waits: int = 0
    """Times a due envelope found every connection's window full: the broker, not the pacing, set the rate."""
    unacked: int = 0
    elapsed_s: float = 0.0
    """From the first publish to the last PUBACK (or the drain deadline)."""
    readings_per_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class EnvelopeCutter:
    """Readings envelopes for one gateway from a pre-serialised template: ids and times filled in at send time."""

    def __init__(self, gateway_id: str, gateway_index: int, batch: int, run_prefix: str) -> None:
        if not 1 <= batch <= MAX_READINGS_PER_ENVELOPE:
            raise FleetError(f"batch must be 1..{MAX_READINGS_PER_ENVELOPE}, got {batch}")
        self.batch = batch
        self._id_head = f"{run_prefix}-{gateway_index & 0xFFFF:04x}-4000-8000-".encode()
        self._counter = 0
        self._head = (
            json.dumps({"schema": SCHEMA, "gateway_id": gateway_id, "sent_at": "@"}, separators=(",", ":"))
            .encode()
            .split(b'"@"')
        )
        address = f"C0:FE:{(gateway_index >> 8) & 0xFF:02X}:{gateway_index & 0xFF:02X}:00:01"
        self._parts: list[tuple[bytes, bytes, bytes]] = []
        for i in range(batch):
            kind, value, device_type = _TEMPLATE_READINGS[i % len(_TEMPLATE_READINGS)]
            reading = {
                "id": "@ID",
                "kind": str(kind),
                "value": value,
                "unit": KINDS[kind].unit,
                "measured_at": "@TS",
                "device": {"address": address, "type": device_type},
            }
            text = json.dumps(reading, separators=(",", ":")).encode()
            before_id, rest = text.split(b"@ID")
            middle, after_ts = rest.split(b"@TS")
            self._parts.append((before_id, middle, after_ts))

    def cut(self, stamp: bytes) -> bytes:
        """One envelope; `stamp` is the RFC 3339 time (bytes) used for sent_at and every measured_at."""
        out = [self._head[0], b'"', stamp, b'"', self._head[1][:-1], b',"readings":[']
        counter = self._counter
        id_head = self._id_head
        for i, (before_id, middle, after_ts) in enumerate(self._parts):
            if i:
                out.append(b",")
            out += (before_id, id_head, b"%012x" % (counter & 0xFFFFFFFFFFFF), middle, stamp, after_ts)
            counter += 1
        self._counter = counter
        out.append(b"]}")
        return b"".join(out)


class _Connection:
    def __init__(self, gateway: FleetGateway, index: int, window: int, report: FleetReport) -> None:
        self.gateway = gateway
        self.index = index
        self.topic = readings_topic(gateway.gateway_id)
        self.window = window
        self.inflight: dict[int, int] = {}
        self.connected = False
        self.refused: Any = None
        self._report = report
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=gateway.gateway_id,  # a gateway login may connect only with its own id
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.username_pw_set(gateway.gateway_id, gateway.password)
        client.max_inflight_messages_set(window + 2)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        self.client = client

    def _on_connect(self, _c: mqtt.Client, _u: Any, _flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.refused = reason
            return
        receive_max = getattr(props, "ReceiveMaximum", None)
        if receive_max:
            self.window = max(1, min(self.window, int(receive_max)))
        self.connected = True

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: Any, _props: Any) -> None:
        readings = self.inflight.pop(mid, None)
        if readings is None:
            return
        code = int(getattr(reason, "value", 0))
        report = self._report
        if code >= 0x80:
            key = f"0x{code:02x}"
            report.puback_failures[key] = report.puback_failures.get(key, 0) + 1
            return
        if code == NO_MATCHING_SUBSCRIBERS:
            report.no_matching_subscribers += 1
        report.envelopes_acked += 1
        report.readings_acked += readings

    def publish(self, payload: bytes, readings: int) -> bool:
        info = self.client.publish(self.topic, payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        self.inflight[info.mid] = readings
        return True


class Fleet:
    """Open one connection per gateway, then publish paced envelopes; `run` returns the report."""

    def __init__(
        self,
        gateways: Sequence[FleetGateway],
        *,
        batch: int = 50,
        window: int = 16,
        connect_timeout_s: float = 30.0,
    ) -> None:
        if not gateways:
            raise FleetError("no gateways to publish as")
        self.gateways = list(gateways)
        self.batch = batch
        self.window = window
        self.connect_timeout_s = connect_timeout_s
        self.report = FleetReport(len(gateways), 0, batch, window, None, 0.0)
        self._selector = selectors.DefaultSelector()
        self._connections: list[_Connection] = []

    # --- connections ----------------------------------------------------------------------------------------

    def connect(self) -> None:
        for index, gateway in enumerate(self.gateways):
            conn = _Connection(gateway, index, self.window, self.report)
            try:
                conn.client.connect(gateway.host, gateway.port, keepalive=60)
            except OSError as exc:
                raise FleetError(f"cannot reach the broker at {gateway.host}:{gateway.port}: {exc}") from None
            sock = conn.client.socket()
            assert sock is not None
            self._selector.register(sock, selectors.EVENT_READ, conn)
            self._connections.append(conn)
        deadline = time.monotonic() + self.connect_timeout_s
        while time.monotonic() < deadline:
            self._service(0.05)
            refused = [c for c in self._connections if c.refused is not None]
            if refused:
                raise FleetError(
                    f"broker refused {len(refused)} gateway login(s), e.g. {refused[0].gateway.gateway_id}: "
                    f"{refused[0].refused} (were they provisioned on this broker?)"
                )
            if all(c.connected for c in self._connections):
                self.report.connections = len(self._connections)
                return
        waiting = sum(1 for c in self._connections if not c.connected)
        raise FleetError(f"{waiting} connection(s) got no CONNACK within {self.connect_timeout_s:.0f} s")

    def close(self) -> None:
        for conn in self._connections:
            sock = conn.client.socket()
            if sock is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(sock)
            conn.client.disconnect()
            conn.client.loop_write()
        self._connections = []
        self._selector.close()

    def __enter__(self) -> Fleet:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the loop -------------------------------------------------------------------------------------------

    def _service(self, timeout: float) -> None:
        for key, _events in self._selector.select(timeout):
            conn: _Connection = key.data
            conn.client.loop_read()
        for conn in self._connections:
            if conn.client.want_write():
                conn.client.loop_write()

    def _misc(self) -> None:
        for conn in self._connections:
            conn.client.loop_misc()

    def run(
        self,
        rate: float | None,
        seconds: float,
        *,
        drain_s: float = 15.0,
        fixed_payload: bool = False,
        max_readings: int | None = None,
    ) -> FleetReport:
        """Publish for `seconds` at `rate` readings/s in total (None: as fast as the windows allow), or until
        `max_readings` have been sent.

        `fixed_payload` sends one pre-built envelope over and over (the baseline: paho and the broker alone).
        """
        report = self.report
        report.target_readings_per_s = rate
        report.seconds = seconds
        conns = self._connections
        cutters = [EnvelopeCutter(c.gateway.gateway_id, c.index, self.batch, secrets.token_hex(4)) for c in conns]
        fixed = [cutter.cut(_stamp(time.time())) for cutter in cutters] if fixed_payload else None
        envelope_interval = self.batch / rate if rate else 0.0
        start = time.monotonic()
        end = start + seconds
        next_misc = start + 1.0
        stamp_second = -1
        stamp = b""
        turn = 0
        n = len(conns)
        while True:
            now = time.monotonic()
            if now >= end or (max_readings is not None and report.readings_sent >= max_readings):
                break
            due = int((now - start) / envelope_interval) + 1 - report.envelopes_sent if rate else n * self.window
            blocked = False
            if max_readings is not None:
                due = min(due, -(-(max_readings - report.readings_sent) // self.batch))
            while due > 0:
                for _ in range(n):
                    conn = conns[turn]
                    turn = (turn + 1) % n
                    if len(conn.inflight) < conn.window:
                        break
                else:
                    report.window_full_waits += 1
                    blocked = True
                    break
                wall = time.time()
                if int(wall) != stamp_second:
                    stamp_second, stamp = int(wall), _stamp(wall)
                payload = fixed[conn.index] if fixed is not None else cutters[conn.index].cut(stamp)
                if conn.publish(payload, self.batch):
                    report.envelopes_sent += 1
                    report.readings_sent += self.batch
                due -= 1
            if now >= next_misc:
                self._misc()
                next_misc = now + 1.0
            if blocked:
                wait = 0.005
            elif rate:
                wait = min(0.05, max(0.0, start + report.envelopes_sent * envelope_interval - time.monotonic()))
            else:
                wait = 0.0
            self._service(wait)
        last_ack = time.monotonic()
        deadline = last_ack + drain_s
        while any(c.inflight for c in conns) and time.monotonic() < deadline:
            self._service(0.05)
            self._misc()
            last_ack = time.monotonic()
        report.unacked = sum(len(c.inflight) for c in conns)
        report.elapsed_s = round(last_ack - start, 3)
        report.readings_per_s = round(report.readings_acked / report.elapsed_s, 1) if report.elapsed_s else 0.0
        return report


def _stamp(wall: float) -> bytes:
    return datetime.fromtimestamp(int(wall), UTC).isoformat().replace("+00:00", "Z").encode()


def load_gateways(doc: dict[str, Any], count: int | None = None) -> list[FleetGateway]:
    """Gateways from the JSON `varde sim provision --json` prints (`{"gateways": [...]}`)."""
    items = [FleetGateway.from_dict(g) for g in doc.get("gateways", [])]
    if count is not None:
        if len(items) < count:
            raise FleetError(f"the file holds {len(items)} gateways, {count} asked for")
        items = items[:count]
    return items
