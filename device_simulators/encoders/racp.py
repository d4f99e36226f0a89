"""Record Access Control Point (0x2A52) as a device answers it: parse the gateway's request, encode the response."""

from __future__ import annotations

from dataclasses import dataclass

REPORT_STORED_RECORDS = 0x01
DELETE_STORED_RECORDS = 0x02
ABORT_OPERATION = 0x03
REPORT_NUMBER_OF_STORED_RECORDS = 0x04
NUMBER_OF_STORED_RECORDS_RESPONSE = 0x05
RESPONSE_CODE = 0x06

OPERATOR_NULL = 0x00
OPERATOR_ALL = 0x01
OPERATOR_LESS_OR_EQUAL = 0x02
OPERATOR_GREATER_OR_EQUAL = 0x03
OPERATOR_WITHIN_RANGE = 0x04
OPERATOR_FIRST = 0x05
OPERATOR_LAST = 0x06
FILTER_SEQUENCE_NUMBER = 0x01

RESPONSE_CODES = {
    "success": 0x01,
    "opcode_not_supported": 0x02,
    "invalid_operator": 0x03,
    "operator_not_supported": 0x04,
    "invalid_operand": 0x05,
    "no_records_found": 0x06,
    "abort_unsuccessful": 0x07,
    "procedure_not_completed": 0x08,
    "operand_not_supported": 0x09,
}


@dataclass(frozen=True, slots=True)
class RacpRequest:
    opcode: int
    operator: int
    min_sequence: int | None = None
    """For "greater than or equal" on sequence number: the first sequence number asked for."""


def parse_racp_request(data: bytes) -> RacpRequest:
    """What the gateway asked for; ValueError (answer "invalid operand") for anything this simulator cannot parse."""
    if len(data) < 2:
        raise ValueError(f"RACP request needs opcode and operator, got {len(data)} bytes")
    opcode, operator, operand = data[0], data[1], data[2:]
    if operator == OPERATOR_GREATER_OR_EQUAL:
        if len(operand) != 3 or operand[0] != FILTER_SEQUENCE_NUMBER:
            raise ValueError(f"expected a sequence-number operand, got {operand.hex()}")
        return RacpRequest(opcode, operator, int.from_bytes(operand[1:3], "little"))
    if operand:
        raise ValueError(f"operator 0x{operator:02x} takes no operand here, got {operand.hex()}")
    return RacpRequest(opcode, operator)


def encode_number_of_stored_records(count: int) -> bytes:
    return bytes((NUMBER_OF_STORED_RECORDS_RESPONSE, OPERATOR_NULL)) + count.to_bytes(2, "little")


def encode_response_code(request_opcode: int, result: str) -> bytes:
    if result not in RESPONSE_CODES:
        raise ValueError(f"unknown RACP result {result!r}; known: {sorted(RESPONSE_CODES)}")
    return bytes((RESPONSE_CODE, OPERATOR_NULL, request_opcode, RESPONSE_CODES[result]))
