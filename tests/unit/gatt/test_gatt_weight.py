"""Weight Measurement (0x2A9D), WSS 1.0 layout: flags, uint16 weight, [time stamp], [user id], [BMI, height]."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_simulators.encoders import encode_weight_measurement
from edge_agent.gatt import MalformedError, Skip, TruncatedError, decode_weight_measurement
from vitals import Kind

KG_PER_LB = Fraction("0.45359237")


def test_si_weight_without_options() -> None:
    # 00 flags: SI; a03c = 0x3ca0 = 15520 × 0.005 kg = 77.6 kg
    record = decode_weight_measurement(bytes.fromhex("00 a03c"))
    [m] = record.measurements
    assert (m.kind, m.value, m.unit, m.device_time) == (Kind.BODY_WEIGHT, 77.6, "kg", None)


def test_si_weight_with_every_field() -> None:
    # 0e flags: time stamp, user id, BMI and height; a03c 77.6 kg; e8070c19071e00 2024-12-25 07:30:00
    # 01 user 1; f500 = 245 × 0.1 = 24.5 kg/m²; af06 = 1711 × 0.001 m = 1.711 m
    record = decode_weight_measurement(bytes.fromhex("0e a03c e8070c19071e00 01 f500 af06"))
    assert record.measurements[0].value == 77.6
    assert record.device_time == datetime(2024, 12, 25, 7, 30)
    assert (record.user_id, record.bmi, record.height_m) == (1, 24.5, 1.711)


def test_imperial_weight_and_height_are_converted() -> None:
    # 09 flags: imperial, BMI and height; 8246 = 0x4682 = 18050 × 0.01 lb = 180.50 lb
    # f500 BMI 24.5; bc02 = 700 × 0.1 in = 70.0 in = 1.778 m
    record = decode_weight_measurement(bytes.fromhex("09 8246 f500 bc02"))
    assert record.measurements[0].value == pytest.approx(81.87342279, abs=1e-8)
    assert record.height_m == pytest.approx(1.778)
    assert record.device_unit == "[lb_av]"


def test_unsuccessful_measurement_yields_no_weight() -> None:
    # ffff = "measurement unsuccessful"; time stamp and user id may still be sent
    record = decode_weight_measurement(bytes.fromhex("06 ffff e8070c19071e00 02"))
    assert record.measurements == ()
    assert record.skipped == (Skip("weight", "measurement_unsuccessful"),)
    assert record.user_id == 2


@pytest.mark.parametrize("hex_bytes", ["", "00 a0", "02 a03c e807", "04 a03c", "08 a03c f500"])
def test_truncated_payloads_raise_truncated_error(hex_bytes: str) -> None:
    with pytest.raises(TruncatedError):
        decode_weight_measurement(bytes.fromhex(hex_bytes))


def test_trailing_bytes_are_malformed_but_reserved_flags_are_ignored() -> None:
    with pytest.raises(MalformedError):
        decode_weight_measurement(bytes.fromhex("00 a03c 00"))
    assert decode_weight_measurement(bytes.fromhex("10 a03c 0000")).measurements[0].value == 77.6


@given(
    st.none() | st.integers(0, 0xFFFE),
    st.booleans(),
    st.none() | st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(lambda t: t.replace(microsecond=0)),
    st.none() | st.integers(0, 255),
    st.none() | st.tuples(st.integers(0, 0xFFFE), st.integers(0, 0xFFFE)),
)
def test_encoded_measurements_decode_to_what_the_simulator_sent(
    steps: int | None,
    imperial: bool,
    time_stamp: datetime | None,
    user_id: int | None,
    bmi_height_steps: tuple[int, int] | None,
) -> None:
    weight = None if steps is None else float(Fraction(steps, 100 if imperial else 200))
    bmi = height = height_m = None
    if bmi_height_steps is not None:
        bmi = float(Fraction(bmi_height_steps[0], 10))
        height = float(Fraction(bmi_height_steps[1], 10 if imperial else 1000))
        height_m = float(Fraction(bmi_height_steps[1], 10) * Fraction("0.0254")) if imperial else height
    data = encode_weight_measurement(
        weight, unit="[lb_av]" if imperial else "kg", time_stamp=time_stamp, user_id=user_id, bmi=bmi, height=height
    )
    record = decode_weight_measurement(data)
    if steps is None:
        assert record.measurements == ()
    else:
        kg = Fraction(steps, 100) * KG_PER_LB if imperial else Fraction(steps, 200)
        assert [m.value for m in record.measurements] == [float(kg)]
    assert (record.device_time, record.user_id, record.bmi, record.height_m) == (time_stamp, user_id, bmi, height_m)


@given(st.floats(min_value=0, max_value=327.67), st.booleans())
def test_any_weight_comes_back_within_half_a_step(value: float, imperial: bool) -> None:
    record = decode_weight_measurement(encode_weight_measurement(value, unit="[lb_av]" if imperial else "kg"))
    kg = value * float(KG_PER_LB) if imperial else value
    half_step = 0.005 * float(KG_PER_LB) if imperial else 0.0025
    assert abs(record.measurements[0].value - kg) <= half_step + 1e-9
