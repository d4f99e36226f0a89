"""`decode_command`, behind `varde decode CHARACTERISTIC HEX`: JSON readings on stdout, exit 2 on bad input."""

from __future__ import annotations

import json

import pytest

from edge_agent.decode_cli import decode_command


def test_blood_pressure_prints_readings_in_canonical_units(capsys: pytest.CaptureFixture[str]) -> None:
    assert decode_command("2a35", "1e 78 00 50 00 5d 00 e8 07 0c 19 07 1e 00 48 00 01 04 00") == 0
    readings = json.loads(capsys.readouterr().out)
    assert readings[0] == {
        "kind": "bp_systolic",
        "value": 120.0,
        "unit": "mm[Hg]",
        "measured_at": "2024-12-25T07:30:00",
        "flags": ["irregular_pulse"],
    }
    assert [r["kind"] for r in readings] == ["bp_systolic", "bp_diastolic", "bp_mean", "pulse_rate"]


def test_colon_separated_hex_and_full_uuid_are_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    # 01 weight imperial; 8246 = 180.50 lb
    assert decode_command("00002A9D-0000-1000-8000-00805F9B34FB", "01:82:46") == 0
    [reading] = json.loads(capsys.readouterr().out)
    assert (reading["kind"], reading["unit"], reading["measured_at"]) == ("body_weight", "kg", None)
    assert reading["value"] == pytest.approx(81.8734, abs=1e-4)


def test_fahrenheit_is_printed_in_celsius(capsys: pytest.CaptureFixture[str]) -> None:
    assert decode_command("0x2A1C", "01da0300ff") == 0
    [reading] = json.loads(capsys.readouterr().out)
    assert (reading["unit"], round(reading["value"], 6)) == ("Cel", 37.0)


def test_battery_level_prints_no_readings_and_a_note(capsys: pytest.CaptureFixture[str]) -> None:
    assert decode_command("2a19", "57") == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == []
    assert "battery level 87 %" in err


def test_special_values_are_left_out_and_noted(capsys: pytest.CaptureFixture[str]) -> None:
    assert decode_command("2a35", "00 7800 5000 ff07") == 0
    out, err = capsys.readouterr()
    assert [r["kind"] for r in json.loads(out)] == ["bp_systolic", "bp_diastolic"]
    assert "skipped mean_arterial_pressure (nan)" in err


@pytest.mark.parametrize(
    ("characteristic", "hex_bytes", "reason"),
    [
        ("2a35", "zz", "not hexadecimal"),
        ("2a35", "1e7", "odd number"),
        ("2a35", "", "no bytes"),
        ("2a35", "1e 78 00 50", "needs 2 bytes"),
        ("2a99", "00", "no decoder"),
        ("not-a-uuid", "00", "not a 16-bit"),
        ("2a19", "65", "above 100"),
    ],
)
def test_bad_input_prints_one_line_and_returns_2(
    characteristic: str, hex_bytes: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert decode_command(characteristic, hex_bytes) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert reason in err
    assert err.count("\n") == 1
