"""Request and response models of the clinician API (kept apart from the SQL that fills them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from clinician_api.episode_schemas import AccessBasis, CurrentEpisode
from vitals import Kind
from vitals.plan import PlanContent
from vitals.plan import TrendName as TrendName
from vitals.vocabulary import AlarmState as AlarmState
from vitals.vocabulary import Condition as Condition
from vitals.vocabulary import Protocol
from vitals.vocabulary import Role as Role
from vitals.vocabulary import Severity as Severity

Bucket = Literal["hour", "day", "week"]
LimitName = Literal["red_low", "yellow_low", "yellow_high", "red_high"]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]

_In = ConfigDict(extra="forbid")


# --- auth -------------------------------------------------------------------------------------------------------


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds until the token expires")
    idle_timeout: int | None = Field(
        default=None, description="Dashboard sessions: seconds without use after which the session ends"
    )


class Team(BaseModel):
    id: UUID
    name: str


class Me(BaseModel):
    id: UUID
    username: str
    display_name: str
    role: Role
    teams: list[Team]
    emergency_access: list[EmergencyAccess]
    lead_of: list[UUID] = Field(default_factory=list, description="Care teams the caller leads (reads their audit log)")


# --- alarms -----------------------------------------------------------------------------------------------------


class Notified(BaseModel):
    label: str
    channel: str
    state: Literal["pending", "sent", "failed"]
    sent_at: datetime | None = None


class Alarm(BaseModel):
    id: UUID
    patient_id: UUID
    patient_name: str
    team_id: UUID
    rule: str
    kind: str | None
    unit: str | None
    severity: Severity
    state: AlarmState
    opened_at: datetime
    updated_at: datetime
    count: int
    first_value: float | None
    last_value: float | None
    limit_value: float | None
    last_measured_at: datetime | None
    explanation: str = Field(description="The explanation in the language asked for (`lang`)")
    explanation_nb: str
    explanation_en: str
    back_in_range: bool = Field(description="A later reading of the same kind was back within the limits")
    escalated: bool
    escalated_at: datetime | None
    assignee_id: UUID | None
    assignee_name: str | None
    acknowledged_at: datetime | None
    acknowledged_by: UUID | None
    resolved_at: datetime | None
    resolved_by: UUID | None
    resolution: str | None
    headline: str = Field(description="The reading that set the severity, explained (`lang`): the alarm's headline")
    headline_value: float | None = Field(description="The value that set the severity")
    headline_measured_at: datetime | None = Field(description="When that value was measured (device time)")
    headline_received_at: datetime | None = Field(description="When that value reached the platform")
    act_group: str | None = Field(
        description="The measurement act (e.g. one cuff inflation) the headline reading belongs to; alarms with "
        "the same act_group are one event for the nurse"
    )
    last_note: str | None = None
    last_note_at: datetime | None = None
    last_note_by: str | None = None
    notified: list[Notified] = Field(default_factory=list, description="Escalation notices and their delivery")


class AlarmPage(BaseModel):
    items: list[Alarm]
    next: str | None = Field(description="Opaque cursor of the next page; null on the last page")


class AlarmEvent(BaseModel):
    id: int
    at: datetime
    event: str
    actor_id: UUID | None
    actor_name: str | None
    data: dict[str, Any]


class AlarmDetail(Alarm):
    events: list[AlarmEvent]


class AssignRequest(BaseModel):
    model_config = _In

    assignee: Literal["me"] | UUID | None = Field(
        description='"me", the id of a user in the patient\'s care team, or null to unassign'
    )


class NoteRequest(BaseModel):
    model_config = _In

    text: Text


class ResolveRequest(BaseModel):
    model_config = _In

    resolution: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000)]


class BulkAcknowledgeRequest(BaseModel):
    model_config = _In

    alarm_ids: list[UUID] = Field(min_length=1, max_length=200)
    note: Text | None = None
    send_receipt: bool = Field(default=False, description="Tell the patients' gateways that the readings were seen")


class GroupActionRequest(BaseModel):
    """One action on the alarms of one patient that the nurse sees as one event (one measurement act, or all of
    the patient's alarms)."""

    model_config = _In

    alarm_ids: list[UUID] = Field(min_length=1, max_length=50)
    text: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = Field(
        default=None, description="The note (note) or what was done (resolve, at least 3 characters)"
    )


class GroupActionResult(BaseModel):
    changed: list[UUID]
    unchanged: list[UUID] = Field(description="Alarms already in the state asked for")
    items: list[Alarm]


class ReceiptDelivery(BaseModel):
    gateway_id: str
    published: bool
    error: str | None = None


class BulkAcknowledgeResult(BaseModel):
    acknowledged: list[UUID]
    unchanged: list[UUID] = Field(description="Already acknowledged or resolved; left as they were")
    receipts: list[ReceiptDelivery]


# --- patients ---------------------------------------------------------------------------------------------------


class WorstAlarm(BaseModel):
    id: UUID
    severity: Severity
    rule: str
    state: AlarmState
    opened_at: datetime


class PatientSummary(BaseModel):
    id: UUID
    display_name: str
    protocol: str
    team_id: UUID
    team_name: str
    open_alarms: int
    worst_alarm: WorstAlarm | None
    last_measured_at: datetime | None
    emergency_access: bool = Field(description="Visible only through an emergency access")
    access: AccessBasis = Field(
        default="team",
        description="Why you see the patient: responsible team, emergency access, or read-only (consultative access, "
        "or a hand-over to your team awaiting your answer)",
    )
    episode: CurrentEpisode | None = Field(default=None, description="The current episode (None: not enrolled)")


class PatientPage(BaseModel):
    items: list[PatientSummary]
    next: str | None


class DeviceStatusOut(BaseModel):
    address: str
    type: str
    model: str | None
    battery_percent: int | None
    first_seen_at: datetime
    last_seen_at: datetime


class GatewayOut(BaseModel):
    id: str
    enabled: bool
    state: Literal["online", "offline"] | None
    last_seen_at: datetime | None
    agent_version: str | None
    outbox_depth: int | None
    devices: list[DeviceStatusOut]


class PatientConditionsOut(BaseModel):
    patient_id: UUID
    protocol: str = Field(description="The primary condition ('general' when the patient has none)")
    conditions: list[Condition] = Field(description="Every condition, the primary first; the rules compose them")


class ConditionsEdit(BaseModel):
    """The patient's conditions, all of them (replaces the list). `primary` defaults to the first named."""

    model_config = _In

    conditions: list[Condition] = Field(max_length=4)
    primary: Condition | None = None


class PatientDetail(PatientSummary):
    conditions: list[Condition] = Field(default_factory=list, description="Every condition, the primary first")
    birth_date: date | None
    national_id: str | None
    timezone: str
    active: bool
    active_plan_version: int | None
    gateways: list[GatewayOut]


class EmergencyAccessRequest(BaseModel):
    model_config = _In

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=1000)]
    minutes: int = Field(default=60, ge=5, le=240)


