"""The receipt a nurse's action sends to the patient's gateway on `varde/v1/gw/{gateway_id}/receipts`.

It tells the patient that the readings were seen (`readings_seen`), or that the care team has answered a message in
Min oppfølging (`message_answered`; the answer itself is read there, never sent to the gateway). Like every gateway
message it carries no patient identity and no patient data.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, Strict, StringConstraints

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


__all__ = ["RECEIPT_SCHEMA", "Receipt", "ReceiptEvent"]
