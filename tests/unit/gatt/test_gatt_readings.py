"""Decoded measurements → `vitals.Reading`: stable ids, one group per cuff inflation, clock correction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge_agent.gatt import decode_blood_pressure_measurement, decode_heart_rate_measurement
from edge_agent.gatt.readings import TIME_FROM_GATEWAY, to_readings
from vitals import DeviceRef, Kind

DEVICE = DeviceRef(address="a4:c1:38:00:00:01", type="blood_pressure_monitor", model="UA-651BLE")
RECEIVED = datetime(2024, 12, 25, 7, 31, tzinfo=UTC)
# 1e flags; 120/80/93 mmHg; 2024-12-25 08:30:00 (device in Oslo local time); pulse 72; user 1; irregular pulse
BP = bytes.fromhex("1e 7800 5000 5d00 e8070c19081e00 4800 01 0400")


def test_one_cuff_inflation_becomes_four_readings_in_one_group() -> None:
    batch = to_readings(
        decode_blood_pressure_measurement(BP).measurements,
        gateway_id="gw-0001",
        device=DEVICE,
        received_at=RECEIVED,
        clock_correction=timedelta(hours=-1),
    )
    assert batch.rejected == ()
    assert [r.kind for r in batch.readings] == [Kind.BP_SYSTOLIC, Kind.BP_DIASTOLIC, Kind.BP_MEAN, Kind.PULSE_RATE]
    assert len({r.group for r in batch.readings}) == 1
    assert len({r.id for r in batch.readings}) == 4
    assert all(r.measured_at == datetime(2024, 12, 25, 7, 30, tzinfo=UTC) for r in batch.readings)
    assert all(r.flags == ("irregular_pulse",) for r in batch.readings)


def test_the_same_record_fetched_again_gets_the_same_ids() -> None:
    def ids(received_at: datetime, correction: timedelta) -> list[str]:
        batch = to_readings(
            decode_blood_pressure_measurement(BP).measurements,
            gateway_id="gw-0001",
            device=DEVICE,
            received_at=received_at,
            clock_correction=correction,
        )
        return [str(r.id) for r in batch.readings]

    assert ids(RECEIVED, timedelta(hours=-1)) == ids(RECEIVED + timedelta(days=2), timedelta(hours=-1, seconds=40))


def test_measurement_without_device_time_is_timed_by_the_gateway() -> None:
    batch = to_readings(
        decode_heart_rate_measurement(bytes.fromhex("00 48")).measurements,
        gateway_id="gw-0001",
        device=DEVICE,
        received_at=RECEIVED,
    )
    [reading] = batch.readings
    assert reading.measured_at == RECEIVED
    assert reading.flags == (TIME_FROM_GATEWAY,)


def test_implausible_values_are_rejected_with_a_reason_not_dropped() -> None:
    # systolic 0x0190 = 400 mmHg is outside 40–300
    batch = to_readings(
        decode_blood_pressure_measurement(bytes.fromhex("00 9001 5000 5d00")).measurements,
        gateway_id="gw-0001",
        device=DEVICE,
        received_at=RECEIVED,
    )
    assert [r.kind for r in batch.readings] == [Kind.BP_DIASTOLIC, Kind.BP_MEAN]
    [rejected] = batch.rejected
    assert rejected.measurement.kind is Kind.BP_SYSTOLIC
    assert "implausible_value" in rejected.reason


def test_context_flags_are_added_once() -> None:
    batch = to_readings(
        decode_blood_pressure_measurement(BP).measurements,
        gateway_id="gw-0001",
        device=DEVICE,
        received_at=RECEIVED,
        extra_flags=("irregular_pulse", "meal_preprandial"),
    )
    assert batch.readings[0].flags == ("irregular_pulse", "meal_preprandial")
