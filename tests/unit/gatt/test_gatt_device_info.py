"""Battery Level (0x2A19), Current Time (0x2A2B) and Record Access Control Point (0x2A52)."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_simulators.encoders import current_time as enc_time
from device_simulators.encoders import (
    encode_battery_level,
    encode_current_time,
    encode_number_of_stored_records,
    encode_response_code,
    parse_current_time_write,
    parse_racp_request,
)
from device_simulators.encoders import racp as enc_racp
from edge_agent.gatt import (
    MalformedError,
    NumberOfStoredRecords,
    RacpResult,
    ResponseCode,
    TruncatedError,
    abort_operation,
    decode_battery_level,
    decode_current_time,
    decode_racp_response,
    delete_all_records,
    report_all_records,
    report_number_of_records,
    report_records_from,
)
from edge_agent.gatt import (
    encode_current_time as gateway_encode_current_time,
)
from edge_agent.gatt.racp import Opcode


@pytest.mark.parametrize(("hex_bytes", "percent"), [("00", 0), ("37", 55), ("64", 100)])
def test_battery_level_is_a_percentage(hex_bytes: str, percent: int) -> None:
    assert decode_battery_level(bytes.fromhex(hex_bytes)).percent == percent
    assert encode_battery_level(percent) == bytes.fromhex(hex_bytes)


@pytest.mark.parametrize(
    ("hex_bytes", "error"), [("65", MalformedError), ("", TruncatedError), ("6400", MalformedError)]
)
def test_battery_level_out_of_range_or_wrong_length_is_refused(hex_bytes: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_battery_level(bytes.fromhex(hex_bytes))


def test_current_time_decodes_date_weekday_fraction_and_reason() -> None:
    # e807 0c 19 07 1e 00 = 2024-12-25 07:30:00; 03 Wednesday; 80 = 128/256 s; 01 manual time update
    when = decode_current_time(bytes.fromhex("e8070c19071e00 03 80 01"))
    assert when.exact_time == datetime(2024, 12, 25, 7, 30, 0, 500000)
    assert (when.day_of_week, when.fractions256, when.adjust_reasons) == (3, 128, ("manual_time_update",))


def test_gateway_writes_the_clock_in_the_same_layout() -> None:
    assert gateway_encode_current_time(datetime(2024, 12, 25, 7, 30, 0, 500000)) == bytes.fromhex(
        "e8070c19071e00 03 80 01"
    )
    assert gateway_encode_current_time(datetime(2024, 12, 25, 7, 30), ("external_reference_time_update",))[-1] == 0x02


def test_a_clock_never_set_reads_as_unknown() -> None:
    when = decode_current_time(bytes(10))
    assert (when.exact_time, when.day_of_week) == (None, None)


@pytest.mark.parametrize(
    ("hex_bytes", "error"), [("e8070c19071e0003", TruncatedError), ("e8070c19071e00 09 00 00", MalformedError)]
)
def test_bad_current_time_is_refused(hex_bytes: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_current_time(bytes.fromhex(hex_bytes))


def test_gateway_refuses_unknown_adjust_reasons() -> None:
    with pytest.raises(ValueError, match="unknown adjust reasons"):
        gateway_encode_current_time(datetime(2024, 1, 1), ("leap_second",))


clock_times = st.datetimes(datetime(1582, 1, 1), datetime(9999, 12, 31))
reasons = st.lists(st.sampled_from(sorted(enc_time.ADJUST_REASONS)), unique=True)


@given(clock_times, reasons)
def test_simulated_clock_reads_back_to_the_1_256_second(when: datetime, adjust: list[str]) -> None:
    decoded = decode_current_time(encode_current_time(when, adjust))
    assert decoded.exact_time is not None
    assert abs((decoded.exact_time - when).total_seconds()) < 1 / 256
    assert decoded.day_of_week == when.isoweekday()
    assert set(decoded.adjust_reasons) == set(adjust)


@given(clock_times)
def test_simulator_accepts_the_gateways_clock_write(when: datetime) -> None:
    written = gateway_encode_current_time(when)
    assert abs((parse_current_time_write(written) - when).total_seconds()) < 1 / 256
    assert encode_current_time(parse_current_time_write(written), ["manual_time_update"]) == written


def test_racp_requests_are_byte_exact() -> None:
    assert report_all_records() == bytes.fromhex("0101")  # opcode 01 report stored records, operator 01 all
    assert report_records_from(0x0105) == bytes.fromhex("01 03 01 0501")  # ≥, filter 01 sequence number, 0x0105
    assert report_number_of_records() == bytes.fromhex("0401")
    assert report_number_of_records(7) == bytes.fromhex("04 03 01 0700")
    assert delete_all_records() == bytes.fromhex("0201")
    assert abort_operation() == bytes.fromhex("0300")  # abort takes the null operator


def test_racp_number_of_records_response() -> None:
    # 05 number of stored records response, 00 null operator, 0a00 = 10 records
    assert decode_racp_response(bytes.fromhex("05 00 0a00")) == NumberOfStoredRecords(10)


@pytest.mark.parametrize(
    ("hex_bytes", "request_opcode", "code"),
    [
        ("06 00 01 01", Opcode.REPORT_STORED_RECORDS, ResponseCode.SUCCESS),
        ("06 00 01 06", Opcode.REPORT_STORED_RECORDS, ResponseCode.NO_RECORDS_FOUND),
        ("06 00 03 07", Opcode.ABORT_OPERATION, ResponseCode.ABORT_UNSUCCESSFUL),
        ("06 00 04 04", Opcode.REPORT_NUMBER_OF_STORED_RECORDS, ResponseCode.OPERATOR_NOT_SUPPORTED),
    ],
)
def test_racp_response_codes_name_request_and_result(
    hex_bytes: str, request_opcode: Opcode, code: ResponseCode
) -> None:
    result = decode_racp_response(bytes.fromhex(hex_bytes))
    assert result == RacpResult(request_opcode, code)
    assert isinstance(result, RacpResult)
    assert result.succeeded is (code is ResponseCode.SUCCESS)


@pytest.mark.parametrize(
    ("hex_bytes", "error"),
    [
        ("05 00 0a", TruncatedError),
        ("06 00 01", TruncatedError),
        ("01 01", MalformedError),  # a request is not a response
        ("05 01 0a00", MalformedError),  # responses use the null operator
        ("06 00 01 0f", MalformedError),  # unknown response code
        ("05 00 0a00 00", MalformedError),
    ],
)
def test_bad_racp_responses_are_refused(hex_bytes: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_racp_response(bytes.fromhex(hex_bytes))


@given(st.integers(0, 0xFFFF))
def test_simulator_understands_every_gateway_request(sequence: int) -> None:
    request = parse_racp_request(report_records_from(sequence))
    assert (request.opcode, request.operator, request.min_sequence) == (1, 3, sequence)
    assert parse_racp_request(report_number_of_records(sequence)).min_sequence == sequence
    assert parse_racp_request(report_all_records()).min_sequence is None
    assert decode_racp_response(encode_number_of_stored_records(sequence)) == NumberOfStoredRecords(sequence)


@given(st.sampled_from([1, 2, 3, 4]), st.sampled_from(sorted(enc_racp.RESPONSE_CODES)))
def test_simulator_response_codes_decode_to_the_same_result(request_opcode: int, result: str) -> None:
    decoded = decode_racp_response(encode_response_code(request_opcode, result))
    assert decoded == RacpResult(Opcode(request_opcode), ResponseCode[result.upper()])
