"""Temperature Measurement (0x2A1C): FLOAT in °C or °F, time stamp, temperature type (HTS 1.0 layout)."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_simulators.encoders import Coded as EncCoded
from device_simulators.encoders import Special as EncSpecial
from device_simulators.encoders import encode_temperature_measurement
from device_simulators.encoders.temperature import TEMPERATURE_TYPES
from edge_agent.gatt import MalformedError, Skip, TruncatedError, decode_temperature_measurement
from vitals import Kind


def test_celsius_without_options() -> None:
    # 00 flags: Cel; 72 01 00 ff = mantissa 0x000172 = 370, exponent 0xff = -1 → 37.0 °C
    record = decode_temperature_measurement(bytes.fromhex("00 720100ff"))
    [m] = record.measurements
    assert (m.kind, m.value, m.unit, m.device_time, m.flags) == (Kind.BODY_TEMPERATURE, 37.0, "Cel", None, ())


def test_fahrenheit_with_time_stamp_and_site_is_converted_to_celsius() -> None:
    # 07 flags: °F, time stamp, type; da 03 00 ff = 986 × 10^-1 = 98.6 °F; e807 0c 19 07 1e 00; 09 tympanum
    record = decode_temperature_measurement(bytes.fromhex("07 da0300ff e8070c19071e00 09"))
    [m] = record.measurements
    assert m.value == pytest.approx(37.0, abs=1e-12)
    assert m.device_time == datetime(2024, 12, 25, 7, 30)
    assert m.flags == ("site_tympanum",)
    assert (record.device_unit, record.temperature_type) == ("[degF]", "tympanum")


def test_armpit_reading_carries_its_site() -> None:
    # 04 flags: type present; 6c0100ff = 36.4 °C; 01 armpit
    record = decode_temperature_measurement(bytes.fromhex("04 6c0100ff 01"))
    assert record.measurements[0].value == 36.4
    assert record.measurements[0].flags == ("site_armpit",)


@pytest.mark.parametrize(
    ("hex_value", "reason"),
    [("ffff7f00", "nan"), ("00008000", "nres"), ("feff7f00", "positive_infinity"), ("02008000", "negative_infinity")],
)
def test_special_temperatures_are_skipped(hex_value: str, reason: str) -> None:
    record = decode_temperature_measurement(bytes.fromhex("00" + hex_value))
    assert record.measurements == ()
    assert record.skipped == (Skip("temperature", reason),)


def test_reserved_temperature_type_is_left_out() -> None:
    record = decode_temperature_measurement(bytes.fromhex("04 720100ff 0a"))
    assert record.temperature_type is None
    assert record.measurements[0].flags == ()


def test_unknown_device_time_gives_none() -> None:
    record = decode_temperature_measurement(bytes.fromhex("02 720100ff 00000000000000"))
    assert record.device_time is None
    assert record.measurements[0].value == 37.0


@pytest.mark.parametrize("hex_bytes", ["", "00 7201", "02 720100ff e807", "04 720100ff"])
def test_truncated_payloads_raise_truncated_error(hex_bytes: str) -> None:
    with pytest.raises(TruncatedError):
        decode_temperature_measurement(bytes.fromhex(hex_bytes))


def test_trailing_bytes_are_malformed() -> None:
    with pytest.raises(MalformedError):
        decode_temperature_measurement(bytes.fromhex("00 720100ff 09"))


temperatures = st.builds(EncCoded, st.integers(-(2**23) + 3, 2**23 - 3), st.integers(-4, 2)) | st.sampled_from(
    list(EncSpecial)
)


@given(
    temperatures,
    st.booleans(),
    st.none() | st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(lambda t: t.replace(microsecond=0)),
    st.none() | st.sampled_from(sorted(TEMPERATURE_TYPES)),
)
def test_encoded_measurements_decode_to_what_the_simulator_sent(
    value: EncCoded | EncSpecial, fahrenheit: bool, time_stamp: datetime | None, site: str | None
) -> None:
    data = encode_temperature_measurement(
        value, unit="[degF]" if fahrenheit else "Cel", time_stamp=time_stamp, temperature_type=site
    )
    record = decode_temperature_measurement(data)
    assert record.device_time == time_stamp
    assert record.temperature_type == site
    if isinstance(value, EncSpecial):
        assert record.skipped == (Skip("temperature", value.value),)
        assert record.measurements == ()
        return
    exact = Fraction(value.mantissa) * Fraction(10) ** value.exponent
    celsius = (exact - 32) * Fraction(5, 9) if fahrenheit else exact
    assert [m.value for m in record.measurements] == [float(celsius)]
