"""The retained gateway status message (also the Last Will, with state `offline`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from vitals.envelope import EnvelopeError, Reason, load_wire_json

MAX_STATUS_DEVICES = 64
"""A home has a handful of devices; a status listing more is refused rather than costing ingest an update each."""
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class DeviceStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    address: str
    type: str
    battery_percent: int | None = Field(default=None, ge=0, le=100)
    last_seen: AwareDatetime | None = None


class GatewayStatus(BaseModel):
    model_config = ConfigDict(extra="ignore")

    state: Literal["online", "offline"]
    agent_version: str | None = None
    outbox_depth: int | None = Field(default=None, ge=0)
    outbox_full: bool = False
    devices: list[DeviceStatus] = []
    at: AwareDatetime | None = None
    plan_version: int | None = None
    """The self-management plan version the gateway shows the patient."""
    plan_problem: str | None = None
    """Why the last plan message was refused (the gateway kept its last good plan), if it was."""


def parse_status(payload: bytes) -> GatewayStatus:
    """Parse a status message as the cloud receives it: bounded like every gateway message, and refused
    (`EnvelopeError`) when a text the cloud stores holds a control character other than tab or line break."""
    doc = load_wire_json(payload)
    try:
        status = GatewayStatus.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise EnvelopeError(Reason.BAD_ENVELOPE, f"{where}: {err['msg']}") from None
    if len(status.devices) > MAX_STATUS_DEVICES:
        raise EnvelopeError(Reason.BAD_ENVELOPE, f"{len(status.devices)} devices exceeds {MAX_STATUS_DEVICES}")
    texts = {"agent_version": status.agent_version, "plan_problem": status.plan_problem}
    for i, device in enumerate(status.devices):
        texts[f"devices.{i}.address"] = device.address
        texts[f"devices.{i}.type"] = device.type
    for where, text in texts.items():
        found = _CONTROL.search(text or "")
        if found is not None:
            raise EnvelopeError(Reason.BAD_TEXT, f"{where}: holds the control character U+{ord(found.group()):04X}")
    return status
