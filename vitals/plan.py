"""The self-management plan (egenbehandlingsplan) as it travels to the gateway: one wire model, strict.

The cloud publishes the patient's active plan retained on `varde/v1/gw/{gateway_id}/plan`; the gateway keeps the
last good one and shows its advice, also offline. The plan carries no patient identity (no name, no national id,
no patient id): the gateway id in the topic is the only link, as for readings.

Zones use the vocabulary of the rules: per kind four limits, the outermost *acceptable* values
(red_low ≤ yellow_low ≤ yellow_high ≤ red_high). A value strictly below red_low or above red_high is red, strictly
below yellow_low or above yellow_high is yellow, anything else green. A missing limit means "no limit on that side".
Activating a plan writes these zones into the patient's threshold overrides, so the rules and the gateway judge a
reading by the same numbers.

Integrity: `SelfManagementPlan.to_json` adds `sha256`, the digest of the plan's canonical JSON (sorted keys, no
spaces, UTF-8) without that member. Parsing verifies it when present; `parse_plan_message` (what the gateway runs)
also requires it, so a truncated or altered retained message is refused and the last good plan kept.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    model_validator,
)

from vitals.kinds import KINDS, Kind
from vitals.vocabulary import Protocol

PLAN_SCHEMA = "varde.plan/1"

# Strict: no silent coercion of numbers or booleans, no unknown fields. Enums and times are accepted from their
# JSON spelling (Strict(False) on those fields only), so the same model reads a parsed JSON object or raw bytes.
_Strict = ConfigDict(extra="forbid", frozen=True, strict=True)

KindName = Annotated[Kind, Strict(False)]
Zone = Literal["green", "yellow", "red"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
TimeOfDay = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ]{2,19}$")]

LIMIT_FIELDS = ("red_low", "yellow_low", "yellow_high", "red_high")


class ScheduledMeasurement(BaseModel):
    """Measure `kind` on `weekdays` before `deadline` (patient's local time); remind ahead of the deadline."""

    model_config = _Strict

    kind: KindName
    deadline: TimeOfDay
    weekdays: list[Weekday] = Field(min_length=1, max_length=7)
    reminder_minutes_before: int = Field(default=60, ge=0, le=720)

    @model_validator(mode="after")
    def _distinct_days(self) -> ScheduledMeasurement:
        if len(set(self.weekdays)) != len(self.weekdays):
            raise ValueError(f"schedule for {self.kind}: a weekday is listed twice")
        return self


class KindZones(BaseModel):
    """The green/yellow/red limits of one kind, in the kind's canonical unit."""

    model_config = _Strict

    kind: KindName
    unit: str
    red_low: float | None = None
    yellow_low: float | None = None
    yellow_high: float | None = None
    red_high: float | None = None

    def limits(self) -> tuple[float | None, float | None, float | None, float | None]:
        return (self.red_low, self.yellow_low, self.yellow_high, self.red_high)

    def zone_of(self, value: float) -> Zone:
        """The zone of `value` at the kind's decimals (as the cloud's rules compare it): strictly outside a red limit
        is red, strictly outside a yellow limit yellow."""
        value = KINDS[self.kind].rounded(value)
        red_low, yellow_low, yellow_high, red_high = self.limits()
        if (red_low is not None and value < red_low) or (red_high is not None and value > red_high):
            return "red"
        if (yellow_low is not None and value < yellow_low) or (yellow_high is not None and value > yellow_high):
            return "yellow"
        return "green"

    @model_validator(mode="after")
    def _unit_range_order(self) -> KindZones:
        info = KINDS[self.kind]
        if self.unit != info.unit:
            raise ValueError(f"zones for {self.kind} must be in {info.unit!r}, got {self.unit!r}")
        present: list[tuple[str, float]] = []
        for name, value in zip(LIMIT_FIELDS, self.limits(), strict=True):
            if value is None:
                continue
            if not math.isfinite(value) or not info.is_plausible(value):
                raise ValueError(f"{self.kind}.{name} {value:g} is outside the plausible range {info.range_text()}")
            present.append((name, value))
        for (low_name, low), (high_name, high) in itertools.pairwise(present):
            if low > high:
                raise ValueError(
                    f"{self.kind}: {high_name} {high:g} is below {low_name} {low:g}; "
                    "limits must satisfy red_low ≤ yellow_low ≤ yellow_high ≤ red_high"
                )
        if not present:
            raise ValueError(f"zones for {self.kind} set no limit; leave the kind out instead")
        return self


class ZoneAdvice(BaseModel):
    """What the patient should do in a zone; `kind` None is the advice for the zone in general."""

    model_config = _Strict

    zone: Zone
    kind: KindName | None = None
    nb: LongText
    en: LongText


class Contact(BaseModel):
    model_config = _Strict

    name: ShortText
    role: ShortText
    phone: Phone


class AnswerOption(BaseModel):
    model_config = _Strict

    id: Slug
    nb: ShortText
    en: ShortText
    score: int = Field(ge=0, le=100)


class Question(BaseModel):
    model_config = _Strict

    id: Slug
    nb: LongText
    en: LongText
    options: list[AnswerOption] = Field(min_length=2, max_length=10)

    @model_validator(mode="after")
    def _distinct_options(self) -> Question:
        if len({o.id for o in self.options}) != len(self.options):
            raise ValueError(f"question {self.id}: option ids must be distinct")
        return self


class Questionnaire(BaseModel):
    """A daily symptom questionnaire; the total score decides the zone (≥ red_from red, ≥ yellow_from yellow)."""

    model_config = _Strict

    id: Slug
    title_nb: ShortText
    title_en: ShortText
    deadline: TimeOfDay | None = None
    questions: list[Question] = Field(min_length=1, max_length=30)
    yellow_from: int = Field(ge=1)
    red_from: int = Field(ge=1)

    @property
    def max_score(self) -> int:
        return sum(max(o.score for o in q.options) for q in self.questions)

    def zone_of(self, total: int) -> Zone:
        if total >= self.red_from:
            return "red"
        if total >= self.yellow_from:
            return "yellow"
        return "green"

    @model_validator(mode="after")
    def _thresholds(self) -> Questionnaire:
        if len({q.id for q in self.questions}) != len(self.questions):
            raise ValueError(f"questionnaire {self.id}: question ids must be distinct")
        if self.yellow_from > self.red_from:
            raise ValueError(f"questionnaire {self.id}: yellow_from {self.yellow_from} is above red_from")
        if self.red_from > self.max_score:
            raise ValueError(
                f"questionnaire {self.id}: red_from {self.red_from} can never be reached (max score {self.max_score})"
            )
        return self


StepZone = Literal["yellow", "red"]


class StepQuestionnaire(BaseModel):
    """A questionnaire of the plan asked every day, by `deadline`, while a step-up lasts."""

    model_config = _Strict

    id: Slug
    deadline: TimeOfDay


class ScheduleStep(BaseModel):
    """Need-driven measuring: when an alarm on `kind` opens at `zone` (or worse), the patient measures by `schedule`
    (its entries replace the plan's entries of the same kinds) and answers `questionnaires` daily, for at least
    `days` days and until `green_days` days with every `kind` measurement green (by the plan's zones); then the
    schedule steps back down to the plan's own."""

    model_config = _Strict

    kind: KindName
    zone: StepZone
    schedule: list[ScheduledMeasurement] = Field(min_length=1, max_length=20)
    questionnaires: list[StepQuestionnaire] = Field(default_factory=list, max_length=5)
    days: int = Field(default=5, ge=1, le=60)
    green_days: int = Field(default=3, ge=1, le=30)


TREND_SETTINGS = (
    "weight_gain_kg",
    "weight_window_days",
    "spo2_drop",
    "pulse_drift",
    "baseline_days",
    "baseline_min_readings",
    "weight_week_gain_kg",
    "bp_home_systolic",
    "bp_home_diastolic",
    "bp_home_days",
    "bp_home_min_readings",
)
"""The trend settings a plan may set (the rules' `TrendSetting` names; the rules check their ranges)."""
TrendName = Literal[
    "weight_gain_kg",
    "weight_window_days",
    "spo2_drop",
    "pulse_drift",
    "baseline_days",
    "baseline_min_readings",
    "weight_week_gain_kg",
    "bp_home_systolic",
    "bp_home_diastolic",
    "bp_home_days",
    "bp_home_min_readings",
]


class HomeOxygen(BaseModel):
    """Supplemental oxygen at home, prescribed by a clinician: NEWS2 scores it 2 and, on SpO2 scale 2, judges high
    saturations on oxygen (RCP 2017)."""

    model_config = _Strict

    litres_per_minute: float = Field(gt=0, le=15)


class TrendValue(BaseModel):
    """One trend setting of the plan; `value` None switches that trend rule off for the patient."""

    model_config = _Strict

    setting: TrendName
    value: float | None = None


class PlanContent(BaseModel):
    """Everything a clinician writes in a plan; the server adds the version when it stores a draft.

    `oxygen` (home oxygen) and `spo2_scale` are the clinician's NEWS2 decisions: scale 2 only for confirmed
    hypercapnic respiratory failure with a prescribed 88–92 % target (RCP 2017), never implied by a diagnosis.
    `trends` replace the conditions' trend settings while the plan is active.
    """

    model_config = _Strict

    protocol: Protocol
    diagnosis: Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)] | None = None
    timezone: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+){0,2}$")] = "Europe/Oslo"
    schedule: list[ScheduledMeasurement] = Field(default_factory=list, max_length=40)
    zones: list[KindZones] = Field(default_factory=list, max_length=len(Kind))
    advice: list[ZoneAdvice] = Field(min_length=3, max_length=60)
    contacts: list[Contact] = Field(min_length=1, max_length=10)
    questionnaires: list[Questionnaire] = Field(default_factory=list, max_length=5)
    step_ups: list[ScheduleStep] = Field(default_factory=list, max_length=10)
    oxygen: HomeOxygen | None = None
    spo2_scale: Literal[1, 2] = 1
    trends: list[TrendValue] = Field(default_factory=list, max_length=len(TREND_SETTINGS))

    @model_validator(mode="after")
    def _consistent(self) -> PlanContent:
        kinds = [z.kind for z in self.zones]
        if len(set(kinds)) != len(kinds):
            raise ValueError("zones: each kind may appear once")
        general = {a.zone for a in self.advice if a.kind is None}
        missing = [z for z in ("green", "yellow", "red") if z not in general]
        if missing:
            raise ValueError(f"advice: general advice (no kind) is required for every zone; missing {missing}")
        pairs = [(a.zone, a.kind) for a in self.advice]
        if len(set(pairs)) != len(pairs):
            raise ValueError("advice: one entry per zone and kind")
        ids = [q.id for q in self.questionnaires]
        if len(set(ids)) != len(ids):
            raise ValueError("questionnaires: ids must be distinct")
        self._check_step_ups(set(ids))
        settings = [t.setting for t in self.trends]
        if len(set(settings)) != len(settings):
            raise ValueError("trends: each setting may appear once")
        return self

    def _check_step_ups(self, questionnaire_ids: set[str]) -> None:
        triggers = [(s.kind, s.zone) for s in self.step_ups]
        if len(set(triggers)) != len(triggers):
            raise ValueError("step_ups: one step-up per kind and zone")
        for step in self.step_ups:
            if self.zones_of(step.kind) is None:
                raise ValueError(
                    f"step_ups: a step-up on {step.kind} needs the plan's {step.kind} zones (they decide green days)"
                )
            unknown = [q.id for q in step.questionnaires if q.id not in questionnaire_ids]
            if unknown:
                raise ValueError(f"step_ups: questionnaire {unknown[0]!r} is not in the plan's questionnaires")

    def zones_of(self, kind: Kind) -> KindZones | None:
        return next((z for z in self.zones if z.kind == kind), None)


