"""A patient's need-driven measurement schedule: the schedule in force, the step-ups that made it (with the words
the patient's gateway shows), whether the gateway has it, and every change. Read-only: the plan defines the
step-ups, the rules step up and down (`rules_engine.schedules`)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter

from clinician_api import problems
from clinician_api.deps import PatientDep
from clinician_api.schemas import MeasurementSchedule, ScheduleChangeView, ScheduleStepView
from store import schedules
from vitals.schedules import step_notice

router = APIRouter(prefix="/api/v1/patients", tags=["plans"], responses=problems.responses(401, 404))


@router.get("/{patient_id}/schedule", response_model=MeasurementSchedule)
def get_schedule(scope: PatientDep) -> MeasurementSchedule:
    """The measurement schedule in force and its history (newest first)."""
    conn, patient_id = scope.conn, scope.patient_id
    changes = [ScheduleChangeView.model_validate(c, from_attributes=True) for c in schedules.history(conn, patient_id)]
    plan = schedules.active_plans(conn, [patient_id]).get(patient_id)
    if plan is None:
        return MeasurementSchedule(
            plan_version=None,
            revision=0,
            stepped_up=False,
            schedule=[],
            plan_schedule=[],
            steps=[],
            published=True,
            publish_error=None,
            history=changes,
        )
    wire = schedules.wire_plan(conn, plan)
    publication = schedules.publication(conn, patient_id)
    today = datetime.now(UTC).astimezone(ZoneInfo(plan.timezone)).date()
    steps = []
    for active in wire.active_steps:
        nb, en = step_notice(wire, active, today)
        steps.append(
            ScheduleStepView(
                kind=active.kind,
                zone=active.zone,
                since=active.since,
                until=active.until,
                green_days=active.green_days,
                green_days_needed=active.green_days_needed,
                notice_nb=nb,
                notice_en=en,
            )
        )
    return MeasurementSchedule(
        plan_version=plan.version,
        revision=wire.schedule_revision,
        stepped_up=bool(steps),
        schedule=[e.model_dump(mode="json") for e in wire.schedule],
        plan_schedule=[e.model_dump(mode="json") for e in plan.body.schedule],
        steps=steps,
        published=publication is None or bool(publication.published),
        publish_error=publication.publish_error if publication is not None else None,
        history=changes,
    )
