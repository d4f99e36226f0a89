"""Device Information Service strings (0x2A24 Model Number, 0x2A25 Serial Number): UTF-8, padding dropped."""

from __future__ import annotations

import pytest

from edge_agent.gatt import MalformedError
from edge_agent.gatt.device_information import MAX_MODEL_LENGTH, decode_model_number, decode_utf8_string


@pytest.mark.parametrize(
    ("hex_bytes", "model"),
    [
        ("55412d363531424c45", "UA-651BLE"),  # A&D cuff, no terminator
        ("55432d3335324242", "UC-352BB"),
        ("55542d323031424c450000", "UT-201BLE"),  # NUL-padded to a fixed field
        ("436f6e746f7572204e657874204f6e6520", "Contour Next One"),  # trailing space
        ("", None),  # the device does not say
        ("0000", None),
    ],
)
def test_model_number_is_the_trimmed_utf8_text(hex_bytes: str, model: str | None) -> None:
    assert decode_model_number(bytes.fromhex(hex_bytes)) == model


def test_model_number_longer_than_the_envelope_field_is_cut() -> None:
    assert decode_model_number(b"M" * 100) == "M" * MAX_MODEL_LENGTH


def test_serial_number_keeps_non_ascii_text() -> None:
    assert decode_utf8_string("SN-Ø42".encode(), "serial_number_string") == "SN-Ø42"


def test_text_that_is_not_utf8_is_refused_not_guessed() -> None:
    with pytest.raises(MalformedError, match="model_number_string: not UTF-8 text at byte 2"):
        decode_model_number(bytes.fromhex("5541ff"))
