"""The MQTT v5 publisher: drains the outbox to the broker at QoS 1 and deletes rows only after their PUBACK.

One thread owns the paho client and drives it with its own `select` loop (paho's external-loop API), so acks,
outbox reads and publishes never race, reconnects use the jittered back-off of `backoff.py`, and an idle gateway
wakes once a second. At most `window` envelopes are unacknowledged at a time: paho's own queue never grows.

Session: `clean_start=False` with a session expiry, so the broker keeps the `plan` subscription and paho re-sends
unacknowledged envelopes (same packet id, DUP set) after a reconnect. After a process restart the outbox replays
everything still in it; the cloud stores each reading id once, so re-sends are harmless.

Besides the readings outbox, further durable queues ("lanes", e.g. the patient's questionnaire responses) are
drained the same way to their own topics, sharing the window. Plan and receipt messages go to handlers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent.backoff import BROKER, Schedule
from edge_agent.config import BrokerConfig, PublisherConfig
from edge_agent.outbox import Outbox, OutboxRow
from edge_agent.plan_store import PlanStore
from vitals import SCHEMA, GatewayStatus, plan_topic, readings_topic, receipts_topic, status_topic

log = logging.getLogger(__name__)

OFFLINE_PAYLOAD = json.dumps({"state": "offline"}).encode()
_NO_MATCHING_SUBSCRIBERS = 0x10
_IDLE_TICK_S = 1.0
_RETRY_FIRST_S = 5.0
REFUSED = Schedule(first_s=_RETRY_FIRST_S, max_s=300.0)
"""Envelopes the broker refused (a failure reason code)."""
UNROUTED = Schedule(first_s=_RETRY_FIRST_S, max_s=30.0)
"""Envelopes answered 0x10 (no matching subscribers): the cloud's ingest is re-subscribing, typically after a broker
restart, so such envelopes are retried within seconds rather than minutes. Both schedules are capped and jittered
however long the streak of refusals grows."""
_CONNECT_HINTS = {
    0x86: "check broker.username and the password (file) in the configuration",
    0x87: "the broker's ACL does not allow this gateway; is its gateway id registered?",
    0x88: "the broker is unavailable; it will be retried",
    0x8A: "this gateway is disabled in the cloud",
}


@dataclass(frozen=True, slots=True)
class Lane:
    """A durable queue drained to its own topic; `wrap(gateway_id, bodies, sent_at)` builds one message."""

    name: str
    outbox: Outbox
    topic: str
    wrap: Callable[[str, list[bytes], str], bytes]
    max_rows: int | None = None
    """Fewer rows per message than `batch_max_readings`, where the message format caps them."""


@dataclass(frozen=True, slots=True)
class _InFlight:
    first_seq: int
    last_seq: int
    count: int
    lane: int = 0


@dataclass(slots=True)
class _Retry:
    due: float
    first_seq: int
    last_seq: int
    lane: int = 0


@dataclass(slots=True)
class PublisherStats:
    envelopes_published: int = 0
    readings_published: int = 0
    readings_acked: int = 0
    envelopes_refused: int = 0
    connects: int = 0


def utc_timestamp(now: datetime | None = None) -> str:
    """RFC 3339, millisecond precision, `Z` suffix."""
    return (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_envelope(gateway_id: str, bodies: list[bytes], sent_at: str) -> bytes:
    """The readings envelope around readings that are already wire JSON (see `vitals.Envelope`)."""
    head = json.dumps({"schema": SCHEMA, "gateway_id": gateway_id, "sent_at": sent_at}, separators=(",", ":"))
    return head[:-1].encode() + b',"readings":[' + b",".join(bodies) + b"]}"


class Publisher:
    """Publishes outbox rows, the retained gateway status and receives the retained plan. Thread-backed."""

    def __init__(
        self,
        *,
        gateway_id: str,
        username: str,
        broker: BrokerConfig,
        settings: PublisherConfig,
        outbox: Outbox,
        plans: PlanStore,
        status: Callable[[], GatewayStatus],
        lanes: list[Lane] | None = None,
        on_plan: Callable[[str, bytes, bool], None] | None = None,
        on_receipt: Callable[[bytes], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.gateway_id = gateway_id
        self._clock = clock
        self._rng = rng
        self.stats = PublisherStats()
        self.heartbeat = time.monotonic()
        """Monotonic time of the loop's last turn; the systemd watchdog is only fed while this moves."""
        self._broker = broker
        self._settings = settings
        self._outbox = outbox
        self._plans = plans
        self._status = status
        self._on_plan = on_plan or self._save_plan
        self._on_receipt = on_receipt
        self._readings_topic = readings_topic(gateway_id)
        self._status_topic = status_topic(gateway_id)
        self._plan_topic = plan_topic(gateway_id)
        self._receipts_topic = receipts_topic(gateway_id)
        self._lanes = [Lane("readings", outbox, self._readings_topic, build_envelope), *(lanes or [])]
        self._window = settings.window
        self._inflight: dict[int, _InFlight] = {}
        self._acked: list[tuple[int, int, int]] = []
        """(lane, first_seq, last_seq) of envelopes the broker acknowledged, deleted on the loop's next turn."""
        self._retries: list[_Retry] = []
        self._refused_streak = 0
        self._cursor = [0] * len(self._lanes)
        self._linger_until: list[float | None] = [None] * len(self._lanes)
        self._status_due: float | None = None
        self._status_mid: int | None = None
        self._connected = False
        self._attempt = 0
        self._next_connect = 0.0
        self._stop = threading.Event()
        self._status_requested = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._client = self._make_client(username)
        self._thread = threading.Thread(target=self._run, name="varde-publisher", daemon=True)

    # ---- public, thread-safe -------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def inflight(self) -> int:
        """Envelopes published and not yet acknowledged (never more than the window)."""
        return len(self._inflight)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """New rows are in the outbox (or status changed): look now instead of at the next tick."""
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def request_status(self) -> None:
        self._status_requested.set()
        self.wake()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Publish `offline`, disconnect cleanly (so no Last Will is sent) and end the thread."""
        self._stop.set()
        self.wake()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._wake_r.close()
        self._wake_w.close()

    # ---- paho client ---------------------------------------------------------------------------------------

    def _make_client(self, username: str) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.gateway_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        client.username_pw_set(username, self._broker.read_password())
        tls = self._broker.tls
        if tls is not None:
            client.tls_set(
                ca_certs=str(tls.ca_file),
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.will_set(self._status_topic, OFFLINE_PAYLOAD, qos=1, retain=True)
        client.max_inflight_messages_set(self._settings.window + 4)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._broker.session_expiry_s
        client.connect_async(
            self._broker.host, self._broker.port, self._broker.keepalive_s, clean_start=False, properties=props
        )
        return client

    def _on_connect(self, client: mqtt.Client, _ud: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            hint = _CONNECT_HINTS.get(reason.value, "")
            log.error("broker_refused_connection reason=%s hint=%s", reason, hint)
            return
        self._connected = True
        self._attempt = 0
        self.stats.connects += 1
        receive_max = getattr(props, "ReceiveMaximum", None)
        self._window = self._settings.window
        if receive_max:
            self._window = max(1, min(self._window, int(receive_max) - 2))
        client.subscribe(self._plan_topic, qos=1)
        if self._on_receipt is not None:
            client.subscribe(self._receipts_topic, qos=1)
        self._status_due = 0.0
        log.info(
            "broker_connected host=%s port=%d session_present=%s window=%d inflight=%d",
            self._broker.host,
            self._broker.port,
            flags.session_present,
            self._window,
            len(self._inflight),
        )

    def _on_disconnect(self, _client: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        was = self._connected
        self._connected = False
        if was and not self._stop.is_set():
            log.warning("broker_connection_lost reason=%s inflight=%d", reason, len(self._inflight))

    def _on_publish(self, _client: mqtt.Client, _ud: Any, mid: int, reason: Any, _props: Any) -> None:
        if mid == self._status_mid:
            self._status_mid = None
            return
        entry = self._inflight.pop(mid, None)
        if entry is None:
            return
        code = getattr(reason, "value", 0)
        undelivered = code == _NO_MATCHING_SUBSCRIBERS and self._settings.keep_when_no_subscribers
        if reason.is_failure or undelivered:
            delay = (REFUSED if reason.is_failure else UNROUTED).delay(self._refused_streak, self._rng)
            self._refused_streak += 1
            self.stats.envelopes_refused += 1
            self._retries.append(_Retry(self._clock() + delay, entry.first_seq, entry.last_seq, entry.lane))
            log.warning(
                "publish_not_accepted reason=%s readings=%d kept_in_outbox=true retry_in_s=%.0f",
                reason,
                entry.count,
                delay,
            )
            return
        self._refused_streak = 0
        if self._retries:
            # An envelope just got through, so the broker delivers again: waiting envelopes go now, oldest first.
            now = self._clock()
            self._retries = [replace(r, due=min(r.due, now)) for r in self._retries]  # each keeps its lane
        self._acked.append((entry.lane, entry.first_seq, entry.last_seq))
        self.stats.readings_acked += entry.count

    def _on_message(self, _client: mqtt.Client, _ud: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._plan_topic:
            self._on_plan(message.topic, bytes(message.payload), bool(message.retain))
        elif message.topic == self._receipts_topic and self._on_receipt is not None:
            self._on_receipt(bytes(message.payload))

    def _save_plan(self, topic: str, payload: bytes, retained: bool) -> None:
        """Without a plan handler the payload is kept as received."""
        if self._plans.save(topic, payload):
            log.info("plan_received bytes=%d retained=%s", len(payload), retained)
        else:
            log.warning("plan_cleared_on_broker kept_last_plan=true")

    # ---- the loop ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.heartbeat = time.monotonic()
                if self._client.socket() is None:
                    self._connect_or_wait()
                    continue
                self._pump(self._service())
            self._shutdown()
        except Exception:
            log.exception("publisher_crashed")
            raise

    def _connect_or_wait(self) -> None:
        now = self._clock()
        if now < self._next_connect:
            self._wait_for_wake(min(self._next_connect - now, _IDLE_TICK_S))
            return
        try:
            self._client.reconnect()
        except OSError as exc:
            self._schedule_reconnect(f"{type(exc).__name__}: {exc}")

    def _schedule_reconnect(self, why: str) -> None:
        delay = BROKER.delay(self._attempt)
        self._attempt += 1
        self._next_connect = self._clock() + delay
        log.warning(
            "broker_unreachable host=%s port=%d error=%s retry_in_s=%.1f depth=%d",
            self._broker.host,
            self._broker.port,
            why,
            delay,
            self._outbox.depth,
        )

    def _pump(self, timeout: float) -> None:
        """Wait for socket or wake-up events up to `timeout`, then let paho read, write and keep alive."""
        sock = self._client.socket()
        if sock is None:
            return
        wanted_write = [sock] if self._client.want_write() else []
        try:
            readable, _, _ = select.select([sock, self._wake_r], wanted_write, [], max(0.0, timeout))
        except (OSError, ValueError):
            readable = [sock]
        if self._wake_r in readable:
            self._drain_wake()
        if sock in readable or (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            self._client.loop_read()
        if self._client.socket() is not None and self._client.want_write():
            self._client.loop_write()
        if self._client.socket() is not None:
            self._client.loop_misc()
        if self._client.socket() is None and not self._stop.is_set():
            self._connected = False
            self._schedule_reconnect("connection closed")

    def _wait_for_wake(self, timeout: float) -> None:
        readable, _, _ = select.select([self._wake_r], [], [], max(0.0, timeout))
        if readable:
            self._drain_wake()

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass

    def _service(self) -> float:
        """Delete acknowledged rows, publish due status, retries and new rows; returns seconds until next work."""
        if self._acked:
            acked, self._acked = self._acked, []
            was_full = self._outbox.full
            self._ack(acked)
            if was_full and not self._outbox.full:
                self._status_due = 0.0
        now = self._clock()
        if not self._connected:
            return _IDLE_TICK_S
        if self._status_requested.is_set():
            self._status_requested.clear()
            self._status_due = now
        if self._status_due is not None and now >= self._status_due:
            self._publish_status()
            self._status_due = now + self._settings.status_interval_s
        self._send_due_retries(now)
        self._fill_window(now)
        deadlines = [now + _IDLE_TICK_S]
        if self._status_due is not None:
            deadlines.append(self._status_due)
        deadlines.extend(t for t in self._linger_until if t is not None)
        deadlines.extend(r.due for r in self._retries)
        return max(0.0, min(deadlines) - now)

    def _ack(self, acked: list[tuple[int, int, int]]) -> None:
        for index, lane in enumerate(self._lanes):
            spans = [(first, last) for i, first, last in acked if i == index]
            if spans:
                lane.outbox.ack(spans)

    def _fill_window(self, now: float) -> None:
        for index, lane in enumerate(self._lanes):
            self._fill_lane(now, index, lane)

    def _fill_lane(self, now: float, index: int, lane: Lane) -> None:
        settings = self._settings
        limit = min(settings.batch_max_readings, lane.max_rows or settings.batch_max_readings)
        while len(self._inflight) < self._window:
            batch = lane.outbox.fetch(self._cursor[index], limit, settings.batch_max_bytes)
            if not batch.rows:
                self._linger_until[index] = None
                return
            partial = not batch.more and len(batch.rows) < limit
            if partial and self._inflight and settings.batch_linger_ms > 0:
                linger = self._linger_until[index]
                if linger is None:
                    linger = self._linger_until[index] = now + settings.batch_linger_ms / 1000
                if now < linger:
                    return
            self._linger_until[index] = None
            self._send(batch.rows, index)
            self._cursor[index] = batch.rows[-1].seq

    def _send_due_retries(self, now: float) -> None:
        due = [r for r in self._retries if r.due <= now]
        for retry in due:
            if len(self._inflight) >= self._window:
                return
            self._retries.remove(retry)
            rows = self._lanes[retry.lane].outbox.fetch_range(retry.first_seq, retry.last_seq)
            if rows:
                self._send(rows, retry.lane)

    def _send(self, rows: list[OutboxRow], lane: int = 0) -> None:
        target = self._lanes[lane]
        payload = target.wrap(self.gateway_id, [r.body for r in rows], utc_timestamp())
        info = self._client.publish(target.topic, payload, qos=1)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            log.error("publish_failed rc=%s lane=%s rows=%d kept_in_outbox=true", info.rc, target.name, len(rows))
            self._retries.append(_Retry(self._clock() + _RETRY_FIRST_S, rows[0].seq, rows[-1].seq, lane))
            return
        self._inflight[info.mid] = _InFlight(rows[0].seq, rows[-1].seq, len(rows), lane)
        self.stats.envelopes_published += 1
        self.stats.readings_published += len(rows)

    def _publish_status(self) -> None:
        payload = self._status().model_dump_json(exclude_none=True).encode()
        info = self._client.publish(self._status_topic, payload, qos=1, retain=True)
        self._status_mid = info.mid

    def _shutdown(self) -> None:
        """Give in-flight envelopes a moment to be acknowledged, announce `offline` and disconnect cleanly."""
        if self._connected:
            deadline = time.monotonic() + 2.0
            while self._inflight and self._connected and time.monotonic() < deadline:
                self._pump(0.1)
            if self._acked:
                self._ack(self._acked)
                self._acked = []
        if self._connected:
            info = self._client.publish(self._status_topic, OFFLINE_PAYLOAD, qos=1, retain=True)
            self._status_mid = info.mid
            deadline = time.monotonic() + 2.0
            while self._status_mid is not None and self._connected and time.monotonic() < deadline:
                self._pump(0.1)
            self._client.disconnect()
            if self._client.socket() is not None and self._client.want_write():
                self._client.loop_write()
        log.info("publisher_stopped depth=%d", self._outbox.depth)
