"""Messages to the patient's page on `varde/v1/gw/{gateway_id}/receipts`: the receipt a nurse's action sends (the
readings were seen, `readings_seen`, or the care team has answered a message in Min oppfølging, `message_answered`;
the answer itself is read there, never sent to the gateway) and the cloud's request to measure again (a single
reading was out of line). Like every gateway message they carry no patient identity and no patient data;
`parse_patient_message` tells them apart by their schema.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, Strict, StringConstraints

from vitals.kinds import Kind

RECEIPT_SCHEMA = "varde.receipt/1"
ReceiptEvent = Literal["readings_seen", "message_answered"]

Message = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class Receipt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    schema_: Literal["varde.receipt/1"] = Field(default="varde.receipt/1", alias="schema")
    id: Annotated[UUID, Strict(False)]
    event: ReceiptEvent = "readings_seen"
    at: Annotated[AwareDatetime, Strict(False)]
    nb: Message
    en: Message

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


REPEAT_SCHEMA = "varde.repeat/1"


class RepeatRequest(BaseModel):
    """Please measure `kind` again: its reading at `measured_at` was out of line. The page asks until a newer reading
    of that kind is taken or `due_at` has passed (then the cloud has opened the alarm anyway)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    schema_: Literal["varde.repeat/1"] = Field(default="varde.repeat/1", alias="schema")
    id: Annotated[UUID, Strict(False)]
    kind: Annotated[Kind, Strict(False)]
    measured_at: Annotated[AwareDatetime, Strict(False)]
    requested_at: Annotated[AwareDatetime, Strict(False)]
    due_at: Annotated[AwareDatetime, Strict(False)]

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


def parse_patient_message(payload: bytes) -> Receipt | RepeatRequest:
    """A message of the receipts topic; raises ValueError (pydantic's ValidationError) for anything else."""
    doc = json.loads(payload)
    if isinstance(doc, dict) and doc.get("schema") == REPEAT_SCHEMA:
        return RepeatRequest.model_validate_json(payload)
    return Receipt.model_validate_json(payload)


__all__ = ["RECEIPT_SCHEMA", "REPEAT_SCHEMA", "Receipt", "ReceiptEvent", "RepeatRequest", "parse_patient_message"]
