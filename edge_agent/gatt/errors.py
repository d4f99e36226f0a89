"""Typed decode failures: every malformed, truncated or unknown payload raises one of these, never a wrong value."""

from __future__ import annotations


class GattDecodeError(ValueError):
    """Bytes from a device could not be decoded; `characteristic` names what was being decoded."""

    def __init__(self, characteristic: str, detail: str) -> None:
        super().__init__(f"{characteristic}: {detail}")
        self.characteristic = characteristic
        self.detail = detail


class TruncatedError(GattDecodeError):
    """The payload ends before a field its flags announce."""


class MalformedError(GattDecodeError):
    """The payload has the right length for nothing, or a field holds a value the spec forbids."""


class UnsupportedCharacteristicError(GattDecodeError):
    """No decoder is registered for this characteristic UUID."""
