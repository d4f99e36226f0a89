"""The patient side of the gateway: the self-management plan kept and judged locally, advice for each reading,
today's schedule with reminders, symptom questionnaires and nurse receipts, on a page served by the agent.

`plan_keeper` verifies plan messages and keeps the last good plan; `advice` and `schedule` are pure functions of
the plan; `journal` remembers what the screen shows across restarts; `screen` gathers it into one snapshot;
`server` serves the page (stdlib asyncio, no web framework on the gateway).
"""

from edge_agent.patient.advice import Advice, MeasurementVerdict, Verdict, evaluate_measurement, evaluate_reading
from edge_agent.patient.plan_keeper import PlanKeeper
from edge_agent.patient.schedule import ScheduleItem, todays_schedule
from edge_agent.patient.screen import NoPlanError, PatientScreen, QueueFullError
from edge_agent.patient.server import PatientScreenServer

__all__ = [
    "Advice",
    "MeasurementVerdict",
    "NoPlanError",
    "PatientScreen",
    "PatientScreenServer",
    "PlanKeeper",
    "QueueFullError",
    "ScheduleItem",
    "Verdict",
    "evaluate_measurement",
    "evaluate_reading",
    "todays_schedule",
]
