"""What decoders return: one `Measurement` per measured quantity, in the canonical unit of its `vitals.Kind`.

Per-characteristic records (in each family's module) carry the measurements plus what the characteristic adds
beside them (user id, status, context) and the `skipped` fields the device sent as special values.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from vitals import KINDS, Kind

FLAG_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

_log = logging.getLogger("edge_agent.gatt")

Payload = bytes | bytearray | memoryview
"""What a decoder accepts: bleak hands notifications over as bytearray."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measured value in the canonical unit of its kind, as the device reported it."""

    kind: Kind
    value: float
    unit: str
    device_time: datetime | None
    """Naive, as the device's clock gave it; None when the device sent no time or an invalid one."""
    flags: tuple[str, ...] = ()
    sequence: int | None = None

    def __post_init__(self) -> None:
        if self.unit != KINDS[self.kind].unit:
            raise ValueError(f"{self.kind} must be in {KINDS[self.kind].unit!r}, not {self.unit!r}")
        for flag in self.flags:
            if not FLAG_PATTERN.match(flag):
                raise ValueError(f"flag {flag!r} is not lower_snake_case of at most 40 characters")


def measurement(
    kind: Kind,
    value: float,
    device_time: datetime | None,
    flags: tuple[str, ...] = (),
    sequence: int | None = None,
) -> Measurement:
    """A Measurement in its kind's canonical unit (the unit is looked up, never typed twice)."""
    return Measurement(kind, value, KINDS[kind].unit, device_time, flags, sequence)


@dataclass(frozen=True, slots=True)
class Skip:
    """A field the device sent without a usable number, and why (a Special's value or a status reason)."""

    field: str
    reason: str


@runtime_checkable
class MeasurementRecord(Protocol):
    """Any decoded characteristic that carries measurements."""

    @property
    def measurements(self) -> tuple[Measurement, ...]: ...

    @property
    def skipped(self) -> tuple[Skip, ...]: ...


def skip(characteristic: str, field: str, reason: str) -> Skip:
    """Record (and log, with structured fields) that a field yields no value."""
    _log.info(
        "gatt.value_skipped",
        extra={"event": "gatt.value_skipped", "characteristic": characteristic, "field": field, "reason": reason},
    )
    return Skip(field, reason)
