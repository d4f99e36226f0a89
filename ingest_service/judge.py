"""Turns one MQTT message into rows to store and rows to dead-letter. Pure apart from the registry lookup."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from store.dead_letters import DeadLetter
from store.gateways import GatewayInfo
from store.readings import ReadingRow
from vitals import EnvelopeError, Reason, parse_topic, scan_envelope
from vitals.envelope import MAX_READINGS_PER_ENVELOPE, load_wire_json


@dataclass(slots=True)
class Judgement:
    gateway_id: str | None
    rows: list[ReadingRow] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    sent_at: datetime | None = None


def _key(topic: str, payload: bytes, index: int | None) -> bytes:
    digest = hashlib.sha256(topic.encode())
    digest.update(b"\0")
    digest.update(payload)
    digest.update(b"\0" + str(index).encode())
    return digest.digest()


def _count_readings(payload: bytes) -> int:
    """How many readings a refused message carried, for the sent = stored + dead-lettered accounting."""
    try:
        doc = load_wire_json(payload)
    except EnvelopeError:
        return 1
    readings = doc.get("readings") if isinstance(doc, dict) else None
    return max(1, len(readings)) if isinstance(readings, list) else 1


def _reading_id(raw: Any) -> UUID | None:
    try:
        return UUID(str(raw.get("id"))) if isinstance(raw, dict) else None
    except ValueError:
        return None


def judge(
    topic: str, gateway_id: str, payload: bytes, received_at: datetime, lookup: Any, now: datetime | None = None
) -> Judgement:
    """Validate a readings message from `gateway_id` (its topic already parsed by the worker's routing);
    `lookup(gateway_id)` returns GatewayInfo or None."""
    info: GatewayInfo | None = lookup(gateway_id)
    if info is None or info.patient_id is None:
        detail = (
            f"gateway {gateway_id!r} is not registered" if info is None else f"gateway {gateway_id!r} has no patient"
        )
        return Judgement(gateway_id, dead=[_whole(topic, gateway_id, Reason.UNKNOWN_GATEWAY, detail, payload)])
    if not info.enabled:
        return Judgement(
            gateway_id,
            dead=[_whole(topic, gateway_id, Reason.DISABLED_GATEWAY, f"gateway {gateway_id!r} is disabled", payload)],
        )
    try:
        parsed = scan_envelope(payload, gateway_id, now=now or received_at)
    except EnvelopeError as exc:
        return Judgement(gateway_id, dead=[_whole(topic, gateway_id, exc.reason, exc.detail, payload)])
    patient_id = info.patient_id
    rows: list[ReadingRow] = [
        ReadingRow(
            r["id"],
            patient_id,
            gateway_id,
            r["kind"],
            r["value"],
            r["measured_at"],
            received_at,
            r["device"]["address"],
            r["device"]["type"],
            r["device"].get("model"),
            r.get("group"),
            r.get("flags", []),
        )
        for r in parsed.readings
    ]
    dead = [
        DeadLetter(
            topic,
            gateway_id,
            rej.reason.value,
            rej.detail,
            rej.index,
            _reading_id(rej.raw),
            1,
            _key(topic, payload, rej.index),
            json.dumps(rej.raw, default=str).encode(),
        )
        for rej in parsed.rejected
    ]
    return Judgement(gateway_id, rows, dead, parsed.sent_at)


def whole_message(topic: str, gateway_id: str | None, reason: Reason, detail: str, payload: bytes) -> DeadLetter:
    """The dead letter for a message refused as a whole (any channel)."""
    return _whole(topic, gateway_id, reason, detail, payload)


def _whole(topic: str, gateway_id: str | None, reason: Reason, detail: str, payload: bytes) -> DeadLetter:
    return DeadLetter(
        topic,
        gateway_id,
        reason.value,
        detail,
        None,
        None,
        _count_readings(payload),
        _key(topic, payload, None),
        payload,
    )


def unprocessable(topic: str, payload: bytes, exc: BaseException) -> DeadLetter:
    """The dead letter for a message whose judging or storing raised: reason `processing_error`, the exception's
    class and text as detail (NUL removed: the detail is text in PostgreSQL)."""
    detail = f"{type(exc).__name__}: {str(exc)[:300]}".replace("\0", "")
    return DeadLetter(
        topic,
        _topic_gateway(topic),
        Reason.PROCESSING_ERROR.value,
        detail,
        None,
        None,
        _estimate_readings(payload),
        _key(topic, payload, None),
        payload,
    )


def poison_letter(topic: str, payload: bytes) -> DeadLetter:
    """The dead letter for a message that killed a worker by itself (`guard.py`); the payload is not parsed again."""
    return DeadLetter(
        topic,
        _topic_gateway(topic),
        Reason.POISON_MESSAGE.value,
        "a worker died processing this message alone, and before that in a batch; it is not processed again",
        None,
        None,
        _estimate_readings(payload),
        _key(topic, payload, None),
        payload,
    )


def _topic_gateway(topic: str) -> str | None:
    try:
        return parse_topic(topic)[0]
    except ValueError:
        return None


def _estimate_readings(payload: bytes) -> int:
    """How many readings a message carried, counted without parsing it (it may be what kills parsers)."""
    return max(1, min(payload.count(b'"kind"'), MAX_READINGS_PER_ENVELOPE))
