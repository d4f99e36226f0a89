"""Acceptance: a glucose meter holding 500 records. The first RACP fetch takes all of them, a reconnect takes only
the new ones, and the reading ids are the same whichever link read them (compared here out of the outbox; the
same meter into PostgreSQL over MQTT is `tests/integration/test_glucose_links_to_db.py`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from device_fixtures import LINKS, Rig, async_test

from device_simulators.encoders.racp import OPERATOR_ALL, OPERATOR_GREATER_OR_EQUAL
from device_simulators.peripherals import GlucoseMeter

METER = "A4:C1:38:00:00:05"
PASSKEY = "246810"
FIRST = datetime(2026, 11, 14, 7, 0)
"""A week before the rig's start, in the meter's (Oslo) wall time."""


def fill(meter: GlucoseMeter, count: int, start: int = 0) -> None:
    """`count` strip results, one every 20 minutes from FIRST, values 4.0–12.9 mmol/L."""
    for i in range(start, start + count):
        meter.measure(4.0 + (i * 7 % 90) / 10, at=FIRST + timedelta(minutes=20 * i), meal="fasting" if i % 5 else None)


async def _read(tmp_path: Path, link: str) -> tuple[list[str], list[str], GlucoseMeter]:
    rig = Rig(tmp_path / link, link=link)
    meter = GlucoseMeter(rig.air, METER, passkey=PASSKEY, capacity=1000)
    rig.pair(meter, bond=True, passkey=PASSKEY)
    manager = await rig.start()
    fill(meter, 500)
    await rig.settle()
    first = [r["id"] for r in rig.sink.stored() if r["kind"] == "glucose"]
    assert manager.devices[METER].state.last_sequence == 500

    rig.clock.advance(3600)
    fill(meter, 20, start=500)
    await rig.settle()
    later = [r["id"] for r in rig.sink.stored() if r["kind"] == "glucose"][len(first) :]
    assert len(rig.sink.accepted) == 520, "nothing fetched twice"
    await rig.stop()
    return first, later, meter


@async_test
async def test_500_records_first_fetch_takes_all_reconnect_only_new_ids_equal_across_links(tmp_path: Path) -> None:
    results = {link: await _read(tmp_path, link) for link in LINKS}
    for link, (first, later, meter) in results.items():
        assert len(first) == len(set(first)) == 500, link
        assert len(later) == 20, link
        assert [(q.opcode, q.operator, q.min_sequence) for q in meter.requests] == [
            (0x04, OPERATOR_ALL, None),
            (0x01, OPERATOR_ALL, None),
            (0x04, OPERATOR_GREATER_OR_EQUAL, 501),
            (0x01, OPERATOR_GREATER_OR_EQUAL, 501),
        ], link
    python, bumble = results["python"], results["bumble"]
    assert python[0] == bumble[0] and python[1] == bumble[1], "the same reading ids over both links"
