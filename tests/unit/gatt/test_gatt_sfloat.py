"""SFLOAT / FLOAT: spec vectors, every special value, and encoder ↔ decoder agreement over the whole SFLOAT space."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_simulators.encoders import sfloat as enc
from edge_agent.gatt.sfloat import Coded, Special, decode_float, decode_sfloat, float_value, sfloat_value

# Vectors from the HL7 Personal Health Device IG page "Mder FLOATs and SFLOATs" (IEEE 11073-20601 encoding):
# SFLOAT = 4-bit signed exponent | 12-bit signed mantissa; FLOAT = 8-bit signed exponent | 24-bit signed mantissa.
SFLOAT_VECTORS = [
    (0x0002, Coded(2, 0), 2.0),
    (0xF014, Coded(20, -1), 2.0),  # exponent 0xF = -1, mantissa 0x014 = 20 → "2.0"
    (0xE0C8, Coded(200, -2), 2.0),  # exponent 0xE = -2, mantissa 0x0C8 = 200 → "2.00"
    (0x1002, Coded(2, 1), 20.0),
    (0x2002, Coded(2, 2), 200.0),
    (0x04D2, Coded(1234, 0), 1234.0),
    (0x0B2E, Coded(-1234, 0), -1234.0),  # mantissa 0xB2E is two's complement -1234
    (0xF16E, Coded(366, -1), 36.6),
    (0x8001, Coded(1, -8), 1e-8),
    (0x77FD, Coded(2045, 7), 2045e7),
]
FLOAT_VECTORS = [
    (0x00000002, Coded(2, 0), 2.0),
    (0xFF000014, Coded(20, -1), 2.0),
    (0xFE0000C8, Coded(200, -2), 2.0),
    (0x01000002, Coded(2, 1), 20.0),
    (0x00FFFB2E, Coded(-1234, 0), -1234.0),  # 24-bit two's complement
    (0xFF00016E, Coded(366, -1), 36.6),
]
SFLOAT_SPECIALS = [
    (0x07FF, Special.NAN),
    (0x0800, Special.NRES),
    (0x07FE, Special.POSITIVE_INFINITY),
    (0x0802, Special.NEGATIVE_INFINITY),
    (0x0801, Special.RESERVED),
]
FLOAT_SPECIALS = [
    (0x007FFFFF, Special.NAN),
    (0x00800000, Special.NRES),
    (0x007FFFFE, Special.POSITIVE_INFINITY),
    (0x00800002, Special.NEGATIVE_INFINITY),
    (0x00800001, Special.RESERVED),
]


@pytest.mark.parametrize(("raw", "coded", "value"), SFLOAT_VECTORS)
def test_sfloat_spec_vectors_decode_to_their_exact_decimal(raw: int, coded: Coded, value: float) -> None:
    assert decode_sfloat(raw) == coded
    assert sfloat_value(raw.to_bytes(2, "little")) == value
    assert enc.encode_sfloat(enc.Coded(coded.mantissa, coded.exponent)) == raw.to_bytes(2, "little")


@pytest.mark.parametrize(("raw", "coded", "value"), FLOAT_VECTORS)
def test_float_spec_vectors_decode_to_their_exact_decimal(raw: int, coded: Coded, value: float) -> None:
    assert decode_float(raw) == coded
    assert float_value(raw.to_bytes(4, "little")) == value
    assert enc.encode_float(enc.Coded(coded.mantissa, coded.exponent)) == raw.to_bytes(4, "little")


@pytest.mark.parametrize(("raw", "special"), SFLOAT_SPECIALS)
def test_sfloat_special_values_yield_no_number(raw: int, special: Special) -> None:
    assert decode_sfloat(raw) is special
    assert enc.encode_sfloat(enc.Special(special.value)) == raw.to_bytes(2, "little")


@pytest.mark.parametrize(("raw", "special"), FLOAT_SPECIALS)
def test_float_special_values_yield_no_number(raw: int, special: Special) -> None:
    assert decode_float(raw) is special
    assert enc.encode_float(enc.Special(special.value)) == raw.to_bytes(4, "little")


@pytest.mark.parametrize("exponent_nibble", [0x1, 0x7, 0x8, 0xF])
def test_special_mantissa_with_an_exponent_is_still_no_number(exponent_nibble: int) -> None:
    # A sloppy encoder may set an exponent on NaN (e.g. 0xF7FF); reading 2047 × 10^e would be a wrong number.
    assert decode_sfloat(exponent_nibble << 12 | 0x07FF) is Special.NAN
    assert decode_sfloat(exponent_nibble << 12 | 0x0800) is Special.NRES


def test_float_nan_and_infinities_encode_as_special_values() -> None:
    assert enc.encode_sfloat(math.nan) == b"\xff\x07"
    assert enc.encode_sfloat(math.inf) == b"\xfe\x07"
    assert enc.encode_sfloat(-math.inf) == b"\x02\x08"
    assert enc.encode_float(math.nan) == b"\xff\xff\x7f\x00"


def test_encoder_codes_values_with_their_own_decimals_like_devices_do() -> None:
    assert enc.coded_sfloat(120.0) == enc.Coded(120, 0)
    assert enc.coded_sfloat(36.6) == enc.Coded(366, -1)
    assert enc.coded_sfloat(5000.0) == enc.Coded(500, 1)
    assert enc.coded_sfloat(123.456) == enc.Coded(1235, -1)  # rounded to fit 12 bits


def test_values_beyond_the_format_are_refused_by_the_encoder() -> None:
    with pytest.raises(ValueError, match="too large"):
        enc.encode_sfloat(2046e7)
    with pytest.raises(ValueError, match="does not fit"):
        enc.encode_sfloat(enc.Coded(2046, 0))  # 0x07FE would read back as +INFINITY
    with pytest.raises(ValueError, match="does not fit"):
        enc.encode_sfloat(enc.Coded(1, 8))


def test_raw_values_outside_the_width_are_refused() -> None:
    with pytest.raises(ValueError):
        decode_sfloat(0x10000)
    with pytest.raises(ValueError):
        decode_float(-1)
    with pytest.raises(ValueError):
        sfloat_value(b"\x00")


def test_every_ordinary_sfloat_survives_decode_then_encode_bit_for_bit() -> None:
    for raw in range(0x10000):
        decoded = decode_sfloat(raw)
        if isinstance(decoded, Special):
            assert raw & 0x0FFF in (0x07FE, 0x07FF, 0x0800, 0x0801, 0x0802)
            continue
        assert enc.encode_sfloat(enc.Coded(decoded.mantissa, decoded.exponent)) == raw.to_bytes(2, "little")


@given(st.integers(-(2**23) + 3, 2**23 - 3), st.integers(-128, 127))
def test_every_ordinary_float_round_trips_exactly(mantissa: int, exponent: int) -> None:
    raw = int.from_bytes(enc.encode_float(enc.Coded(mantissa, exponent)), "little")
    assert decode_float(raw) == Coded(mantissa, exponent)


@given(st.floats(min_value=-2045, max_value=2045, allow_nan=False))
def test_encoded_floats_come_back_within_half_a_resolution_step(value: float) -> None:
    decoded = decode_sfloat(int.from_bytes(enc.encode_sfloat(value), "little"))
    assert isinstance(decoded, Coded)
    half_step = Decimal(10) ** decoded.exponent / 2
    assert abs(Decimal(repr(value)) - Decimal(decoded.mantissa).scaleb(decoded.exponent)) <= half_step


@given(st.integers(-2045, 2045), st.integers(-8, 7))
def test_representable_values_come_back_exactly(mantissa: int, exponent: int) -> None:
    value = float(Coded(mantissa, exponent))
    assert sfloat_value(enc.encode_sfloat(value)) == value
