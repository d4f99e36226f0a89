"""Request bodies of the patient app's API (responses are plain read models, see `views`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Right = Literal["read_measurements", "read_plan", "answer_questionnaires", "write_messages", "read_access_log"]
NationalId = Annotated[str, StringConstraints(pattern=r"^[0-9]{11}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Body = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

_Strict = ConfigDict(extra="forbid")


class PasswordLogin(BaseModel):
    model_config = _Strict
    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class NewThread(BaseModel):
    model_config = _Strict
    subject: Subject
    body: Body


class NewMessage(BaseModel):
    model_config = _Strict
    body: Body


Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]


class QuestionnaireAnswer(BaseModel):
    """One option chosen per question, for the plan version the questions were shown from."""

    model_config = _Strict
    plan_version: int = Field(ge=1)
    answers: dict[Slug, Slug] = Field(min_length=1, max_length=30)


class ProxyGrant(BaseModel):
    model_config = _Strict
    relative_national_id: NationalId
    relative_name: Name
    relation: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    rights: list[Right] = Field(min_length=1, max_length=5)
    valid_until: AwareDatetime


class StaffProxyGrant(ProxyGrant):
    basis: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=500)] = Field(
        description="Where the patient's wish is documented (for example: 'the patient asked by phone, note 12.03')"
    )


class ReservationChange(BaseModel):
    model_config = _Strict
    reserved: bool


class Handoff(BaseModel):
    model_config = _Strict
    code: Annotated[str, StringConstraints(min_length=20, max_length=128)]


def end_is_future(value: datetime, *, max_days: int = 3 * 366) -> str | None:
    """Why an end date is not acceptable, or None."""
    from datetime import UTC, timedelta

    now = datetime.now(UTC)
    if value <= now:
        return "the end date must be in the future"
    if value > now + timedelta(days=max_days):
        return f"a proxy may last at most {max_days} days; renew it then"
    return None
