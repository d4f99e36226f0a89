"""The period summary report of a patient (clinician_api/reports): downloaded as a PDF, or journaled to the
patient's record as a FHIR DocumentReference. Both go through the duty-of-care gate and are audited."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from clinician_api import problems
from clinician_api.deps import Clinician, PatientDep
from clinician_api.problems import ProblemError
from clinician_api.reports import document, pdf, period
from store import patients

router = APIRouter(prefix="/api/v1/patients", tags=["reports"], responses=problems.responses(401, 404))

MAX_DAYS = 366
ReportLang = Literal["nb", "en"]


class PeriodRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: date = Field(description="First day of the period (the patient's local date)")
    end: date = Field(description="Last day of the period, included")
    lang: ReportLang = "nb"

    @model_validator(mode="after")
    def _check(self) -> PeriodRequest:
        if self.end < self.start:
            raise ValueError("end is before start")
        if (self.end - self.start).days >= MAX_DAYS:
            raise ValueError(f"a period is at most {MAX_DAYS} days")
        return self


class Delivery(BaseModel):
    bundle_id: str
    state: Literal["pending"] = "pending"


def _period(scope: PatientDep, body: PeriodRequest) -> tuple[period.PeriodReport, bytes]:
    zone = patients.timezone_of(scope.conn, scope.patient_id)
    tz = ZoneInfo(str(zone) if zone else "Europe/Oslo")
    start = datetime.combine(body.start, time(), tz)
    end = datetime.combine(body.end + timedelta(days=1), time(), tz)
    report = period.gather(scope.conn, scope.patient_id, start, end)
    if report is None:
        raise HTTPException(404, "no such patient in your care teams")
    report.generated_at = datetime.now(UTC)
    return report, pdf.render(report, body.lang)


@router.get(
    "/{patient_id}/reports/period.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, **problems.responses(422)},
)
def period_pdf(
    scope: PatientDep,
    start: Annotated[date, Query(description="First day (the patient's local date)")],
    end: Annotated[date, Query(description="Last day, included")],
    lang: Annotated[ReportLang, Query()] = "nb",
) -> Response:
    """The period summary as a PDF: measurements with charts and zones, alarms and what was done, plan changes,
    adherence to the measurement schedule."""
    try:
        body = PeriodRequest(start=start, end=end, lang=lang)
    except ValueError as exc:
        raise ProblemError(422, str(exc).splitlines()[-1]) from None
    scope.action = "read"
    _, content = _period(scope, body)
    name = f"varde-summary-{body.start:%Y%m%d}-{body.end:%Y%m%d}.pdf"
    return Response(
        content, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'}
    )


@router.post(
    "/{patient_id}/reports/period/deliver",
    response_model=Delivery,
    status_code=202,
    responses=problems.responses(403, 409, 422),
)
def deliver_period(scope: PatientDep, body: PeriodRequest, principal: Clinician) -> Delivery:
    """Journal the period summary to the record system of the patient's organisation (a DocumentReference with the
    PDF), through the durable outbox; the journal worker delivers it (see GET /api/v1/journal/outbox)."""
    if scope.emergency:
        raise HTTPException(403, "a report is sent to the record by the patient's own care team")
    scope.action = "journal"
    report, content = _period(scope, body)
    try:
        bundle_id = document.enqueue(scope.conn, report, content, body.lang, report.generated_at or datetime.now(UTC))
    except document.NoRecordEndpoint as exc:
        raise ProblemError(409, str(exc)) from None
    return Delivery(bundle_id=str(bundle_id))