class EmergencyAccess(BaseModel):
    id: UUID
    patient_id: UUID
    reason: str
    granted_at: datetime
    expires_at: datetime


class AccessLogEntry(BaseModel):
    id: int
    at: datetime
    user_id: UUID | None
    username: str | None
    role: str | None
    team_id: UUID | None
    action: str
    resource: str
    outcome: str
    emergency: bool
    reason: str | None


class AccessLogPage(BaseModel):
    items: list[AccessLogEntry]
    next: str | None


class AuditEntry(AccessLogEntry):
    patient_id: UUID | None
    client_addr: str | None
    patient_name: str | None = Field(default=None, description="For patients in the caller's own teams")


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next: str | None


# --- measurements -----------------------------------------------------------------------------------------------


class DeviceRefOut(BaseModel):
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
    device: DeviceRefOut
    gateway_id: str
    group: str | None
    flags: list[str]


class MeasurementPage(BaseModel):
    items: list[Measurement]
    next: str | None


class TrendBucket(BaseModel):
    start: datetime
    min: float
    avg: float
    max: float
    count: int


class TrendSeries(BaseModel):
    kind: Kind
    unit: str
    bucket: Bucket
    timezone: str = Field(description="Buckets start at local midnight / hour / Monday in this time zone")
    from_: datetime = Field(alias="from")
    to: datetime
    items: list[TrendBucket]

    model_config = ConfigDict(populate_by_name=True)


class LatestValue(BaseModel):
    kind: Kind
    unit: str
    value: float
    measured_at: datetime
    reading_id: UUID
    zone: Literal["green", "yellow", "red"] = Field(description="Judged by the patient's effective limits now")
    breached: LimitName | None = Field(description="The limit the value is beyond; null when green")


class LatestValues(BaseModel):
    patient_id: UUID
    items: list[LatestValue] = Field(description="The newest reading of each kind the patient has measured")


# --- thresholds -------------------------------------------------------------------------------------------------


LimitOrigin = Protocol | Literal["spo2_scale2"]


class LimitValue(BaseModel):
    value: float | None = Field(description="null: no limit on this side")
    source: Literal["protocol", "personal", "hard_floor", "override", "plan", "none"] = Field(
        description="protocol default, personal (after the run-in, from the patient's own baseline), hard_floor "
        "(absolute red limit), set by hand (override) or by the active plan, or none"
    )
    condition: LimitOrigin | None = Field(
        default=None,
        description="For a protocol default: the condition it came from (the safer of the patient's conditions), "
        "'general' when no condition sets it, 'spo2_scale2' for the NEWS2 scale 2 target",
    )


class PersonalBaseline(BaseModel):
    """The patient's usual value of a kind, from which the personal limits are drawn (rules_engine.personal)."""

    version: int
    centre: float = Field(description="Median of the baseline window")
    spread: float = Field(description="Robust standard deviation (MAD × 1.4826)")
    n: int = Field(description="Readings in the baseline window")
    computed_at: datetime
    window_start: datetime | None
    window_end: datetime | None


