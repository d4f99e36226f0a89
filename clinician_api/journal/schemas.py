"""Response models of the journal routes (the outbox as operators and clinicians see it: no Bundle content)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

EntryState = Literal["pending", "delivered", "failed"]
EntryKind = Literal["alarm_document", "measurements", "episode_document"]


class JournalPatient(BaseModel):
    id: UUID
    display_name: str
    team_id: UUID


class JournalEntry(BaseModel):
    id: UUID = Field(description="The Bundle's id")
    kind: EntryKind
    state: EntryState
    endpoint_id: UUID
    endpoint_name: str
    patient_ids: list[UUID]
    alarm_id: UUID | None
    subscription_id: UUID | None
    bundle_identifier: str = Field(description="Bundle.identifier (urn:uuid), stable across resends")
    resource_count: int
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None = Field(description="HTTP status of the last answer (none when unreachable)")
    last_error: str | None = Field(description="Why the last attempt failed, in the record system's words")
    location: str | None
    delivered_at: datetime | None
    created_at: datetime
    patients: list[JournalPatient] = Field(
        default_factory=list,
        description="Name and care team of each of the entry's patients you have a duty of care for "
        "(clinicians only; administrators get the ids in patient_ids)",
    )


class JournalPage(BaseModel):
    items: list[JournalEntry]
    next: str | None
