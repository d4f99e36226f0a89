"""The virtual peripherals behave like real devices at GATT level, seen through the edge's own Link interface."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from device_fixtures import START, async_test

from device_simulators.link import CCCD_INDICATE, CCCD_NOTIFY, Air, SimClock, VirtualLink, uuid16
from device_simulators.peripherals import (
    CLOCK_RESET_TO,
    BloodPressureCuff,
    GlucoseMeter,
    HeartRateStrap,
    WeightScale,
)
from edge_agent.gatt import (
    NumberOfStoredRecords,
    RacpResult,
    ResponseCode,
    abort_operation,
    decode,
    decode_current_time,
    encode_current_time,
    report_all_records,
    report_number_of_records,
    report_records_from,
)
from edge_agent.gatt.racp import Opcode
from edge_agent.link import (
    BondingRequiredError,
    ConnectionDroppedError,
    ConnectTimeoutError,
    DeviceNotFoundError,
    GattOperationError,
    Link,
    OutOfConnectionSlotsError,
    Radio,
    sig_uuid,
)

CUFF = "A4:C1:38:00:00:01"
METER = "A4:C1:38:00:00:05"


def _air() -> Air:
    return Air(SimClock(START), seed=3)


def test_virtual_radio_and_link_satisfy_the_edge_link_protocols() -> None:
    air = _air()
    radio = air.radio()
    assert isinstance(radio, Radio)
    assert isinstance(radio.link(CUFF.lower()), Link)
    assert radio.link(CUFF.lower()).address == CUFF
    assert uuid16("2a35") == uuid16("0x2A35") == uuid16(sig_uuid(0x2A35)) == 0x2A35


@async_test
async def test_cuff_advertises_its_service_after_a_measurement_and_not_before() -> None:
    air = _air()
    radio = air.radio()
    heard: list[tuple[str, tuple[str, ...]]] = []
    await radio.start_scan(lambda adv: heard.append((adv.address, adv.service_uuids)))
    cuff = BloodPressureCuff(air, CUFF)
    assert not cuff.advertising
    with pytest.raises(DeviceNotFoundError):
        await radio.link(CUFF).connect()
    cuff.measure(120, 80)
    assert heard == [(CUFF, (sig_uuid(0x1810),))]
    air.clock.advance(31)
    assert not cuff.advertising


@async_test
async def test_cuff_waits_for_indications_then_sends_stored_records_and_disconnects() -> None:
    air = _air()
    radio = air.radio()
    cuff = BloodPressureCuff(air, CUFF)
    cuff.measure(120, 80, pulse=70)
    cuff.measure(131, 85, pulse=72)
    link = radio.link(CUFF)
    assert isinstance(link, VirtualLink)
    dropped: list[str] = []
    link.set_disconnect_callback(dropped.append)
    await link.connect()
    received: list[bytes] = []
    for _ in range(5):
        await asyncio.sleep(0)
    assert cuff.values_sent == 0, "nothing may be sent before the CCCD is written"
    await link.start_notify(sig_uuid(0x2A35), received.append)
    connection = link.connection
    assert connection is not None
    assert connection.cccd[0x2A35] == CCCD_INDICATE
    while link.is_connected:
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [decode(0x2A35, r).measurements[0].value for r in received] == [120.0, 131.0]  # type: ignore[union-attr]
    assert connection.indications_confirmed == 2
    assert cuff.memory == [] and dropped == [CUFF]
    assert not cuff.advertising, "a cuff with nothing left to send stops advertising"


@async_test
async def test_strap_uses_notifications_which_need_no_confirmation() -> None:
    air = _air()
    strap = HeartRateStrap(air, "A4:C1:38:00:00:06")
    link = air.radio().link(strap.address)
    assert not strap.beat(70), "no gateway, nothing sent"
    strap.wear()
    await link.connect()
    rates: list[bytes] = []
    await link.start_notify(sig_uuid(0x2A37), rates.append)
    assert link.connection is not None and link.connection.cccd[0x2A37] == CCCD_NOTIFY
    assert strap.beat(71) and strap.beat(73)
    await asyncio.sleep(0)
    assert rates == [bytes((0x06, 71)), bytes((0x06, 73))]
    assert link.connection.indications_confirmed == 0 and link.is_connected


@async_test
async def test_current_time_is_readable_writable_and_drifts_until_set() -> None:
    air = _air()
    scale = WeightScale(air, "A4:C1:38:00:00:03", clock_start=datetime(2021, 6, 1, 12, 0), drift_ppm=100)
    scale.measure(80.0)
    link = air.radio().link(scale.address)
    await link.connect()
    before = decode_current_time(await link.read(sig_uuid(0x2A2B))).exact_time
    assert before == datetime(2021, 6, 1, 12, 0)
    air.clock.advance(10_000)
    assert scale.clock.now() == datetime(2021, 6, 1, 12, 0) + timedelta(seconds=10_001)
    await link.write(sig_uuid(0x2A2B), encode_current_time(datetime(2026, 11, 21, 12, 46, 40)))
    assert scale.clock.now() == datetime(2026, 11, 21, 12, 46, 40) and scale.clock_writes == 1
    with pytest.raises(GattOperationError):
        await link.write(sig_uuid(0x2A2B), b"\x00")
    with pytest.raises(GattOperationError):
        await link.read(sig_uuid(0x2A35))


@async_test
async def test_bonded_device_refuses_encrypted_characteristics_until_paired_with_the_right_passkey() -> None:
    air = _air()
    meter = GlucoseMeter(air, METER, passkey="123456")
    meter.measure(6.1)
    radio = air.radio()
    link = radio.link(METER)
    await link.connect()
    assert await link.read(sig_uuid(0x2A19)) == bytes((90,)), "battery is readable without a bond"
    with pytest.raises(BondingRequiredError):
        await link.start_notify(sig_uuid(0x2A18), lambda _: None)
    with pytest.raises(BondingRequiredError):
        await link.pair(passkey="000000")
    await link.pair(passkey="123456")
    await link.start_notify(sig_uuid(0x2A18), lambda _: None)
    await link.disconnect()
    meter.advertise()
    again = radio.link(METER)
    await again.connect()
    await again.start_notify(sig_uuid(0x2A18), lambda _: None)  # the bond is remembered on both sides


@async_test
async def test_racp_reports_counts_records_from_a_sequence_and_aborts() -> None:
    air = _air()
    meter = GlucoseMeter(air, METER, bonding=False, record_interval_s=0.01)
    for value in (5.0, 5.5, 6.0, 6.5, 7.0):
        meter.measure(value)
    link = air.radio().link(METER)
    await link.connect()
    got: list[bytes] = []
    answers: asyncio.Queue[bytes] = asyncio.Queue()
    with pytest.raises(GattOperationError):
        await link.write(sig_uuid(0x2A52), report_all_records())  # indications not enabled yet
    await link.start_notify(sig_uuid(0x2A18), got.append)
    await link.start_notify(sig_uuid(0x2A52), answers.put_nowait)

    await link.write(sig_uuid(0x2A52), report_number_of_records(3))
    assert decode(0x2A52, await answers.get()) == NumberOfStoredRecords(3)
    await link.write(sig_uuid(0x2A52), report_records_from(4))
    assert decode(0x2A52, await answers.get()) == RacpResult(Opcode.REPORT_STORED_RECORDS, ResponseCode.SUCCESS)
    assert [decode(0x2A18, g).sequence for g in got] == [4, 5]  # type: ignore[union-attr]

    got.clear()
    await link.write(sig_uuid(0x2A52), report_all_records())
    while len(got) < 2:
        await asyncio.sleep(0.001)
    with pytest.raises(GattOperationError):
        await link.write(sig_uuid(0x2A52), report_all_records())  # procedure already in progress
    await link.write(sig_uuid(0x2A52), abort_operation())
    answer = decode(0x2A52, await answers.get())
    assert isinstance(answer, RacpResult) and answer.request_opcode == 0x03 and answer.succeeded
    await asyncio.sleep(0.05)
    assert 2 <= len(got) < 5 and answers.empty()

    await link.write(sig_uuid(0x2A52), report_records_from(99))
    none_found = RacpResult(Opcode.REPORT_STORED_RECORDS, ResponseCode.NO_RECORDS_FOUND)
    assert decode(0x2A52, await answers.get()) == none_found


@async_test
async def test_adapter_slots_refusals_and_hung_firmware_fail_like_real_devices() -> None:
    air = _air()
    radio = air.radio(slots=1)
    strap = HeartRateStrap(air, "A4:C1:38:00:00:06")
    strap.wear()
    cuff = BloodPressureCuff(air, CUFF)
    cuff.measure(120, 80)
    await radio.link(strap.address).connect()
    with pytest.raises(OutOfConnectionSlotsError):
        await radio.link(CUFF).connect()
    strap.take_off()
    cuff.refuse_next(1, ConnectTimeoutError)
    with pytest.raises(ConnectTimeoutError):
        await radio.link(CUFF).connect()
    cuff.hang()
    assert not cuff.advertise() and not cuff.advertising
    cuff.measure(125, 81)
    with pytest.raises(DeviceNotFoundError):
        await radio.link(CUFF).connect()
    cuff.power_cycle()
    assert cuff.clock.now() == CLOCK_RESET_TO
    assert cuff.advertise()
    await radio.link(CUFF).connect()


@async_test
async def test_a_link_lost_before_the_confirmation_keeps_the_record_for_next_time() -> None:
    air = _air()
    cuff = BloodPressureCuff(air, CUFF)
    for systolic in (120, 121, 122):
        cuff.measure(systolic, 80)
    cuff.drop_after(2)
    link = air.radio().link(CUFF)
    await link.connect()
    got: list[bytes] = []
    await link.start_notify(sig_uuid(0x2A35), got.append)
    while link.is_connected:
        await asyncio.sleep(0)
    with pytest.raises(ConnectionDroppedError):
        await link.read(sig_uuid(0x2A19))
    assert len(got) == 2, "the second record reached the gateway"
    assert [r.systolic for r in cuff.memory] == [121, 122], "…but was not confirmed, so the cuff keeps it"
    assert cuff.advertising, "a cuff with records left keeps advertising"


def test_same_seed_same_device_behaviour() -> None:
    def pattern(seed: int) -> tuple[int, list[float]]:
        cuff = BloodPressureCuff(_air(), CUFF, seed=seed)
        return cuff.rssi, [cuff.rng.random() for _ in range(3)]

    assert pattern(11) == pattern(11)
    assert pattern(11) != pattern(12)


@async_test
async def test_probabilistic_link_loss_is_the_same_for_the_same_seed() -> None:
    async def delivered_per_connection(seed: int) -> list[int]:
        air = _air()
        cuff = BloodPressureCuff(air, CUFF, seed=seed)
        cuff.faults.drop_probability = 0.4
        for systolic in range(110, 130):
            cuff.measure(systolic, 75)
        counts: list[int] = []
        radio = air.radio()
        while cuff.memory:
            cuff.advertise()
            link = radio.link(CUFF)
            await link.connect()
            got: list[bytes] = []
            await link.start_notify(sig_uuid(0x2A35), got.append)
            while link.is_connected:
                await asyncio.sleep(0)
            counts.append(len(got))
        return counts

    first = await delivered_per_connection(5)
    assert first == await delivered_per_connection(5)
    assert first != await delivered_per_connection(6)
    assert len(first) > 1, "with a 40 % loss per value the transfer needs several connections"
