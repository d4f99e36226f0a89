"""Messages from the API to home gateways over MQTT: retained plans and receipts, with the API's own broker login.

One client per API process (the routes, the repeat sender and the schedule courier share it), connected on first
use as `varde-api-<replica>` (VARDE_API_REPLICA, else the host name): its own login, bound to that client id.
`publish` waits for the broker's PUBACK (QoS 1) and raises `GatewayUnavailable` when the broker is unreachable or
refuses, so a route can answer 503 and change nothing. Which gateways a receipt goes to is `store.gateways`'.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import Connection

from store import gateways
from store.settings import Settings, default_instance_name, instance_login
from vitals import Receipt, receipts_topic
from vitals.receipt import ReceiptEvent


class GatewayUnavailable(RuntimeError):
    pass


class GatewayPublisher:
    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        self._settings = settings
        self._timeout = timeout
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._acks: dict[int, int] = {}
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._connect_rc: Any = None

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        client = self._ensure_connected()
        info = client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self._drop()
            raise GatewayUnavailable(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        with self._cond:
            if not self._cond.wait_for(lambda: info.mid in self._acks, self._timeout):
                raise GatewayUnavailable(f"no PUBACK from the broker for {topic} within {self._timeout:g} s")
            reason = self._acks.pop(info.mid)
        if reason >= 128:
            raise GatewayUnavailable(f"the broker refused the publish to {topic} (reason code {reason})")

    def close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.loop_stop()
                self._client.disconnect()
                self._client = None
                self._connected.clear()

    def _ensure_connected(self) -> mqtt.Client:
        with self._lock:
            if self._client is not None and self._client.is_connected():
                return self._client
            if self._client is not None:
                self._client.loop_stop()
                self._client = None
            settings = self._settings
            if not settings.mqtt_api_username or not settings.mqtt_api_password:
                raise GatewayUnavailable("the API has no broker login (VARDE_MQTT_API_USERNAME/PASSWORD)")
            # This replica's own login, bound on the broker to this one client id (docs/security.md T7).
            username = instance_login(settings.mqtt_api_username, settings.api_replica or default_instance_name())
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5)
            client.username_pw_set(username, settings.mqtt_api_password)
            if settings.mqtt_tls_ca_file:
                client.tls_set(ca_certs=str(settings.mqtt_tls_ca_file))
            client.on_connect = self._on_connect
            client.on_publish = self._on_publish
            self._connected.clear()
            try:
                client.connect(settings.mqtt_host, settings.mqtt_port)
            except OSError as exc:
                raise GatewayUnavailable(
                    f"cannot reach the broker at {settings.mqtt_host}:{settings.mqtt_port}: {exc}"
                ) from None
            client.loop_start()
            if not self._connected.wait(self._timeout) or self._connect_rc is None or self._connect_rc.is_failure:
                client.loop_stop()
                client.disconnect()
                raise GatewayUnavailable(f"the broker refused the API's login ({self._connect_rc})")
            self._client = client
            return client

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self._connect_rc = rc
        self._connected.set()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with self._cond:
            self._acks[mid] = int(rc.value)
            self._cond.notify_all()


@dataclass(frozen=True, slots=True)
class Delivery:
    gateway_id: str
    patient_id: UUID
    published: bool
    error: str | None = None


def send_receipts(
    conn: Connection[Any],
    publisher: GatewayPublisher,
    patient_ids: Sequence[UUID],
    event: ReceiptEvent,
    nb: str,
    en: str,
) -> list[Delivery]:
    """One receipt to each enabled gateway of the patients (after the change it reports is committed); a gateway
    the broker cannot reach is reported, not raised."""
    if not patient_ids:
        return []
    deliveries: list[Delivery] = []
    for gateway in gateways.enabled_of_patients(conn, patient_ids):
        receipt = Receipt(id=uuid.uuid4(), event=event, at=datetime.now(UTC), nb=nb, en=en)
        try:
            publisher.publish(receipts_topic(gateway.id), receipt.to_json())
            deliveries.append(Delivery(gateway.id, gateway.patient_id, True))
        except GatewayUnavailable as exc:
            deliveries.append(Delivery(gateway.id, gateway.patient_id, False, str(exc)))
    return deliveries
