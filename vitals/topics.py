"""MQTT topic names of the wire contract and their parser."""

from __future__ import annotations

import re
from typing import Literal

PREFIX = "varde/v1/gw"
INGEST_SHARE_GROUP = "ingest"
READINGS_WILDCARD = f"{PREFIX}/+/readings"
INGEST_SHARED_SUBSCRIPTION = f"$share/{INGEST_SHARE_GROUP}/{READINGS_WILDCARD}"
STATUS_WILDCARD = f"{PREFIX}/+/status"
QUESTIONNAIRES_WILDCARD = f"{PREFIX}/+/questionnaires"
INGEST_QUESTIONNAIRES_SUBSCRIPTION = f"$share/{INGEST_SHARE_GROUP}/{QUESTIONNAIRES_WILDCARD}"

Channel = Literal["readings", "status", "plan", "receipts", "questionnaires"]
_CHANNELS: frozenset[str] = frozenset({"readings", "status", "plan", "receipts", "questionnaires"})

GATEWAY_ID_PATTERN = re.compile(r"^gw-[a-z0-9][a-z0-9-]{1,60}$")


def validate_gateway_id(gateway_id: str) -> str:
    if not GATEWAY_ID_PATTERN.fullmatch(gateway_id):
        raise ValueError(f"invalid gateway id {gateway_id!r}: expected 'gw-' followed by lower-case letters/digits")
    return gateway_id


def gateway_topic(gateway_id: str, channel: Channel) -> str:
    return f"{PREFIX}/{validate_gateway_id(gateway_id)}/{channel}"


def readings_topic(gateway_id: str) -> str:
    return gateway_topic(gateway_id, "readings")


def status_topic(gateway_id: str) -> str:
    return gateway_topic(gateway_id, "status")


def plan_topic(gateway_id: str) -> str:
    return gateway_topic(gateway_id, "plan")


def receipts_topic(gateway_id: str) -> str:
    return gateway_topic(gateway_id, "receipts")


def questionnaires_topic(gateway_id: str) -> str:
    return gateway_topic(gateway_id, "questionnaires")


def parse_topic(topic: str) -> tuple[str, Channel]:
    """Split `varde/v1/gw/{gateway_id}/{channel}`; raises ValueError for anything else."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:3]) != PREFIX or parts[4] not in _CHANNELS:
        raise ValueError(f"not a Varde gateway topic: {topic!r}")
    channel: Channel = parts[4]  # type: ignore[assignment]
    return validate_gateway_id(parts[3]), channel
