"""What the gateway remembers about each paired device between connections and restarts: the last glucose record
sequence number fetched, the model the device reports, the battery level, when it was last seen and how far its
clock was off.

Kept as a small JSON file beside the outbox (`devices.json`), replaced atomically. Losing it is safe: the next
fetch starts from the first stored record and the outbox drops the readings it already holds (stable ids).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_VERSION = 1


@dataclass(slots=True)
class DeviceState:
    last_sequence: int | None = None
    """Highest record sequence number committed to the outbox (glucose meters)."""
    model: str | None = None
    """The device's Model Number String (Device Information Service), once read."""
    battery_percent: int | None = None
    last_seen: datetime | None = None
    last_transfer: datetime | None = None
    clock_offset_s: float | None = None
    """Device clock minus the gateway's local time when last read, before any correction."""
    clock_set_at: datetime | None = None


class DeviceStateStore:
    """Per-address `DeviceState`; `path=None` keeps it in memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._states: dict[str, DeviceState] = {}
        if path is not None and path.exists():
            self._states = _load(path)

    def get(self, address: str) -> DeviceState:
        return self._states.setdefault(address.upper(), DeviceState())

    def save(self) -> None:
        if self.path is None:
            return
        doc = {"version": _VERSION, "devices": {a: _dump(s) for a, s in sorted(self._states.items())}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


def _dump(state: DeviceState) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(state).items()}


def _load(path: Path) -> dict[str, DeviceState]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("version") != _VERSION:
            raise ValueError(f"unknown version {doc.get('version')!r}")
        states: dict[str, DeviceState] = {}
        names = {f.name for f in fields(DeviceState)}
        for address, raw in doc["devices"].items():
            values = {k: v for k, v in raw.items() if k in names}
            for key in ("last_seen", "last_transfer", "clock_set_at"):
                if values.get(key) is not None:
                    values[key] = datetime.fromisoformat(values[key])
            states[address.upper()] = DeviceState(**values)
        return states
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning(
            "device_state_unreadable path=%s error=%s hint=%s",
            path,
            exc,
            "starting afresh: stored records will be fetched again and deduplicated by reading id",
        )
        return {}
