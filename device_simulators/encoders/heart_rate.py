"""Heart Rate Measurement (0x2A37) bytes, as an HRS 1.0 chest strap or watch sends them."""

from __future__ import annotations

from collections.abc import Sequence

from device_simulators.encoders._fields import u8, u16


def encode_heart_rate_measurement(
    heart_rate: int,
    *,
    wide: bool | None = None,
    sensor_contact: bool | None = None,
    energy_expended_kj: int | None = None,
    rr_intervals: Sequence[float] = (),
) -> bytes:
    """`wide` forces the uint16 format (default: only above 255); `sensor_contact=None` means no contact feature.

    RR intervals are seconds, sent rounded to the nearest 1/1024 s.
    """
    wide = heart_rate > 0xFF if wide is None else wide
    flags = (
        wide * 0x01
        | (sensor_contact is True) * 0x02
        | (sensor_contact is not None) * 0x04
        | (energy_expended_kj is not None) * 0x08
        | bool(rr_intervals) * 0x10
    )
    out = u8(flags) + (u16(heart_rate) if wide else u8(heart_rate))
    if energy_expended_kj is not None:
        out += u16(energy_expended_kj)
    return out + b"".join(u16(round(interval * 1024)) for interval in rr_intervals)
