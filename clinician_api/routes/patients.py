"""Patients and their measurements, behind the duty-of-care check."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from clinician_api import audit
from clinician_api.access import PatientAccess, Principal, patient_access
from clinician_api.deps import Conn, CurrentPrincipal, client_addr
from vitals import Kind

router = APIRouter(prefix="/api/v1/patients", tags=["patients"])


class DeviceOut(BaseModel):
    address: str | None
    type: str | None
    model: str | None


class Measurement(BaseModel):
    id: UUID
    kind: Kind
    value: float
    unit: str
    measured_at: datetime
    received_at: datetime
    device: DeviceOut
    flags: list[str]


class MeasurementPage(BaseModel):
    items: list[Measurement]
    next: str | None


def require_patient(
    conn: Conn, principal: Principal, patient_id: UUID, request: Request, resource: str
) -> PatientAccess:
    """The duty-of-care gate of every patient route: audited either way; 404 hides whether the patient exists."""
    access = patient_access(conn, principal, patient_id)
    if access is None:
        audit.record(
            conn, principal, "read", resource, "denied", patient_id=patient_id, client_addr=client_addr(request)
        )
        conn.commit()
        raise HTTPException(404, "no such patient in your care teams")
    return access


@router.get("/{patient_id}/measurements", response_model=MeasurementPage)
def measurements(
    patient_id: UUID,
    conn: Conn,
    principal: CurrentPrincipal,
    request: Request,
    kind: Kind | None = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> MeasurementPage:
    access = require_patient(conn, principal, patient_id, request, "measurements")
    where: list[str] = ["patient_id = %s"]
    params: list[Any] = [patient_id]
    if kind:
        where.append("kind = %s")
        params.append(kind.value)
    if from_:
        where.append("measured_at >= %s")
        params.append(from_)
    if to:
        where.append("measured_at < %s")
        params.append(to)
    rows = conn.execute(
        "SELECT id, kind, value, measured_at, received_at, device_address, device_type, device_model, flags "
        f"FROM readings WHERE {' AND '.join(where)} ORDER BY measured_at DESC LIMIT %s",
        [*params, limit],
    ).fetchall()
    from vitals import KINDS

    items = [
        Measurement(
            id=r[0],
            kind=r[1],
            value=r[2],
            unit=KINDS[Kind(r[1])].unit,
            measured_at=r[3],
            received_at=r[4],
            device=DeviceOut(address=r[5], type=r[6], model=r[7]),
            flags=list(r[8]),
        )
        for r in rows
    ]
    audit.record(
        conn,
        principal,
        "read",
        "measurements",
        "ok",
        patient_id=patient_id,
        client_addr=client_addr(request),
        emergency=access.emergency,
        reason=access.reason,
    )
    return MeasurementPage(items=items, next=None)
