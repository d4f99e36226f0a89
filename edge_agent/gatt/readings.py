"""Turn decoded measurements into `vitals.Reading`s: stable ids, one group per measurement act, corrected time.

Pure: the caller passes the gateway id, the device, when the bytes arrived and how far the device clock is off.
A measurement `vitals.Reading` refuses (implausible value, wrong unit) comes back in `rejected` with the reason,
never dropped in silence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from edge_agent.gatt.models import Measurement
from vitals import DeviceRef, Reading, group_id, reading_id

TIME_FROM_GATEWAY = "time_from_gateway"
"""Flag on a reading whose device sent no valid time, so `measured_at` is when the gateway received it."""


@dataclass(frozen=True, slots=True)
class RejectedMeasurement:
    measurement: Measurement
    reason: str


@dataclass(frozen=True, slots=True)
class ReadingsBatch:
    readings: tuple[Reading, ...]
    rejected: tuple[RejectedMeasurement, ...]


def to_readings(
    measurements: Iterable[Measurement],
    *,
    gateway_id: str,
    device: DeviceRef,
    received_at: datetime,
    clock_correction: timedelta | None = None,
    extra_flags: tuple[str, ...] = (),
) -> ReadingsBatch:
    """Readings of one measurement act (one notification or stored record), sharing one group id.

    `clock_correction` is what to add to the device's naive wall time to get UTC (gateway UTC now minus the device's
    current time, read together), so it absorbs both clock drift and the patient's time zone; None means the device
    clock already runs in UTC. Ids hash the device's own time, so a record fetched again maps to the same id.
    """
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    readings: list[Reading] = []
    rejected: list[RejectedMeasurement] = []
    items = list(measurements)
    if not items:
        return ReadingsBatch((), ())
    first = items[0]
    group_stamp = _device_stamp(first, received_at)
    group = group_id(gateway_id, device.address, group_stamp, first.sequence)
    for item in items:
        stamp = _device_stamp(item, received_at)
        if item.device_time is None:
            measured_at = received_at.astimezone(UTC)
            flags = (*item.flags, TIME_FROM_GATEWAY, *extra_flags)
        else:
            measured_at = (item.device_time + (clock_correction or timedelta())).replace(tzinfo=UTC)
            flags = (*item.flags, *extra_flags)
        try:
            readings.append(
                Reading(
                    id=reading_id(gateway_id, device.address, item.kind, stamp, item.sequence),
                    kind=item.kind,
                    value=item.value,
                    unit=item.unit,
                    measured_at=measured_at,
                    device=device,
                    group=group,
                    flags=tuple(dict.fromkeys(flags)),
                )
            )
        except ValidationError as exc:
            rejected.append(RejectedMeasurement(item, _first_error(exc)))
    return ReadingsBatch(tuple(readings), tuple(rejected))


def _device_stamp(item: Measurement, received_at: datetime) -> str:
    return item.device_time.isoformat() if item.device_time is not None else received_at.astimezone(UTC).isoformat()


def _first_error(exc: ValidationError) -> str:
    return str(exc.errors(include_url=False)[0]["msg"]).removeprefix("Value error, ")
