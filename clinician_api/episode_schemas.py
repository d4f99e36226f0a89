"""Request and response models of episodes of follow-up and hand-overs (`routes/episodes.py`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from store.episodes import Episode, Handover
from vitals.vocabulary import Protocol as Protocol

EpisodeStatus = Literal["active", "finished"]
HandoverState = Literal["proposed", "accepted", "declined", "withdrawn"]
AccessBasis = Literal["team", "emergency", "consultative", "handover"]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Long = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
OptionalLong = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
Condition = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

_In = ConfigDict(extra="forbid")


class Enrolment(BaseModel):
    model_config = _In
    reason: Short
    conditions: list[Condition] = Field(default_factory=list, max_length=20)
    protocol: Protocol = "general"
    plan: OptionalLong = ""
    team_id: UUID | None = Field(
        default=None, description="The responsible team (one of yours; default: the patient's)"
    )


class EpisodeChange(BaseModel):
    model_config = _In
    reason: Short | None = None
    conditions: list[Condition] | None = Field(default=None, max_length=20)
    protocol: Protocol | None = None
    plan: OptionalLong | None = None


class Discharge(BaseModel):
    model_config = _In
    reason: Short
    summary: OptionalLong = ""


class HandoverNoteIn(BaseModel):
    model_config = _In
    situation: Long
    plan: Long
    open_alarms: OptionalLong = ""
    watch: Long


class HandoverProposal(HandoverNoteIn):
    to_team_id: UUID
    consult_days: int | None = Field(
        default=None, ge=1, le=365, description="Days the former team keeps read-only access after acceptance"
    )


class HandoverDecline(BaseModel):
    model_config = _In
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=1000)]


class CurrentEpisode(BaseModel):
    """The patient's current episode as the patient list shows it (None: not enrolled in follow-up)."""

    id: UUID
    status: EpisodeStatus
    team_id: UUID
    team_name: str
    organisation_name: str | None
    reason: str
    started_at: datetime
    pending_handover_id: UUID | None = None
    pending_to_team_name: str | None = None


class EpisodeOut(BaseModel):
    id: UUID
    patient_id: UUID
    status: EpisodeStatus
    team_id: UUID
    team_name: str
    organisation_id: UUID | None
    organisation_name: str | None
    reason: str
    conditions: list[str]
    protocol: str
    plan: str
    care_manager_id: UUID | None
    started_at: datetime
    ended_at: datetime | None
    discharge_reason: str | None
    discharge_summary: str | None
    updated_at: datetime

    @classmethod
    def of(cls, e: Episode) -> EpisodeOut:
        return cls.model_validate(e, from_attributes=True)


class HandoverOut(BaseModel):
    id: UUID
    episode_id: UUID
    patient_id: UUID
    patient_name: str
    from_team_id: UUID
    from_team_name: str
    from_organisation_name: str | None
    to_team_id: UUID
    to_team_name: str
    to_organisation_name: str | None
    state: HandoverState
    situation: str
    plan: str
    open_alarms: str
    open_alarm_ids: list[UUID]
    watch: str
    consult_days: int | None
    proposed_by: UUID
    proposed_at: datetime
    decided_by: UUID | None
    decided_at: datetime | None
    decline_reason: str | None

    @classmethod
    def of(cls, h: Handover) -> HandoverOut:
        return cls.model_validate(h, from_attributes=True)


class EpisodeEventOut(BaseModel):
    id: int
    episode_id: UUID
    at: datetime
    kind: str
    username: str | None
    team_id: UUID
    team_name: str
    handover_id: UUID | None
    detail: dict[str, Any]


class HandoverDraft(BaseModel):
    situation: str
    plan: str
    open_alarms: str
    watch: str


class TeamChoice(BaseModel):
    id: UUID
    name: str
    organisation_name: str | None


class EpisodeHistory(BaseModel):
    """Every episode of the patient (newest first), their hand-overs and steps, and what the caller may do."""

    access: AccessBasis
    current: EpisodeOut | None
    episodes: list[EpisodeOut]
    handovers: list[HandoverOut]
    events: list[EpisodeEventOut]
    receiving_teams: list[TeamChoice] = Field(description="Teams a hand-over may go to (empty when you may not)")


class HandoverList(BaseModel):
    items: list[HandoverOut]
