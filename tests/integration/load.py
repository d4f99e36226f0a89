"""A bounded-window MQTT load of real envelopes from several gateways, for the ingest fault tests.

Every reading id is remembered when published and again when its envelope is PUBACKed, so a test can check
acknowledged ⊆ stored and stored ⊆ published after any fault."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt

from tests.stack_plugin import Gateway
from vitals import DeviceRef, Envelope, Reading, readings_topic

_NO_MATCHING_SUBSCRIBERS = 0x10
_DEVICE = DeviceRef(address="A4:C1:38:00:00:01", type="pulse_oximeter", model="PO-60")


@dataclass
class LoadCounts:
    published: set[uuid.UUID] = field(default_factory=set)
    acked: set[uuid.UUID] = field(default_factory=set)
    refused: int = 0
    unrouted: int = 0
    """Envelopes answered 0x10 "no matching subscribers": the broker dropped them (e.g. while ingest re-subscribes
    after a broker restart), so, like the edge publisher, the load does not count them as delivered."""
    envelopes: int = 0


class GatewayLoad(threading.Thread):
    def __init__(
        self,
        gateway: Gateway,
        per_envelope: int,
        envelopes_per_s: float,
        counts: LoadCounts,
        lock: threading.Lock,
        window: int = 20,
        stop: threading.Event | None = None,
        envelope_log: list[bytes] | None = None,
    ) -> None:
        super().__init__(daemon=True, name=f"load-{gateway.gateway_id}")
        self._gateway = gateway
        self._per_envelope = per_envelope
        self._interval = 1.0 / envelopes_per_s
        self._counts = counts
        self._lock = lock
        self._window = threading.BoundedSemaphore(window)
        self._pending: dict[int, list[uuid.UUID]] = {}
        self._early: dict[int, Any] = {}
        self._mid_lock = threading.Lock()
        self._connected = threading.Event()
        self.stop_event = stop or threading.Event()
        self._log = envelope_log
        self._client = gateway.client()
        self._client.on_connect = lambda c, u, f, rc, p: self._connected.set() if not rc.is_failure else None
        self._client.on_disconnect = lambda c, u, f, rc, p: self._connected.clear()
        self._client.on_publish = self._on_publish
        self._client.reconnect_delay_set(0.2, 1.0)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with self._mid_lock:
            ids = self._pending.pop(mid, None)
            if ids is None:
                # The PUBACK beat `publish()` back to the sending thread: settled there.
                self._early[mid] = rc
                return
        self._settle(ids, rc)

    def _settle(self, ids: list[uuid.UUID], rc: Any) -> None:
        self._window.release()
        with self._lock:
            if rc.is_failure:
                self._counts.refused += 1
            elif rc.value == _NO_MATCHING_SUBSCRIBERS:
                self._counts.unrouted += 1
            else:
                self._counts.acked.update(ids)

    def run(self) -> None:
        self._client.connect_async(self._gateway.host, self._gateway.port, keepalive=10)
        self._client.loop_start()
        next_at = time.monotonic()
        try:
            while not self.stop_event.is_set():
                if not self._connected.wait(0.2):
                    continue
                if not self._window.acquire(timeout=0.2):
                    continue
                now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
                readings = tuple(
                    Reading(
                        id=uuid.uuid4(), kind="spo2", value=float(90 + i % 9), unit="%", measured_at=now, device=_DEVICE
                    )
                    for i in range(self._per_envelope)
                )
                payload = Envelope(
                    gateway_id=self._gateway.gateway_id, sent_at=datetime.now(UTC), readings=readings
                ).to_json()
                ids = [r.id for r in readings]
                # Never hold `_mid_lock` across `publish()`: paho calls on_publish holding its own message lock,
                # which `publish()` takes too, so holding ours here deadlocked both threads (a lost PUBACK and a
                # 40 s join in every fault test that hit it).
                with self._lock:
                    self._counts.published.update(ids)
                    self._counts.envelopes += 1
                info = self._client.publish(readings_topic(self._gateway.gateway_id), payload, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    # Not queued for a connection that just dropped: not published after all, retried.
                    with self._lock:
                        self._counts.published.difference_update(ids)
                        self._counts.envelopes -= 1
                    self._window.release()
                    continue
                with self._mid_lock:
                    early = self._early.pop(info.mid, None)
                    if early is None:
                        self._pending[info.mid] = ids
                if early is not None:
                    self._settle(ids, early)
                if self._log is not None:
                    self._log.append(payload)
                next_at += self._interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    next_at = time.monotonic()
        finally:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with self._mid_lock:
                    if not self._pending:
                        break
                time.sleep(0.05)
            self._client.disconnect()
            self._client.loop_stop()


class Load:
    """Several gateways publishing at once; use as a context manager around the fault."""

    def __init__(
        self,
        gateways: Sequence[Gateway],
        per_envelope: int = 20,
        envelopes_per_s: float = 50,
        keep_envelopes: bool = False,
    ) -> None:
        self.counts = LoadCounts()
        self.envelopes: list[bytes] = []
        lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            GatewayLoad(
                g,
                per_envelope,
                envelopes_per_s,
                self.counts,
                lock,
                stop=self._stop,
                envelope_log=self.envelopes if keep_envelopes else None,
            )
            for g in gateways
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=40)
