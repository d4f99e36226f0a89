"""The UUID → decoder registry: every spelling of a SIG characteristic UUID finds the same decoder."""

from __future__ import annotations

import pytest

from edge_agent.gatt import (
    CHARACTERISTICS,
    BatteryLevel,
    UnsupportedCharacteristicError,
    characteristic_for,
    decode,
    decode_blood_pressure_measurement,
)


@pytest.mark.parametrize(
    "spelling",
    [
        0x2A35,
        "2a35",
        "2A35",
        "0x2A35",
        "0x2a35",
        "00002a35-0000-1000-8000-00805f9b34fb",
        "00002A35-0000-1000-8000-00805F9B34FB",
        "blood_pressure_measurement",
    ],
)
def test_every_uuid_spelling_finds_the_decoder(spelling: int | str) -> None:
    assert characteristic_for(spelling).decode is decode_blood_pressure_measurement


@pytest.mark.parametrize(
    "spelling",
    [0x2A99, "2a99", "ffff", "12345678-0000-1000-8000-00805f9b34fb", "00002a35-0000-1000-8000-000000000000", "bp", ""],
)
def test_unknown_characteristics_raise_a_typed_error(spelling: int | str) -> None:
    with pytest.raises(UnsupportedCharacteristicError):
        characteristic_for(spelling)


def test_registry_covers_every_characteristic_family() -> None:
    assert set(CHARACTERISTICS) == {
        0x2A35, 0x2A36, 0x2A37, 0x2A1C, 0x2A18, 0x2A34, 0x2A5E, 0x2A5F, 0x2A9D, 0x2A19, 0x2A2B, 0x2A52,
    }  # fmt: skip


def test_decode_accepts_bytearray_as_bleak_delivers_it() -> None:
    assert decode("2a19", bytearray(b"\x50")) == BatteryLevel(80)
