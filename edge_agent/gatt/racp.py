"""Record Access Control Point (0x2A52): the requests a gateway writes and the responses it is indicated.

Covers what the gateway needs to fetch stored records from glucose meters, blood pressure monitors and oximeters:
report all, report from a sequence number (operand filter type 0x01), number of stored records, abort, delete all.
Responses are "Number of Stored Records" (uint16) and "Response Code" (request opcode + result).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from edge_agent.gatt._cursor import Cursor
from edge_agent.gatt.errors import MalformedError
from edge_agent.gatt.models import Payload

RECORD_ACCESS_CONTROL_POINT = 0x2A52
_CHARACTERISTIC = "record_access_control_point"


class Opcode(IntEnum):
    REPORT_STORED_RECORDS = 0x01
    DELETE_STORED_RECORDS = 0x02
    ABORT_OPERATION = 0x03
    REPORT_NUMBER_OF_STORED_RECORDS = 0x04
    NUMBER_OF_STORED_RECORDS_RESPONSE = 0x05
    RESPONSE_CODE = 0x06


class Operator(IntEnum):
    NULL = 0x00
    ALL_RECORDS = 0x01
    LESS_THAN_OR_EQUAL = 0x02
    GREATER_THAN_OR_EQUAL = 0x03
    WITHIN_RANGE = 0x04
    FIRST_RECORD = 0x05
    LAST_RECORD = 0x06


class FilterType(IntEnum):
    SEQUENCE_NUMBER = 0x01
    USER_FACING_TIME = 0x02


class ResponseCode(IntEnum):
    SUCCESS = 0x01
    OPCODE_NOT_SUPPORTED = 0x02
    INVALID_OPERATOR = 0x03
    OPERATOR_NOT_SUPPORTED = 0x04
    INVALID_OPERAND = 0x05
    NO_RECORDS_FOUND = 0x06
    ABORT_UNSUCCESSFUL = 0x07
    PROCEDURE_NOT_COMPLETED = 0x08
    OPERAND_NOT_SUPPORTED = 0x09


@dataclass(frozen=True, slots=True)
class NumberOfStoredRecords:
    count: int


@dataclass(frozen=True, slots=True)
class RacpResult:
    request_opcode: Opcode
    code: ResponseCode

    @property
    def succeeded(self) -> bool:
        return self.code is ResponseCode.SUCCESS


def _sequence_operand(sequence: int) -> bytes:
    if not 0 <= sequence <= 0xFFFF:
        raise ValueError(f"sequence number {sequence} is not a uint16")
    return bytes((FilterType.SEQUENCE_NUMBER,)) + sequence.to_bytes(2, "little")


def report_all_records() -> bytes:
    return bytes((Opcode.REPORT_STORED_RECORDS, Operator.ALL_RECORDS))


def report_records_from(sequence: int) -> bytes:
    """Records with sequence number ≥ `sequence`: how a gateway fetches only what it has not seen."""
    return bytes((Opcode.REPORT_STORED_RECORDS, Operator.GREATER_THAN_OR_EQUAL)) + _sequence_operand(sequence)


def report_number_of_records(from_sequence: int | None = None) -> bytes:
    opcode = Opcode.REPORT_NUMBER_OF_STORED_RECORDS
    if from_sequence is None:
        return bytes((opcode, Operator.ALL_RECORDS))
    return bytes((opcode, Operator.GREATER_THAN_OR_EQUAL)) + _sequence_operand(from_sequence)


def delete_all_records() -> bytes:
    return bytes((Opcode.DELETE_STORED_RECORDS, Operator.ALL_RECORDS))


def abort_operation() -> bytes:
    return bytes((Opcode.ABORT_OPERATION, Operator.NULL))


def decode_racp_response(data: Payload) -> NumberOfStoredRecords | RacpResult:
    cursor = Cursor(data, _CHARACTERISTIC)
    opcode = cursor.u8("opcode")
    operator = cursor.u8("operator")
    if operator != Operator.NULL:
        raise MalformedError(_CHARACTERISTIC, f"response operator must be 0x00 (null), got 0x{operator:02x}")
    if opcode == Opcode.NUMBER_OF_STORED_RECORDS_RESPONSE:
        count = cursor.u16("number_of_records")
        cursor.finish()
        return NumberOfStoredRecords(count)
    if opcode == Opcode.RESPONSE_CODE:
        request, code = cursor.u8("request_opcode"), cursor.u8("response_code")
        cursor.finish()
        try:
            return RacpResult(Opcode(request), ResponseCode(code))
        except ValueError:
            raise MalformedError(
                _CHARACTERISTIC, f"unknown request opcode 0x{request:02x} or response code 0x{code:02x}"
            ) from None
    raise MalformedError(_CHARACTERISTIC, f"opcode 0x{opcode:02x} is not a response")
