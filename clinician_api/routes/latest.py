"""The newest reading of each kind for one patient, judged against the patient's effective limits: the "latest
values" panel of the dashboard's patient view in one audited request instead of one per kind."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from clinician_api import problems
from clinician_api.deps import PatientDep
from clinician_api.routes.thresholds import profile
from clinician_api.schemas import KindProfile, LatestValue, LatestValues, LimitName
from store import readings
from vitals import KINDS, Kind

router = APIRouter(prefix="/api/v1/patients", tags=["patients"], responses=problems.responses(401))

Zone = Literal["green", "yellow", "red"]


def judge(value: float, limits: KindProfile) -> tuple[Zone, LimitName | None]:
    """The zone of a value, as the rules judge it: strictly beyond a limit breaches it; red wins over yellow."""
    red_low, yellow_low = limits.red_low.value, limits.yellow_low.value
    yellow_high, red_high = limits.yellow_high.value, limits.red_high.value
    if red_low is not None and value < red_low:
        return "red", "red_low"
    if red_high is not None and value > red_high:
        return "red", "red_high"
    if yellow_low is not None and value < yellow_low:
        return "yellow", "yellow_low"
    if yellow_high is not None and value > yellow_high:
        return "yellow", "yellow_high"
    return "green", None


@router.get("/{patient_id}/latest", response_model=LatestValues, responses=problems.responses(404))
def latest_values(scope: PatientDep) -> LatestValues:
    """The newest reading per kind (one index probe per kind) with its zone under the limits in force now."""
    rows = readings.newest_per_kind(scope.conn, scope.patient_id, [k.value for k in Kind])
    limits = {p.kind: p for p in profile(scope.conn, scope.patient_id).kinds}
    order = {kind: i for i, kind in enumerate(Kind)}
    items = []
    for row in sorted(rows, key=lambda r: order[Kind(r.kind)]):
        kind = Kind(row.kind)
        zone, breached = judge(row.value, limits[kind])
        items.append(
            LatestValue(
                kind=kind,
                unit=KINDS[kind].unit,
                value=row.value,
                measured_at=row.measured_at,
                reading_id=row.id,
                zone=zone,
                breached=breached,
            )
        )
    return LatestValues(patient_id=scope.patient_id, items=items)
