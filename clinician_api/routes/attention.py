"""What needs the nurse's attention besides alarms: patients whose gateway has sent no data for hours (home internet
down, gateway unplugged) and devices whose clock was wrong (the gateway corrected the times, or readings were
refused). Both come from what is stored; nothing here is a rule the engine evaluates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from clinician_api import problems
from clinician_api.access import visible_patients_named
from clinician_api.deps import Conn, CurrentPrincipal, client_addr
from store import attention as attention_store
from store import audit
from vitals import Kind

router = APIRouter(prefix="/api/v1/attention", tags=["alarms"], responses=problems.responses(401))

SILENT_HOURS = 26
"""No new measurement from a patient for this long is shown: every protocol measures at least daily, so a day and a
bit without data means the home's internet, the gateway or the devices need looking at. Judged by the newest
reading's time of measurement (a backlog that arrives late does not hide the gap), and also when the gateway itself
still reports its status."""
CLOCK_FLAGS = ["device_clock_corrected", "device_clock_reset", "device_clock_unknown"]
CLOCK_DAYS = 7


class AttentionItem(BaseModel):
    kind: Literal["silent_gateway", "device_clock"]
    patient_id: UUID
    patient_name: str
    team_id: UUID
    gateway_id: str
    since: datetime | None = Field(description="silent_gateway: the newest reading's time; device_clock: first seen")
    hours: int | None = Field(default=None, description="silent_gateway: whole hours without a reading")
    count: int = Field(default=0, description="device_clock: readings with a corrected time or refused")
    state: str | None = Field(default=None, description="The gateway's last reported state (online/offline)")


class AttentionList(BaseModel):
    items: list[AttentionItem]
    silent_hours: int


_KINDS = [k.value for k in Kind]


@router.get("", response_model=AttentionList)
def attention(
    conn: Conn,
    principal: CurrentPrincipal,
    request: Request,
    team: Annotated[list[UUID] | None, Query(description="Care team ids")] = None,
) -> AttentionList:
    """Silent gateways (no data for `silent_hours`) and device-clock warnings of the caller's patients."""
    clause, params = visible_patients_named(principal)
    found = attention_store.gateways(
        conn, clause, params, kinds=_KINDS, clock_flags=CLOCK_FLAGS, clock_days=CLOCK_DAYS, team_ids=team
    )
    now = datetime.now().astimezone()
    items: list[AttentionItem] = []
    for g in found:
        hours = int((now - g.seen).total_seconds() // 3600) if g.seen else None
        if g.seen is None or (hours is not None and hours >= SILENT_HOURS):
            items.append(
                AttentionItem(
                    kind="silent_gateway",
                    patient_id=g.patient_id,
                    patient_name=g.patient_name,
                    team_id=g.team_id,
                    gateway_id=g.gateway_id,
                    since=g.seen,
                    hours=hours,
                    state=g.state,
                )
            )
        if g.clock_warnings:
            items.append(
                AttentionItem(
                    kind="device_clock",
                    patient_id=g.patient_id,
                    patient_name=g.patient_name,
                    team_id=g.team_id,
                    gateway_id=g.gateway_id,
                    since=g.clock_first_at,
                    count=g.clock_warnings,
                    state=g.state,
                )
            )
    audit.record_patients(
        conn,
        principal,
        "list",
        request.url.path,
        sorted({i.patient_id for i in items}, key=str),
        client_addr=client_addr(request),
    )
    return AttentionList(items=items, silent_hours=SILENT_HOURS)
