"""The ingest worker: a persistent MQTT v5 session on the shared subscription, manual acknowledgement after
commit, a bounded in-flight window as back-pressure, and graceful draining on SIGTERM."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest_service import metrics
from ingest_service.judge import DeadLetter, ReadingRow, judge
from ingest_service.questionnaires import QuestionnaireRulesHook, ResponseRow, judge_questionnaires, write_responses
from ingest_service.registry import GatewayRegistry
from ingest_service.writer import BatchResult, RulesHook, SeenTracker, write_batch
from store.db import open_pool
from store.observability import DatabaseCheck, serve_ops
from store.settings import Settings, get_settings
from vitals import INGEST_SHARED_SUBSCRIPTION
from vitals.logs import setup_logging
from vitals.status import GatewayStatus
from vitals.topics import INGEST_QUESTIONNAIRES_SUBSCRIPTION, INGEST_SHARE_GROUP, STATUS_WILDCARD, parse_topic

log = logging.getLogger("varde.ingest")

STATUS_SHARED_SUBSCRIPTION = f"$share/{INGEST_SHARE_GROUP}/{STATUS_WILDCARD}"

# The database is away or changing hands (restart, failover to the standby, a node demoted under an open
# connection): retry the same batch on a fresh connection; its messages stay unacknowledged meanwhile.
RETRYABLE_DB_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.errors.ReadOnlySqlTransaction,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)


@dataclass(frozen=True, slots=True)
class Delivery:
    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: datetime
    generation: int


@dataclass
class WorkerConfig:
    worker_id: str
    batch_readings: int = 2500
    batch_seconds: float = 0.05
    receive_maximum: int = 1000
    max_held_messages: int = 1000
    session_expiry: int = 24 * 3600


class IngestWorker:
    def __init__(
        self,
        settings: Settings,
        config: WorkerConfig,
        rules: RulesHook | None,
        questionnaire_rules: QuestionnaireRulesHook | None = None,
    ) -> None:
        self._settings = settings
        self._config = config
        self._rules = rules
        self._questionnaire_rules = questionnaire_rules
        self._pool = open_pool(settings, min_size=1, max_size=2, name=f"ingest-{config.worker_id}")
        self._registry = GatewayRegistry(self._pool, database_url=settings.require_database_url())
        self._queue: deque[Delivery] = deque()
        self._cond = threading.Condition()
        self._generation = 0
        self._stopping = threading.Event()
        self._stored_total = 0
        self._seen = SeenTracker()
        self._last_progress_log = time.monotonic()
        self.health = metrics.HealthState()
        self._client = self._make_client()

    # --- MQTT -------------------------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"varde-ingest-{self._config.worker_id}",
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=True,
        )
        client.manual_ack_set(True)
        if self._settings.mqtt_ingest_username:
            client.username_pw_set(self._settings.mqtt_ingest_username, self._settings.mqtt_ingest_password)
        if self._settings.mqtt_tls_ca_file:
            client.tls_set(ca_certs=str(self._settings.mqtt_tls_ca_file))
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("mqtt_subscribe_refused reasons=%s", ",".join(refused))
        else:
            log.info("mqtt_subscribed granted=%s", ",".join(str(r.value) for r in reasons))

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            log.error("mqtt_connect_refused reason=%s", rc)
            return
        with self._cond:
            self._generation += 1
            # Messages of an earlier connection are redelivered by the broker; holding them would ack twice.
            dropped = len(self._queue)
            self._queue.clear()
        self.health.mqtt_connected = True
        client.subscribe(
            [(INGEST_SHARED_SUBSCRIPTION, 1), (INGEST_QUESTIONNAIRES_SUBSCRIPTION, 1), (STATUS_SHARED_SUBSCRIPTION, 1)]
        )
        log.info("mqtt_connected session_present=%s held_messages_dropped=%d", flags.session_present, dropped)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.health.mqtt_connected = False
        log.warning("mqtt_disconnected reason=%s", rc)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        delivery = Delivery(
            message.mid, message.qos, message.topic, bytes(message.payload), datetime.now(UTC), self._generation
        )
        with self._cond:
            self._queue.append(delivery)
            metrics.PENDING.set(len(self._queue))
            self._cond.notify_all()
            # Back-pressure of our own: Mosquitto 2.0.11 sends past the Receive Maximum once acknowledgements flow,
            # so the network thread stops reading (and the broker queues) while this many messages wait here.
            while len(self._queue) >= self._config.max_held_messages and not self._stopping.is_set():
                self._cond.wait(timeout=0.5)

    def _ack(self, deliveries: list[Delivery]) -> None:
        stale = 0
        for d in deliveries:
            if d.qos > 0 and d.generation == self._generation:
                self._client.ack(d.mid, d.qos)
            elif d.qos > 0:
                stale += 1
        if stale:
            log.info("ack_skipped_after_reconnect messages=%d", stale)

    # --- batching ---------------------------------------------------------------------------------------------

    def _take_batch(self) -> list[Delivery]:
        deadline = time.monotonic() + self._config.batch_seconds
        batch: list[Delivery] = []
        readings_estimate = 0
        with self._cond:
            while not self._stopping.is_set() or self._queue:
                while self._queue and readings_estimate < self._config.batch_readings:
                    d = self._queue.popleft()
                    batch.append(d)
                    readings_estimate += max(1, d.payload.count(b'"kind"'))
                if batch:
                    self._cond.notify_all()
                if readings_estimate >= self._config.batch_readings:
                    break
                remaining = deadline - time.monotonic()
                if batch and remaining <= 0:
                    break
                if self._stopping.is_set():
                    break
                self._cond.wait(timeout=remaining if batch else 0.5)
            metrics.PENDING.set(len(self._queue))
        return batch

    def _process(self, batch: list[Delivery]) -> BatchResult:
        rows: list[ReadingRow] = []
        dead: list[DeadLetter] = []
        newest_sent: datetime | None = None
        responses: list[ResponseRow] = []
        refused: list[DeadLetter] = []
        for d in batch:
            if d.topic.endswith("/status"):
                self._record_status(d)
                continue
            if d.topic.endswith("/questionnaires"):
                answered = judge_questionnaires(d.topic, d.payload, d.received_at, self._registry.lookup)
                responses.extend(answered.rows)
                refused.extend(answered.dead)
                continue
            verdict = judge(d.topic, d.payload, d.received_at, self._registry.lookup)
            rows.extend(verdict.rows)
            dead.extend(verdict.dead)
            if verdict.sent_at and (newest_sent is None or verdict.sent_at > newest_sent):
                newest_sent = verdict.sent_at
        if responses or refused:
            self._store_questionnaires(responses, refused)
        started = time.perf_counter()
        try:
            result = self._write_with_retry(rows, dead)
        except Exception as exc:  # a fault of the data, not of the database: isolate it
            log.error("batch_failed messages=%d error=%s", len(batch), type(exc).__name__)
            if len(batch) > 1:
                half = len(batch) // 2
                first, second = self._process(batch[:half]), self._process(batch[half:])
                return BatchResult(
                    first.staged + second.staged,
                    first.stored + second.stored,
                    first.dead_lettered_readings + second.dead_lettered_readings,
                    first.dead_letter_rows + second.dead_letter_rows,
                    first.alarms_changed + second.alarms_changed,
                )
            return self._dead_letter_unprocessable(batch[0], exc)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.MESSAGES.inc(len(batch))
        metrics.READINGS_STORED.inc(result.stored)
        metrics.DUPLICATES.inc(result.duplicates)
        for letter in dead:
            metrics.DEAD_LETTERED.labels(reason=letter.reason).inc()
        if newest_sent is not None:
            metrics.LAG_SECONDS.set((datetime.now(UTC) - newest_sent).total_seconds())
        return result

    def _write_with_retry(self, rows: list[ReadingRow], dead: list[DeadLetter], with_rules: bool = True) -> BatchResult:
        """Retry while the database is away (restart, failover); the messages stay unacknowledged meanwhile."""
        attempt = 0
        while True:
            try:
                with self._pool.connection() as conn:
                    self._touch_seen(conn, rows)
                    result = write_batch(conn, rows, dead, self._rules if with_rules else None)
                self.health.db_ok = True
                return result
            except RETRYABLE_DB_ERRORS as exc:
                attempt += 1
                self.health.db_ok = False
                metrics.DB_ERRORS.inc()
                log.warning("batch_write_failed attempt=%d error=%s", attempt, type(exc).__name__)
                time.sleep(min(5.0, 0.2 * attempt))

    def _touch_seen(self, conn: psycopg.Connection[Any], rows: list[ReadingRow]) -> None:
        """Last-seen bookkeeping in its own short transaction; a conflict with another worker is not worth a retry."""
        try:
            self._seen.touch(conn, rows, time.monotonic())
        except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable) as exc:
            log.info("seen_touch_skipped error=%s", type(exc).__name__)

    def _store_questionnaires(self, rows: list[ResponseRow], dead: list[DeadLetter]) -> None:
        """Like readings: retried while the database is away, so the messages stay unacknowledged meanwhile."""
        attempt = 0
        while True:
            try:
                with self._pool.connection() as conn:
                    stored, alarms = write_responses(conn, rows, dead, self._questionnaire_rules)
                self.health.db_ok = True
                log.info("questionnaires_stored responses=%d stored=%d alarms=%d", len(rows), stored, alarms)
                return
            except RETRYABLE_DB_ERRORS as exc:
                attempt += 1
                self.health.db_ok = False
                metrics.DB_ERRORS.inc()
                log.warning("questionnaire_write_failed attempt=%d error=%s", attempt, type(exc).__name__)
                time.sleep(min(5.0, 0.2 * attempt))

    def _dead_letter_unprocessable(self, delivery: Delivery, exc: Exception) -> BatchResult:
        """A message that fails for a reason other than the database goes whole to the dead-letter table."""
        verdict = judge(delivery.topic, delivery.payload, delivery.received_at, self._registry.lookup)
        letter = DeadLetter(
            delivery.topic,
            verdict.gateway_id,
            "processing_error",
            f"{type(exc).__name__}: {str(exc)[:300]}",
            None,
            None,
            max(1, len(verdict.rows) + sum(d.reading_count for d in verdict.dead)),
            hashlib.sha256(delivery.topic.encode() + b"\0" + delivery.payload).digest(),
            delivery.payload,
        )
        metrics.DEAD_LETTERED.labels(reason="processing_error").inc()
        return self._write_with_retry([], [letter], with_rules=False)

    def _record_status(self, delivery: Delivery) -> None:
        try:
            gateway_id, _ = parse_topic(delivery.topic)
            status = GatewayStatus.model_validate_json(delivery.payload)
        except ValueError as exc:
            log.warning("status_refused error=%s", str(exc).splitlines()[0])
            return
        attempt = 0
        while True:
            try:
                self._store_status(gateway_id, status)
                return
            except RETRYABLE_DB_ERRORS as exc:
                attempt += 1
                metrics.DB_ERRORS.inc()
                log.warning("status_write_failed attempt=%d error=%s", attempt, type(exc).__name__)
                time.sleep(min(5.0, 0.2 * attempt))

    def _store_status(self, gateway_id: str, status: GatewayStatus) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE gateways SET state = %s, agent_version = COALESCE(%s, agent_version), "
                "outbox_depth = COALESCE(%s, outbox_depth), status = %s, last_seen_at = now() WHERE id = %s",
                (status.state, status.agent_version, status.outbox_depth, status.model_dump_json(), gateway_id),
            )
            for device in status.devices:
                if device.battery_percent is not None:
                    conn.execute(
                        "UPDATE devices SET battery_percent = %s WHERE gateway_id = %s AND address = %s",
                        (device.battery_percent, gateway_id, device.address),
                    )

    # --- lifecycle --------------------------------------------------------------------------------------------

    def run(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._config.session_expiry
        props.ReceiveMaximum = self._config.receive_maximum
        self._client.connect_async(
            self._settings.mqtt_host, self._settings.mqtt_port, keepalive=30, clean_start=False, properties=props
        )
        self._client.loop_start()
        log.info("ingest_started worker=%s", self._config.worker_id)
        drained = False
        try:
            while not self._stopping.is_set():
                self._handle(self._take_batch())
            drained = self._drain()
        finally:
            self._disconnect(end_session=drained)
            self._client.loop_stop()
            self._registry.close()
            self._pool.close()
            log.info("ingest_stopped worker=%s session_ended=%s", self._config.worker_id, drained)

    def _handle(self, batch: list[Delivery]) -> None:
        if batch:
            result = self._process(batch)
            self._ack(batch)
            self._stored_total += result.stored
        now = time.monotonic()
        if now - self._last_progress_log >= 10.0:
            self._last_progress_log = now
            log.info("ingest_progress held_messages=%d stored_total=%d", len(self._queue), self._stored_total)

    def _drain(self, quiet_seconds: float = 1.0, limit_seconds: float = 60.0) -> bool:
        """Leave the share group, then commit and acknowledge everything already delivered.

        A persistent session left behind keeps receiving its share of the stream while nobody reads it, so a
        worker that stops on purpose ends its session; one that crashes keeps it and resumes it when restarted
        under the same worker id.
        """
        if not self.health.mqtt_connected:
            return False
        unsubscribed = threading.Event()
        self._client.on_unsubscribe = lambda *args: unsubscribed.set()
        self._client.unsubscribe(
            [INGEST_SHARED_SUBSCRIPTION, INGEST_QUESTIONNAIRES_SUBSCRIPTION, STATUS_SHARED_SUBSCRIPTION]
        )
        if not unsubscribed.wait(5.0):
            return False
        deadline = time.monotonic() + limit_seconds
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = self._take_batch()
            if batch:
                self._handle(batch)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > quiet_seconds:
                return self.health.mqtt_connected
            else:
                time.sleep(0.05)
        return False

    def _disconnect(self, end_session: bool) -> None:
        if end_session:
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
            self._client.disconnect(properties=props)
        else:
            self._client.disconnect()

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()


def _default_rules_hook() -> RulesHook:
    from rules_engine.runtime import evaluate_stored

    return evaluate_stored


def _default_questionnaire_rules() -> QuestionnaireRulesHook:
    from rules_engine.questionnaires import evaluate_responses

    return evaluate_responses


def run_worker(
    metrics_port: int | None = None,
    worker_id: str | None = None,
    drain_only: bool = False,
    batch_readings: int | None = None,
) -> None:
    setup_logging()
    settings = get_settings()
    config = WorkerConfig(worker_id=worker_id or os.environ.get("VARDE_INGEST_WORKER_ID") or socket.gethostname())
    if batch_readings:
        config.batch_readings = batch_readings
    worker = IngestWorker(settings, config, _default_rules_hook(), _default_questionnaire_rules())
    serve_ops(
        settings.metrics_port if metrics_port is None else metrics_port,
        {"database": DatabaseCheck(settings.require_database_url()), "broker": lambda: worker.health.mqtt_connected},
        service="ingest",
        host=settings.metrics_host,
    )
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    if drain_only:
        # Take over a retired worker's session: store what it still holds, then end the session for good.
        def stop_when_caught_up() -> None:
            deadline = time.monotonic() + 30
            while not worker.health.mqtt_connected and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(2.0)
            worker.stop()

        threading.Thread(target=stop_when_caught_up, daemon=True).start()
    worker.run()
