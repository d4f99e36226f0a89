"""Device Information Service (0x180A) strings: Model Number String (0x2A24) and Serial Number String (0x2A25).

Both are UTF-8 text without a terminator; some firmware pads them with NUL bytes or spaces, which are dropped. An
empty string means the device does not say. Text that is not UTF-8 is refused, not guessed at.
"""

from __future__ import annotations

from edge_agent.gatt.errors import MalformedError
from edge_agent.gatt.models import Payload

DEVICE_INFORMATION_SERVICE = 0x180A
MODEL_NUMBER_STRING = 0x2A24
SERIAL_NUMBER_STRING = 0x2A25
MAX_MODEL_LENGTH = 64
"""What the readings envelope carries for `device.model`; longer model strings are cut."""


def decode_utf8_string(data: Payload, characteristic: str = "model_number_string") -> str | None:
    """The string a DIS characteristic holds, trimmed; None when it is empty."""
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError(characteristic, f"not UTF-8 text at byte {exc.start}") from None
    text = text.strip("\x00").strip()
    return text or None


def decode_model_number(data: Payload) -> str | None:
    """Model Number String, cut to `MAX_MODEL_LENGTH` characters."""
    model = decode_utf8_string(data, "model_number_string")
    return None if model is None else model[:MAX_MODEL_LENGTH]
