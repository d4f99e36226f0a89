"""The glucose handler fetches stored records through RACP: all at first, then only newer ones, with stable ids."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

from device_fixtures import FAST, OutboxSink, Rig, async_test

from device_simulators.encoders.racp import OPERATOR_ALL, OPERATOR_GREATER_OR_EQUAL
from device_simulators.peripherals import GlucoseMeter
from edge_agent.link import BondingRequiredError, ConnectionDroppedError, ConnectTimeoutError

METER = "A4:C1:38:00:00:05"
PASSKEY = "246810"


def _meter(rig: Rig, **options: object) -> GlucoseMeter:
    meter = GlucoseMeter(rig.air, METER, passkey=PASSKEY, **options)  # type: ignore[arg-type]
    rig.pair(meter, bond=True, passkey=PASSKEY)
    return meter


def _glucose(rig: Rig) -> list[dict[str, object]]:
    return [r for r in rig.sink.stored() if r["kind"] == "glucose"]


@async_test
async def test_first_fetch_gets_all_records_and_the_next_only_newer_ones(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    meter = _meter(rig)
    manager = await rig.start()
    for value in (5.2, 6.8, 11.4):
        meter.measure(value, at=meter.clock.now() - timedelta(hours=3))
    await rig.settle()
    assert [r["value"] for r in _glucose(rig)] == [5.2, 6.8, 11.4]
    assert {r["measured_at"] for r in _glucose(rig)} == {"2026-11-21T06:00:00Z"}, "07:00 in Oslo"
    assert [(q.opcode, q.operator, q.min_sequence) for q in meter.requests] == [
        (0x04, OPERATOR_ALL, None),
        (0x01, OPERATOR_ALL, None),
    ]
    assert manager.devices[METER].state.last_sequence == 3

    rig.clock.advance(3600)
    meter.measure(4.1)
    meter.measure(7.7)
    await rig.settle()
    assert [r["value"] for r in _glucose(rig)] == [5.2, 6.8, 11.4, 4.1, 7.7]
    assert [(q.opcode, q.operator, q.min_sequence) for q in meter.requests[2:]] == [
        (0x04, OPERATOR_GREATER_OR_EQUAL, 4),
        (0x01, OPERATOR_GREATER_OR_EQUAL, 4),
    ]
    assert len(rig.sink.accepted) == 5, "nothing was handed over twice"
    saved = json.loads((tmp_path / "devices.json").read_text())
    assert saved["devices"][METER]["last_sequence"] == 5
    await rig.stop()


@async_test
async def test_nothing_new_asks_only_for_the_count(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    meter = _meter(rig)
    await rig.start()
    meter.measure(5.0)
    await rig.settle()
    rig.clock.advance(60)
    meter.advertise()
    await rig.settle()
    assert [q.opcode for q in meter.requests] == [0x04, 0x01, 0x04]
    assert len(_glucose(rig)) == 1
    await rig.stop()


@async_test
async def test_refetching_everything_yields_the_same_reading_ids(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    meter = _meter(rig, drift_ppm=50)
    await rig.start()
    for value in (5.5, 6.5, 7.5):
        meter.measure(value)
        await rig.settle()
        rig.clock.advance(900)
    first = [r["id"] for r in _glucose(rig)]
    await rig.stop()

    again = rig.another_gateway(tmp_path / "fresh-state", identity="00:1A:7D:DA:71:01")
    again.pair(meter, bond=True, passkey=PASSKEY)
    rig.clock.advance(2 * 86400)  # two days later, and the meter's clock has drifted meanwhile
    await again.start()
    meter.advertise()
    await again.settle()
    assert [r["id"] for r in _glucose(again)] == first
    await again.stop()


@async_test
async def test_mg_per_dl_meter_and_context_become_mmol_per_l_readings_with_meal_flags(
    tmp_path: Path, link: str
) -> None:
    rig = Rig(tmp_path, link=link)
    meter = _meter(rig, unit="mg/dL")
    await rig.start()
    meter.measure(126, meal="fasting", tester="self")
    meter.measure(180, meal="postprandial", sensor_status=("result_above_range",))
    meter.measure(90, sample_type="control_solution")
    await rig.settle()
    stored = _glucose(rig)
    assert [(r["value"], r["unit"]) for r in stored] == [(7.0, "mmol/L"), (10.0, "mmol/L")]
    assert stored[0]["flags"] == ["sample_capillary_plasma", "site_finger", "meal_fasting", "tester_self"]
    assert stored[1]["flags"] == [
        "sample_capillary_plasma",
        "site_finger",
        "result_above_range",
        "meal_postprandial",
    ]
    assert meter.clock_writes == 0
    await rig.stop()


@async_test
async def test_link_lost_mid_transfer_resumes_after_the_last_committed_record(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    meter = _meter(rig, record_interval_s=0.001)
    manager = await rig.start()
    values = [5.0, 5.1, 5.2, 5.3, 5.4, 5.5]
    for value in values:
        meter.measure(value, meal="preprandial" if value == 5.2 else None)
    # values on the air: count answer, #1, #2, #3, #3's context — the link goes right after #3's measurement
    meter.drop_after(4)
    await rig.settle()
    runtime = manager.devices[METER]
    assert isinstance(runtime.last_error, ConnectionDroppedError)
    assert [r["value"] for r in _glucose(rig)] == [5.0, 5.1], "#3 waits for its context, so it is not committed"
    assert runtime.state.last_sequence == 2

    rig.clock.advance(5)
    meter.advertise()
    await rig.settle()
    stored = _glucose(rig)
    assert [r["value"] for r in stored] == values
    assert stored[2]["flags"][-1] == "meal_preprandial"
    assert meter.requests[-1].min_sequence == 3
    assert len(rig.sink.accepted) == len({r.id for r in rig.sink.accepted}) == 6
    await rig.stop()


@async_test
async def test_meter_that_goes_silent_is_aborted_and_retried(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    meter = _meter(rig, record_interval_s=FAST.racp_timeout_s * 3)
    manager = await rig.start()
    meter.measure(6.0)
    meter.measure(6.1)
    await rig.settle()
    assert [q.opcode for q in meter.requests] == [0x04, 0x01]
    assert [r["value"] for r in _glucose(rig)] == [6.0]
    assert manager.devices[METER].state.last_sequence == 1
    assert isinstance(manager.devices[METER].last_error, ConnectTimeoutError)
    await rig.stop()


@async_test
async def test_meter_refuses_an_unbonded_gateway_and_a_wrong_passkey(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    meter = GlucoseMeter(rig.air, METER, passkey=PASSKEY)
    rig.pair(meter, bond=False)
    manager = await rig.start()
    meter.measure(5.0)
    await rig.settle()
    assert isinstance(manager.devices[METER].last_error, BondingRequiredError)
    await rig.stop()

    wrong = rig.another_gateway(tmp_path / "wrong", identity="00:1A:7D:DA:71:03")
    wrong.pair(meter, bond=True, passkey="999999")
    manager = await wrong.start()
    meter.advertise()
    await wrong.settle()
    error = manager.devices[METER].last_error
    assert isinstance(error, BondingRequiredError) and "wrong passkey" in str(error)
    assert wrong.sink.stored() == [] and meter.requests == []
    await wrong.stop()


@async_test
async def test_full_outbox_leaves_the_remaining_records_on_the_meter(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    rig.sink.close()
    rig.sink = OutboxSink(tmp_path / "small.sqlite", max_rows=100)
    rig.sink.outbox.put_raw([(f"filler-{i}", b"{}", time.time()) for i in range(98)])
    meter = _meter(rig)
    manager = await rig.start()
    for value in (5.0, 6.0, 7.0, 8.0):
        meter.measure(value)
    await rig.settle()
    assert [r["value"] for r in rig.sink.stored() if r.get("kind") == "glucose"] == [5.0, 6.0]
    assert manager.devices[METER].state.last_sequence == 2
    await rig.stop()


@async_test
async def test_meter_that_forgot_the_bond_is_paired_again_and_keeps_sending(tmp_path: Path, link: str) -> None:
    rig = Rig(tmp_path, link=link)
    meter = _meter(rig)
    manager = await rig.start()
    meter.measure(5.0)
    await rig.settle()
    old_keys = await rig.radio.device.keystore.get(METER) if link == "bumble" else None
    meter.forget_bonds()  # reset, or paired with the patient's phone: the gateway's keys no longer open the link
    rig.clock.advance(60)
    meter.measure(6.0)
    await rig.settle()
    assert [r["value"] for r in _glucose(rig)] == [5.0, 6.0]
    assert manager.devices[METER].last_error is None
    assert rig.radio.identity in meter.bonds, "paired afresh"
    if link == "bumble":
        new_keys = await rig.radio.device.keystore.get(METER)
        assert old_keys is not None and old_keys.ltk is not None
        assert new_keys is not None and new_keys.ltk is not None and new_keys.ltk.value != old_keys.ltk.value
    await rig.stop()
