"""The ingest worker: a persistent MQTT v5 session on the shared subscription, manual acknowledgement after
commit, a bounded in-flight window as back-pressure, and graceful draining on SIGTERM."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest_service import guard, metrics
from ingest_service.guard import message_key
from ingest_service.judge import judge, poison_letter, unprocessable, whole_message
from ingest_service.questionnaires import QuestionnaireRulesHook, judge_questionnaires, write_responses
from ingest_service.registry import GatewayRegistry
from ingest_service.writer import BatchResult, RulesHook, SeenTracker, write_batch
from store.db import open_pool
from store.dead_letters import DeadLetter
from store.gateways import StatusReport, record_statuses
from store.questionnaires import ResponseRow
from store.readings import ReadingRow
from store.service import Service
from store.settings import Settings, get_settings, ingest_worker_id, instance_login
from vitals import INGEST_SHARED_SUBSCRIPTION, EnvelopeError, Reason
from vitals.status import GatewayStatus, parse_status
from vitals.topics import (
    INGEST_QUESTIONNAIRES_SUBSCRIPTION,
    INGEST_SHARE_GROUP,
    STATUS_WILDCARD,
    Channel,
    parse_topic,
)

log = logging.getLogger("varde.ingest")

STATUS_SHARED_SUBSCRIPTION = f"$share/{INGEST_SHARE_GROUP}/{STATUS_WILDCARD}"

_T = TypeVar("_T")
RETRYABLE_DB_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.errors.ReadOnlySqlTransaction,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)
"""The database is away or changing hands (restart, failover to the standby, a node demoted under an open
connection, a lost race): the work is retried on a fresh connection with the messages unacknowledged. Every other
exception is a fault of one message and makes it a dead letter."""


def retry_while_database_away(
    what: str, work: Callable[[], _T], health: metrics.HealthState, sleep: Callable[[float], None] = time.sleep
) -> _T:
    """The one retry for ingest's database work: while the database is away (restart, failover: any of
    `RETRYABLE_DB_ERRORS`) the messages stay unacknowledged and the work is tried again, with a growing pause.
    Any other exception is raised at once."""
    attempt = 0
    while True:
        try:
            result = work()
            health.db_ok = True
            return result
        except RETRYABLE_DB_ERRORS as exc:
            attempt += 1
            health.db_ok = False
            metrics.DB_ERRORS.inc()
            log.warning("db_write_failed stage=%s attempt=%d error=%s", what, attempt, type(exc).__name__)
            sleep(min(5.0, 0.2 * attempt))


@dataclass(frozen=True, slots=True)
class Delivery:
    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: datetime
    generation: int
    dup: bool = False
    """The broker delivered this message before and got no acknowledgement (see `guard.py`)."""


@dataclass(slots=True)
class _Judged:
    """One message's verdict: what to store, what to dead-letter."""

    delivery: Delivery
    channel: str
    rows: list[ReadingRow] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    responses: list[ResponseRow] = field(default_factory=list)
    status: tuple[str, GatewayStatus] | None = None
    sent_at: datetime | None = None


