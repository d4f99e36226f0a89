"""Helpers to run a real edge `Agent` in a thread of the test process and talk to its patient page over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from playwright.sync_api import Browser, Page, expect

from edge_agent.agent import Agent
from edge_agent.config import EdgeConfig
from vitals import KINDS, DeviceRef, Kind, Reading

SCALE = DeviceRef(address="A4:C1:38:00:00:21", type="weight_scale", model="UC-352BLE")


def gateway_config(
    tmp_path: Path, host: str, port: int, gateway_id: str = "gw-test-0001", password: str | None = None
) -> EdgeConfig:
    broker: dict[str, Any] = {"host": host, "port": port, "keepalive_s": 5}
    if password is not None:
        broker["password"] = password
    return EdgeConfig.model_validate(
        {
            "gateway_id": gateway_id,
            "patient_timezone": "Europe/Oslo",
            "broker": broker,
            "outbox": {"path": str(tmp_path / "gateway" / "outbox.sqlite")},
            "publisher": {"batch_linger_ms": 20, "status_interval_s": 1},
            "ble": {"enabled": False},
            "patient_screen": {"port": 0, "language": "nb"},
        }
    )


def reading(kind: Kind, value: float, *, measured_at: datetime | None = None, group: str | None = None) -> Reading:
    return Reading(
        id=uuid.uuid4(),
        kind=kind,
        value=value,
        unit=KINDS[kind].unit,
        measured_at=measured_at or datetime.now(UTC).replace(microsecond=0),
        device=SCALE,
        group=group,
    )


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition", interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class RunningAgent:
    """`Agent.run` on its own event loop in a thread; the test thread calls `accept` like a device handler."""

    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        self.agent = Agent(config, radio_factory=None)
        self._thread = threading.Thread(target=lambda: asyncio.run(self.agent.run()), daemon=True)

    def __enter__(self) -> RunningAgent:
        self._thread.start()
        wait_for(lambda: self.agent.screen_server is not None, what="the patient page to listen")
        return self

    def __exit__(self, *exc: object) -> None:
        self.agent.request_stop()
        self._thread.join(20)
        assert not self._thread.is_alive(), "the agent did not stop"

    @property
    def url(self) -> str:
        assert self.agent.screen_server is not None
        return self.agent.screen_server.url

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "api/state", timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def answer(self, questionnaire: str, answers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        return request(self.url + f"api/questionnaires/{questionnaire}", {"answers": answers})


def request(
    url: str, doc: Any = None, headers: dict[str, str] | None = None, method: str | None = None
) -> tuple[int, dict[str, Any]]:
    data = json.dumps(doc).encode() if doc is not None else None
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=data, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def publish(port: int, topic: str, payload: bytes, *, retain: bool = False, host: str = "127.0.0.1") -> None:
    """Publish one QoS 1 message as an anonymous client of the private broker (the cloud's stand-in)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"cloud-{uuid.uuid4().hex[:6]}", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.connect(host, port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


class Subscriber:
    """Collects messages of some topics (the ingest stand-in), with a persistent session."""

    def __init__(self, port: int, topics: list[str], client_id: str = "test-cloud") -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5)
        client.on_connect = lambda c, *_a: c.subscribe([(t, 1) for t in topics])
        client.on_subscribe = lambda *_a: subscribed.set()
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=1)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        client.connect("127.0.0.1", port, keepalive=10, clean_start=False, properties=props)
        client.loop_start()
        self.client = client
        assert subscribed.wait(10), "subscriber did not subscribe"

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def on(self, topic: str) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(p) for t, p in self.messages if t == topic]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@contextlib.contextmanager
def open_page(browser: Browser, url: str) -> Iterator[Page]:
    """The patient page in a fresh browser context that may reach nothing but the gateway."""
    context = browser.new_context(locale="nb-NO")
    page = context.new_page()
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url) else route.abort())
    try:
        page.goto(url)
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        yield page
    finally:
        context.close()


def tab_to(page: Page, selector: str, limit: int = 60) -> None:
    """Press Tab until the focused element matches `selector` (keyboard only, as a patient would)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")