def plan_digest(doc: dict[str, Any]) -> str:
    """SHA-256 (hex) of a plan document's canonical JSON, leaving out its own `sha256` member."""
    body = {k: v for k, v in doc.items() if k != "sha256"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ActiveStep(BaseModel):
    """A step-up in force: since when, the first local day it may step down (`until`), green days counted so far."""

    model_config = _Strict

    kind: KindName
    zone: StepZone
    since: Annotated[AwareDatetime, Strict(False)]
    until: Annotated[date, Strict(False)]
    green_days: int = Field(ge=0)
    green_days_needed: int = Field(ge=1)


class SelfManagementPlan(PlanContent):
    """The plan as published on the gateway's retained plan topic.

    `schedule` and `questionnaires` are the ones in force: while a step-up (`active_steps`) lasts they are the
    stepped-up ones. `schedule_revision` counts schedule changes within the patient's plans, so the gateway takes a
    stepped-up (or stepped-down) schedule of the same plan version as newer.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    schema_: Literal["varde.plan/1"] = Field(default="varde.plan/1", alias="schema")
    version: int = Field(ge=1)
    issued_at: Annotated[AwareDatetime, Strict(False)]
    schedule_revision: int = Field(default=0, ge=0)
    active_steps: list[ActiveStep] = Field(default_factory=list, max_length=10)

    @model_validator(mode="before")
    @classmethod
    def _verify_digest(cls, data: Any) -> Any:
        if isinstance(data, dict) and "sha256" in data:
            if data["sha256"] != plan_digest(data):
                raise ValueError("plan checksum mismatch: sha256 does not match the plan's content")
            return {k: v for k, v in data.items() if k != "sha256"}
        return data

    def to_json(self) -> bytes:
        doc = json.loads(self.model_dump_json(by_alias=True))
        doc["sha256"] = plan_digest(doc)
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

    @property
    def digest(self) -> str:
        return plan_digest(json.loads(self.model_dump_json(by_alias=True)))


class PlanMessageError(ValueError):
    """A plan message the gateway must not use; the text says why, in one line."""


def parse_plan_message(payload: bytes) -> SelfManagementPlan:
    """Parse and verify the bytes of a retained plan message: JSON, schema, checksum present and matching, model."""
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PlanMessageError(f"plan message is not UTF-8 JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PlanMessageError("plan message is not a JSON object")
    if doc.get("schema") != PLAN_SCHEMA:
        raise PlanMessageError(f"plan schema {doc.get('schema')!r} is not {PLAN_SCHEMA!r}")
    if not isinstance(doc.get("sha256"), str):
        raise PlanMessageError("plan message carries no sha256 checksum")
    try:
        return SelfManagementPlan.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise PlanMessageError(f"{where}: {msg}" if where else msg) from None


__all__ = [
    "LIMIT_FIELDS",
    "PLAN_SCHEMA",
    "TREND_SETTINGS",
    "ActiveStep",
    "AnswerOption",
    "Contact",
    "HomeOxygen",
    "KindZones",
    "PlanContent",
    "PlanMessageError",
    "Question",
    "Questionnaire",
    "ScheduleStep",
    "ScheduledMeasurement",
    "SelfManagementPlan",
    "StepQuestionnaire",
    "StepZone",
    "TrendValue",
    "Zone",
    "ZoneAdvice",
    "parse_plan_message",
    "plan_digest",
]
