"""The fleet load generator: N gateways, each on its own MQTT v5 connection with its own login, publishing real
readings envelopes at QoS 1 at a paced total rate, with a bounded in-flight window per connection.

One thread drives every connection through paho's external-loop API (`loop_read`/`loop_write`/`loop_misc` on a
selector), so no connection queues more than `window` unacknowledged envelopes and paho's own queue never grows.
Envelopes are cut from pre-serialised templates: per reading only the id, the timestamp and (for a chosen fraction)
an out-of-range or implausible value are written at send time. Ids have the production shape: the UUIDv5 a gateway
gives a reading (gateway, device, kind, device time, sequence number), so they scatter over the primary key as real
ones do, and a per-run random device time base keeps runs apart.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import secrets
import selectors
import ssl
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from vitals import KINDS, MAX_READINGS_PER_ENVELOPE, SCHEMA, Kind, readings_topic
from vitals.ids import READING_NAMESPACE

NO_MATCHING_SUBSCRIBERS = 0x10
_TEMPLATE_READINGS: tuple[tuple[Kind, float, str], ...] = (
    (Kind.SPO2, 96.0, "pulse_oximeter"),
    (Kind.PULSE_RATE, 72.0, "pulse_oximeter"),
    (Kind.BP_SYSTOLIC, 128.0, "blood_pressure_monitor"),
    (Kind.BP_DIASTOLIC, 78.0, "blood_pressure_monitor"),
    (Kind.BODY_WEIGHT, 82.4, "weight_scale"),
    (Kind.BODY_TEMPERATURE, 36.7, "thermometer"),
)
# The same positions with a value past every protocol's red limit (an alarm is raised, then updated), and with a
# value outside the kind's plausible range (a per-reading dead letter). Weight has no fixed limit: it stays.
_ALARM_VALUES = {
    Kind.SPO2: 84.0,
    Kind.PULSE_RATE: 148.0,
    Kind.BP_SYSTOLIC: 205.0,
    Kind.BP_DIASTOLIC: 128.0,
    Kind.BODY_WEIGHT: 82.4,
    Kind.BODY_TEMPERATURE: 40.2,
}
_IMPLAUSIBLE_VALUES = {
    Kind.SPO2: 130.0,
    Kind.PULSE_RATE: 400.0,
    Kind.BP_SYSTOLIC: 420.0,
    Kind.BP_DIASTOLIC: 330.0,
    Kind.BODY_WEIGHT: 900.0,
    Kind.BODY_TEMPERATURE: 55.0,
}


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
    readings_out_of_range: int = 0
    """Readings sent with a value past the red limits (`alarm_fraction`)."""
    readings_implausible: int = 0
    """Readings sent with a value outside the plausible range (`implausible_fraction`): dead letters by design."""
    elapsed_s: float = 0.0
    """From the first publish to the last PUBACK (or the drain deadline)."""
    readings_per_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class EnvelopeCutter:
    """Readings envelopes for one gateway from a pre-serialised template: ids, times and the odd abnormal value
    filled in at send time.

    `alarm_fraction` of the readings carry a value past the red limits, `implausible_fraction` one outside the
    plausible range; the choice is seeded, so a run can be repeated. `ids` of the last `cut` are kept when
    `keep_ids` is set, for accounting by id set.
    """

    def __init__(
        self,
        gateway_id: str,
        gateway_index: int,
        batch: int,
        run_prefix: str,
        *,
        alarm_fraction: float = 0.0,
        implausible_fraction: float = 0.0,
        keep_ids: bool = False,
    ) -> None:
        if not 1 <= batch <= MAX_READINGS_PER_ENVELOPE:
            raise FleetError(f"batch must be 1..{MAX_READINGS_PER_ENVELOPE}, got {batch}")
        if not 0 <= alarm_fraction + implausible_fraction <= 1:
            raise FleetError("alarm_fraction + implausible_fraction must be within 0..1")
        self.batch = batch
        self.gateway_id = gateway_id
        self._run = run_prefix
        self._counter = 0
        self._alarm = alarm_fraction
        self._bad = alarm_fraction + implausible_fraction
        self._rng = random.Random(f"{run_prefix}/{gateway_index}")
        self.keep_ids = keep_ids
        self.ids: list[bytes] = []
        """The 16-byte ids of the last `cut` (with `keep_ids`)."""
        self.out_of_range = 0
        self.implausible = 0
        self._head = (
            json.dumps({"schema": SCHEMA, "gateway_id": gateway_id, "sent_at": "@"}, separators=(",", ":"))
            .encode()
            .split(b'"@"')
        )
        self.address = f"C0:FE:{(gateway_index >> 8) & 0xFF:02X}:{gateway_index & 0xFF:02X}:00:01"
        self._kinds: list[str] = []
        # Per position: (before the id, between id and time, after the time) for the normal, alarm and implausible
        # value.
        self._parts: list[tuple[tuple[bytes, bytes, bytes], ...]] = []
        for i in range(batch):
            kind, value, device_type = _TEMPLATE_READINGS[i % len(_TEMPLATE_READINGS)]
            self._kinds.append(str(kind))
            variants = []
            for v in (value, _ALARM_VALUES[kind], _IMPLAUSIBLE_VALUES[kind]):
                reading = {
                    "id": "@ID",
                    "kind": str(kind),
                    "value": v,
                    "unit": KINDS[kind].unit,
                    "measured_at": "@TS",
                    "device": {"address": self.address, "type": device_type},
                }
                text = json.dumps(reading, separators=(",", ":")).encode()
                before_id, rest = text.split(b"@ID")
                middle, after_ts = rest.split(b"@TS")
                variants.append((before_id, middle, after_ts))
            self._parts.append(tuple(variants))

    def cut(self, stamp: bytes) -> bytes:
        """One envelope; `stamp` is the RFC 3339 time (bytes) used for sent_at and every measured_at."""
        out = [self._head[0], b'"', stamp, b'"', self._head[1][:-1], b',"readings":[']
        counter = self._counter
        device_time = f"{self._run}/{stamp.decode()}"
        ids = self.ids
        ids.clear()
        rng, alarm, bad = self._rng.random, self._alarm, self._bad
        for i, variants in enumerate(self._parts):
            if i:
                out.append(b",")
            rid = _uuid5(f"{self.gateway_id}|{self.address}|{self._kinds[i]}|{device_time}|seq={counter}")
            if self.keep_ids:
                ids.append(rid)
            variant = 0
            if bad:
                draw = rng()
                if draw < alarm:
                    variant, self.out_of_range = 1, self.out_of_range + 1
                elif draw < bad:
                    variant, self.implausible = 2, self.implausible + 1
            before_id, middle, after_ts = variants[variant]
            out += (before_id, _text(rid), middle, stamp, after_ts)
            counter += 1
        self._counter = counter
        out.append(b"]}")
        return b"".join(out)


_NAMESPACE = READING_NAMESPACE.bytes


def _uuid5(name: str) -> bytes:
    """The 16 bytes of `uuid.uuid5(READING_NAMESPACE, name)` (the id `vitals.reading_id` gives), without the cost
    of a `uuid.UUID` per reading."""
    digest = bytearray(hashlib.sha1(_NAMESPACE + name.encode()).digest()[:16])  # noqa: S324 - UUIDv5 is SHA-1
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return bytes(digest)


def _text(raw: bytes) -> bytes:
    h = raw.hex().encode()
    return b"%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


class _Connection:
    def __init__(
        self,
        gateway: FleetGateway,
        index: int,
        window: int,
        report: FleetReport,
        acked_ids: list[bytes] | None,
        tls_ca_file: str | None,
    ) -> None:
        self.gateway = gateway
        self.index = index
        self.topic = readings_topic(gateway.gateway_id)
        self.window = window
        self.inflight: dict[int, tuple[int, tuple[bytes, ...]]] = {}
        self.connected = False
        self.refused: Any = None
        self._report = report
        self._acked_ids = acked_ids
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=gateway.gateway_id,  # a gateway login may connect only with its own id
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.username_pw_set(gateway.gateway_id, gateway.password)
        client.max_inflight_messages_set(window + 2)
        if tls_ca_file:
            client.tls_set(ca_certs=tls_ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
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
        sent = self.inflight.pop(mid, None)
        if sent is None:
            return
        readings, ids = sent
        code = int(getattr(reason, "value", 0))
        report = self._report
        if code >= 0x80:
            key = f"0x{code:02x}"
            report.puback_failures[key] = report.puback_failures.get(key, 0) + 1
            return
        if code == NO_MATCHING_SUBSCRIBERS:
            report.no_matching_subscribers += 1
        elif self._acked_ids is not None:
            self._acked_ids.extend(ids)
        report.envelopes_acked += 1
        report.readings_acked += readings

    def publish(self, payload: bytes, readings: int, ids: tuple[bytes, ...] = ()) -> bool:
        info = self.client.publish(self.topic, payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        self.inflight[info.mid] = (readings, ids)
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
        alarm_fraction: float = 0.0,
        implausible_fraction: float = 0.0,
        keep_ids: bool = False,
        tls_ca_file: str | None = None,
    ) -> None:
        """`keep_ids` collects the id (16 bytes) of every reading whose envelope the broker acknowledged as delivered in
        `acked_ids` (PUBACK 0x10 is not delivered); `tls_ca_file` connects over TLS (the gateways' ports must be
        the broker's TLS listener)."""
        if not gateways:
            raise FleetError("no gateways to publish as")
        self.gateways = list(gateways)
        self.batch = batch
        self.window = window
        self.connect_timeout_s = connect_timeout_s
        self.alarm_fraction = alarm_fraction
        self.implausible_fraction = implausible_fraction
        self.tls_ca_file = tls_ca_file
        self.acked_ids: list[bytes] | None = [] if keep_ids else None
        self.report = FleetReport(len(gateways), 0, batch, window, None, 0.0)
        self._selector = selectors.DefaultSelector()
        self._connections: list[_Connection] = []

    # --- connections ----------------------------------------------------------------------------------------

    def connect(self) -> None:
        for index, gateway in enumerate(self.gateways):
            conn = _Connection(gateway, index, self.window, self.report, self.acked_ids, self.tls_ca_file)
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
        if self.tls_ca_file:
            # TLS may hold decrypted bytes the socket no longer signals as readable.
            for conn in self._connections:
                sock = conn.client.socket()
                while isinstance(sock, ssl.SSLSocket) and sock.pending():
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
        keep_ids = self.acked_ids is not None
        cutters = [
            EnvelopeCutter(
                c.gateway.gateway_id,
                c.index,
                self.batch,
                secrets.token_hex(4),
                alarm_fraction=self.alarm_fraction,
                implausible_fraction=self.implausible_fraction,
                keep_ids=keep_ids,
            )
            for c in conns
        ]
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
                cutter = cutters[conn.index]
                payload = fixed[conn.index] if fixed is not None else cutter.cut(stamp)
                if conn.publish(payload, self.batch, tuple(cutter.ids)):
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
        report.readings_out_of_range = sum(c.out_of_range for c in cutters)
        report.readings_implausible = sum(c.implausible for c in cutters)
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
