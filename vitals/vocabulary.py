"""The domain's closed word lists: protocols and conditions, roles, alarm severities (with their one rank order) and
alarm states.

Every Python module takes these names from here. The database's CHECK constraints (`store/migrations/`) and the
dashboard's JavaScript constants (`clinician_api/static/js/`) hold copies that cannot import Python; the vocabulary
drift test (`tests/unit/test_vocabulary_drift.py`) fails when one of them differs from the lists here.
"""

from __future__ import annotations

from typing import Literal, get_args

Protocol = Literal["general", "heart_failure", "copd", "diabetes", "hypertension"]
"""A follow-up protocol: the rules' default limits for a patient. 'general' is the protocol of no condition."""
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)
"""In this order; `rules_engine.profiles` uses the position as the protocol code in its arrays."""

Condition = Literal["heart_failure", "copd", "diabetes", "hypertension"]
"""A chronic condition a patient is followed up for: every protocol but 'general'."""
CONDITIONS: tuple[Condition, ...] = get_args(Condition)

Role = Literal["nurse", "physician", "admin", "data_export"]
"""A staff user's role (`users.role`).

- `nurse`, `physician`: clinicians; see their care teams' patients (and break the glass).
- `admin`: operates the platform; no clinical duty of care.
- `data_export`: runs FHIR bulk exports of its care teams' patients, and nothing else.
"""
ROLES: tuple[Role, ...] = get_args(Role)
CLINICAL_ROLES: tuple[Role, ...] = ("nurse", "physician")
CARE_STAFF_ROLES: tuple[Role, ...] = ("nurse", "physician", "admin")
"""The staff who write to and are written to by patients (messages); `data_export` never does."""

CitizenRole = Literal["patient", "relative"]
"""Who acts in the patients' web app `/min/`: the patient or a relative holding a proxy."""
CITIZEN_ROLES: tuple[CitizenRole, ...] = get_args(CitizenRole)

AuthorRole = Literal["patient", "relative", "nurse", "physician", "admin"]
"""Who can write a message: a citizen or a care staff member."""
AUTHOR_ROLES: tuple[AuthorRole, ...] = get_args(AuthorRole)

Severity = Literal["red", "yellow", "missed", "needs_review"]
"""An alarm's severity. `missed`: a scheduled measurement did not arrive; `needs_review`: a drift from the
patient's own baseline, not a breach of a limit."""
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
"""The one rank order of severities: worst first. Every ranking follows it — the queue's `alarms.severity_rank`
column, the alarm upsert's "keep the worst", the dashboard's sort."""
SEVERITY_RANK: dict[Severity, int] = {s: rank for rank, s in enumerate(SEVERITIES)}
"""0 is the worst (red) and sorts first; a lower rank is a worse alarm."""

AlarmState = Literal["open", "acknowledged", "resolved"]
"""An alarm's lifecycle: open → acknowledged → resolved (acknowledging may be skipped)."""
ALARM_STATES: tuple[AlarmState, ...] = get_args(AlarmState)
UNRESOLVED_STATES: tuple[AlarmState, ...] = ("open", "acknowledged")
"""The states of an alarm still in the queue; at most one such alarm per patient and rule."""


__all__ = [
    "ALARM_STATES",
    "AUTHOR_ROLES",
    "CARE_STAFF_ROLES",
    "CITIZEN_ROLES",
    "CLINICAL_ROLES",
    "CONDITIONS",
    "PROTOCOLS",
    "ROLES",
    "SEVERITIES",
    "SEVERITY_RANK",
    "UNRESOLVED_STATES",
    "AlarmState",
    "AuthorRole",
    "CitizenRole",
    "Condition",
    "Protocol",
    "Role",
    "Severity",
]
