"""Retry delays chosen by the class of the failure, with jitter so a fleet of gateways does not retry in step.

A device that is simply not advertising is retried soon (it wakes when the patient measures); an adapter that is
gone or a missing bond needs a person, so those wait much longer.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from edge_agent.link import (
    AdapterUnavailableError,
    BondingRequiredError,
    ConnectionDroppedError,
    ConnectTimeoutError,
    DeviceNotFoundError,
    GattOperationError,
    OutOfConnectionSlotsError,
)


@dataclass(frozen=True, slots=True)
class Schedule:
    first_s: float
    max_s: float
    factor: float = 2.0
    jitter: float = 0.2
    """Fraction of the delay added or removed at random."""

    @property
    def _exponent_cap(self) -> int:
        """The first exponent at which the delay reaches `max_s`; larger ones change nothing."""
        if self.factor <= 1.0 or self.first_s <= 0.0 or self.first_s >= self.max_s:
            return 0
        return math.ceil(math.log(self.max_s / self.first_s, self.factor))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number `attempt` (0 = first retry); any attempt number, however large, gives at most
        `max_s` plus jitter (the exponent is capped before it is raised, so it cannot overflow)."""
        base = min(self.max_s, self.first_s * self.factor ** min(max(attempt, 0), self._exponent_cap))
        spread = base * self.jitter
        return max(0.0, base + (rng or random).uniform(-spread, spread))


BROKER = Schedule(first_s=1.0, max_s=60.0)
"""Reconnecting to the MQTT broker."""

_BY_ERROR: tuple[tuple[type[BaseException], Schedule], ...] = (
    (BondingRequiredError, Schedule(first_s=300.0, max_s=3600.0)),
    (AdapterUnavailableError, Schedule(first_s=10.0, max_s=300.0)),
    (OutOfConnectionSlotsError, Schedule(first_s=5.0, max_s=120.0)),
    (DeviceNotFoundError, Schedule(first_s=5.0, max_s=60.0, factor=1.5)),
    (ConnectTimeoutError, Schedule(first_s=2.0, max_s=60.0)),
    (ConnectionDroppedError, Schedule(first_s=1.0, max_s=30.0)),
    (GattOperationError, Schedule(first_s=30.0, max_s=600.0)),
)
_DEFAULT = Schedule(first_s=2.0, max_s=120.0)


def schedule_for(error: BaseException) -> Schedule:
    for cls, schedule in _BY_ERROR:
        if isinstance(error, cls):
            return schedule
    return _DEFAULT


def delay_for(error: BaseException, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retrying after `error`, on consecutive failure number `attempt` (0-based)."""
    return schedule_for(error).delay(attempt, rng)
