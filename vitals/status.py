"""The retained gateway status message (also the Last Will, with state `offline`)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


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