class KindProfile(BaseModel):
    kind: Kind
    unit: str
    red_low: LimitValue
    yellow_low: LimitValue
    yellow_high: LimitValue
    red_high: LimitValue
    personal: PersonalBaseline | None = Field(
        default=None, description="The personal baseline in force; null before the run-in is over"
    )


class TrendValue(BaseModel):
    setting: TrendName
    value: float | None = Field(description="null: the trend rule is off for this patient")
    source: Literal["protocol", "override", "plan", "none"]
    condition: LimitOrigin | None = Field(
        default=None, description="For a protocol default: the condition it came from"
    )


class ThresholdProfile(BaseModel):
    patient_id: UUID
    protocol: str
    conditions: list[Condition] = Field(default_factory=list, description="Every condition, the primary first")
    spo2_scale: Literal[1, 2] = Field(default=1, description="NEWS2 SpO2 scale of the active plan")
    on_oxygen: bool = Field(default=False, description="Home oxygen in the active plan")
    kinds: list[KindProfile]
    followed_kinds: list[Kind] = Field(
        default_factory=list,
        description="The kinds the patient's protocol follows, plus any the patient has readings or own limits for",
    )
    trends: list[TrendValue] = Field(default_factory=list, description="Trend rules: weight gain, baseline drift")


# Finite only: a NaN is how "off" is stored, so a NaN sent as a number must never pass for it.
LimitEdit = Annotated[float, Field(allow_inf_nan=False)] | Literal["off"] | None


class KindLimitsEdit(BaseModel):
    """New limits of one kind. A number overrides the protocol, null inherits it, "off" removes that limit."""

    model_config = _In

    unit: str = Field(description="The kind's canonical UCUM unit, stated so a limit is never read in the wrong unit")
    red_low: LimitEdit = None
    yellow_low: LimitEdit = None
    yellow_high: LimitEdit = None
    red_high: LimitEdit = None


class ThresholdEdit(BaseModel):
    """Limits of some kinds and/or trend settings; what is not named stays as it is. A trend value: a number
    overrides the protocol, null inherits it, "off" switches the trend rule off for this patient."""

    model_config = _In

    limits: dict[Kind, KindLimitsEdit] = Field(default_factory=dict)
    trends: dict[TrendName, LimitEdit] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _something(self) -> ThresholdEdit:
        if not self.limits and not self.trends:
            raise ValueError("name at least one kind's limits or one trend setting")
        return self


class WhatIfResult(BaseModel):
    """Alarms the patient's stored readings of the last `days` days would have raised, replayed through the rules
    with the limits in force and with the proposed edit."""

    days: int
    readings: int = Field(description="readings measured in the window")
    alarms_now: int
    alarms_proposed: int
    by_rule_now: dict[str, int] = Field(description="per rule (e.g. threshold.spo2.low); 0 where it raised none")
    by_rule_proposed: dict[str, int]


# --- plans ------------------------------------------------------------------------------------------------------


class PlanVersion(BaseModel):
    id: UUID
    patient_id: UUID
    version: int
    status: Literal["draft", "active", "retired"]
    created_at: datetime
    created_by: UUID | None
    activated_at: datetime | None
    retired_at: datetime | None
    body: PlanContent


class PlanList(BaseModel):
    items: list[PlanVersion]


class PlanActivation(PlanVersion):
    published_to: list[str] = Field(description="Gateways the plan was published to (retained, QoS 1)")


# --- need-driven measurement schedules --------------------------------------------------------------------------


class ScheduleStepView(BaseModel):
    kind: Kind
    zone: Literal["yellow", "red"]
    since: datetime
    until: date = Field(description="The first local day the step-up may end")
    green_days: int = Field(description="Green days counted so far")
    green_days_needed: int
    notice_nb: str = Field(description="What the patient's gateway says, in bokmål")
    notice_en: str


class ScheduleChangeView(BaseModel):
    at: datetime
    change: Literal["stepped_up", "extended", "superseded", "stepped_down", "ended"]
    kind: Kind
    zone: Literal["yellow", "red"]
    plan_version: int
    revision: int
    alarm_id: UUID | None
    details: dict[str, Any]


class MeasurementSchedule(BaseModel):
    plan_version: int | None = Field(description="The active plan's version; None without an active plan")
    revision: int = Field(description="Schedule changes so far (the gateway's `schedule_revision`)")
    stepped_up: bool
    schedule: list[dict[str, Any]] = Field(description="The measurement schedule in force")
    plan_schedule: list[dict[str, Any]] = Field(description="The plan's own (stepped-down) schedule")
    steps: list[ScheduleStepView]
    published: bool = Field(description="The gateway has been sent the schedule in force")
    publish_error: str | None
    history: list[ScheduleChangeView]


Me.model_rebuild()