def _sum(results: list[BatchResult]) -> BatchResult:
    return BatchResult(
        sum(r.staged for r in results),
        sum(r.stored for r in results),
        sum(r.dead_lettered_readings for r in results),
        sum(r.dead_letter_rows for r in results),
        sum(r.alarms_changed for r in results),
    )


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
        self._id = config.worker_id
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
        # The worker's own login, bound on the broker to this one client id (docs/security.md T7).
        login = self._settings.mqtt_service_login("ingest", self._config.worker_id)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=login[0] if login else instance_login("varde-ingest", self._config.worker_id),
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=True,
        )
        client.manual_ack_set(True)
        if login:
            client.username_pw_set(*login)
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
            message.mid,
            message.qos,
            message.topic,
            bytes(message.payload),
            datetime.now(UTC),
            self._generation,
            bool(message.dup),
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
        """Judge every message, then store statuses, questionnaire responses and readings. A message whose judging
        or storing fails for any reason but the database being away is dead-lettered on its own; the rest go on."""
        judged = self._retry("judge", lambda: [self._judge(d) for d in batch])
        statuses = [j for j in judged if j.status is not None]
        if statuses:
            self._contained(statuses, self._write_statuses, "status")
        answered = [j for j in judged if j.responses or (j.channel == "questionnaires" and j.dead)]
        if answered:
            self._contained(answered, self._write_questionnaires, "questionnaires")
        readings = [j for j in judged if j.channel == "readings" or (j.channel == "status" and j.dead)]
        started = time.perf_counter()
        results = self._contained(readings, self._write_readings, "readings") if readings else []
        result = _sum(results)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.MESSAGES.inc(len(batch))
        metrics.READINGS_STORED.inc(result.stored)
        metrics.DUPLICATES.inc(result.duplicates)
        for j in judged:
            for letter in j.dead:
                metrics.DEAD_LETTERED.labels(reason=letter.reason).inc()
        newest_sent = max((j.sent_at for j in judged if j.sent_at is not None), default=None)
        if newest_sent is not None:
            metrics.LAG_SECONDS.set((datetime.now(UTC) - newest_sent).total_seconds())
        return result

    def _judge(self, d: Delivery) -> _Judged:
        """One message's verdict, by its topic's channel (`_JUDGES`). A topic that is not a gateway's, or a channel
        ingest does not take, is a dead letter; so is a message whose judging fails for any reason but a database
        outage."""
        try:
            gateway_id, channel = parse_topic(d.topic)
        except ValueError as exc:
            return _Judged(d, "readings", dead=[whole_message(d.topic, None, Reason.BAD_TOPIC, str(exc), d.payload)])
        judge_channel = _JUDGES.get(channel)
        if judge_channel is None:
            detail = f"{channel} messages go to the gateway, not to ingest: {d.topic!r}"
            return _Judged(
                d, "readings", dead=[whole_message(d.topic, gateway_id, Reason.BAD_TOPIC, detail, d.payload)]
            )
        try:
            return judge_channel(self, d, gateway_id)
        except RETRYABLE_DB_ERRORS:
            raise
        except Exception as exc:
            log.error("message_unprocessable stage=judge channel=%s error=%s", channel, type(exc).__name__)
            return _Judged(d, "readings", dead=[unprocessable(d.topic, d.payload, exc)])

    def _judge_readings(self, d: Delivery, gateway_id: str) -> _Judged:
        verdict = judge(d.topic, gateway_id, d.payload, d.received_at, self._registry.lookup)
        return _Judged(d, "readings", rows=verdict.rows, dead=verdict.dead, sent_at=verdict.sent_at)

    def _judge_questionnaires(self, d: Delivery, gateway_id: str) -> _Judged:
        answered = judge_questionnaires(d.topic, gateway_id, d.payload, d.received_at, self._registry.lookup)
        return _Judged(d, "questionnaires", dead=answered.dead, responses=answered.rows)

    def _judge_status(self, d: Delivery, gateway_id: str) -> _Judged:
        try:
            status = parse_status(d.payload)
        except EnvelopeError as exc:
            log.warning("status_refused reason=%s", exc.reason)
            return _Judged(d, "status", dead=[whole_message(d.topic, gateway_id, exc.reason, exc.detail, d.payload)])
        return _Judged(d, "status", status=(gateway_id, status))

    def _contained(
        self, judged: list[_Judged], write: Callable[[psycopg.Connection[Any], list[_Judged]], _T], what: str
    ) -> list[_T]:
        """`write` in one transaction (retried while the database is away). When it fails otherwise, the messages
        are split in halves until the one that fails is alone; that one is dead-lettered, the others are written."""
        try:
            return [self._with_db(what, lambda conn: write(conn, judged))]
        except RETRYABLE_DB_ERRORS:
            raise
        except Exception as exc:
            log.error("batch_failed stage=%s messages=%d error=%s", what, len(judged), type(exc).__name__)
            if len(judged) > 1:
                half = len(judged) // 2
                return self._contained(judged[:half], write, what) + self._contained(judged[half:], write, what)
            self._dead_letter_alone(judged[0].delivery, exc)
            return []

    def _write_readings(self, conn: psycopg.Connection[Any], judged: list[_Judged]) -> BatchResult:
        rows = [r for j in judged for r in j.rows]
        dead = [d for j in judged for d in j.dead]
        self._touch_seen(conn, rows)
        return write_batch(conn, rows, dead, self._rules)

    def _write_questionnaires(self, conn: psycopg.Connection[Any], judged: list[_Judged]) -> None:
        rows = [r for j in judged for r in j.responses]
        dead = [d for j in judged for d in j.dead]
        stored, alarms = write_responses(conn, rows, dead, self._questionnaire_rules)
        log.info("questionnaires_stored responses=%d stored=%d alarms=%d", len(rows), stored, alarms)

    def _write_statuses(self, conn: psycopg.Connection[Any], judged: list[_Judged]) -> None:
        statuses = []
        for j in judged:
            assert j.status is not None
            gateway_id, status = j.status
            batteries = [(d.address, d.battery_percent) for d in status.devices if d.battery_percent is not None]
            statuses.append(
                StatusReport(
                    gateway_id,
                    status.state,
                    status.agent_version,
                    status.outbox_depth,
                    status.model_dump_json(),
                    batteries,
                )
            )
        record_statuses(conn, statuses)

    def _dead_letter_alone(self, delivery: Delivery, exc: Exception) -> None:
        """The last stop of a message that cannot be stored: its raw bytes go to the dead-letter table. If even
        that fails, the worker stops with the message unacknowledged (the crash-loop guard takes it from there)."""
        letter = unprocessable(delivery.topic, delivery.payload, exc)
        metrics.DEAD_LETTERED.labels(reason=letter.reason).inc()
        self._with_db("dead_letter", lambda conn: write_batch(conn, [], [letter]))

    def _retry(self, what: str, work: Callable[[], _T]) -> _T:
        return retry_while_database_away(what, work, self.health)

    def _with_db(self, what: str, work: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        def run() -> _T:
            with self._pool.connection() as conn:
                return work(conn)

        return self._retry(what, run)

    def _touch_seen(self, conn: psycopg.Connection[Any], rows: list[ReadingRow]) -> None:
        """Last-seen bookkeeping in its own short transaction; a conflict with another worker is not worth a retry."""
        try:
            self._seen.touch(conn, rows, time.monotonic())
        except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable) as exc:
            log.info("seen_touch_skipped error=%s", type(exc).__name__)

    # --- the crash-loop guard (ingest_service/guard.py) --------------------------------------------------------

    def _process_guarded(self, batch: list[Delivery]) -> BatchResult:
        """A batch holding redelivered messages: poison is dead-lettered unread, suspects go one by one."""
        keys = {id(d): message_key(d.topic, d.payload) for d in batch if d.dup}
        if not keys:
            return self._process(batch)
        known = self._with_db("guard", lambda conn: guard.marks(conn, list(keys.values())))
        poison = [d for d in batch if known.get(keys.get(id(d), b"")) is True]
        suspects = [d for d in batch if known.get(keys.get(id(d), b"")) is False]
        rest = [d for d in batch if keys.get(id(d)) not in known]
        results: list[BatchResult] = []
        if poison:
            log.error("poison_messages_dead_lettered messages=%d", len(poison))
            letters = [poison_letter(d.topic, d.payload) for d in poison]
            for letter in letters:
                metrics.DEAD_LETTERED.labels(reason=letter.reason).inc()
            # Their marks stay: should the acknowledgement be lost, the next redelivery is recognised at once.
            results.append(self._with_db("dead_letter", lambda conn: write_batch(conn, [], letters)))
        for d in suspects:
            self._mark([keys[id(d)]], solo=True)
            results.append(self._process([d]))
            self._unmark([keys[id(d)]])
        rest_keys = [keys[id(d)] for d in rest if id(d) in keys]
        if rest_keys:
            self._mark(rest_keys, solo=False)
        if rest:
            results.append(self._process(rest))
        if rest_keys:
            self._unmark(rest_keys)
        return _sum(results)

    def _mark(self, keys: list[bytes], *, solo: bool) -> None:
        self._with_db("guard", lambda conn: guard.mark(conn, keys, solo=solo, worker_id=self._id))

    def _unmark(self, keys: list[bytes]) -> None:
        self._with_db("guard", lambda conn: guard.clear(conn, keys))

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
            result = self._process_guarded(batch)
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


_JUDGES: dict[Channel, Callable[[IngestWorker, Delivery, str], _Judged]] = {
    "readings": IngestWorker._judge_readings,
    "questionnaires": IngestWorker._judge_questionnaires,
    "status": IngestWorker._judge_status,
}
"""The channels ingest takes and how each is judged; `plan` and `receipts` go the other way, to the gateway."""


def _default_rules_hook(settings: Settings) -> RulesHook:
    from rules_engine.runtime import rules_hook

    return rules_hook(settings)


def _default_questionnaire_rules() -> QuestionnaireRulesHook:
    from rules_engine.questionnaires import evaluate_responses

    return evaluate_responses


def run_worker(
    metrics_port: int | None = None,
    worker_id: str | None = None,
    drain_only: bool = False,
    batch_readings: int | None = None,
) -> None:
    settings = get_settings()
    service = Service("ingest", settings)
    config = WorkerConfig(worker_id=ingest_worker_id(worker_id))
    if batch_readings:
        config.batch_readings = batch_readings
    worker = IngestWorker(settings, config, _default_rules_hook(settings), _default_questionnaire_rules())
    service.on_stop(worker.stop)
    service.serve_ops(metrics_port, broker=lambda: worker.health.mqtt_connected)
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
