"""Deterministic reading ids: the same measurement always gets the same UUID, so re-sends store once."""

from __future__ import annotations

import uuid

# Fixed namespace of Varde reading ids (a UUIDv5 of the project's name in the URL namespace).
READING_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://varde.example/ns/reading")


def reading_id(
    gateway_id: str,
    device_address: str,
    kind: str,
    device_timestamp: str,
    sequence: int | None = None,
) -> uuid.UUID:
    """UUIDv5 of gateway, device, kind, the device's own timestamp and its sequence number (if any).

    `device_timestamp` is the time as the device reported it (before clock correction), so a record
    fetched again from the device's memory maps to the same id.
    """
    parts = [gateway_id, device_address.upper(), str(kind), device_timestamp]
    if sequence is not None:
        parts.append(f"seq={sequence}")
    return uuid.uuid5(READING_NAMESPACE, "|".join(parts))


def group_id(gateway_id: str, device_address: str, device_timestamp: str, sequence: int | None = None) -> str:
    """Ties the components of one measurement act (e.g. one cuff inflation) together."""
    return reading_id(gateway_id, device_address, "group", device_timestamp, sequence).hex
