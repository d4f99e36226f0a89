"""The readings envelope: the one wire model between gateway and cloud, with strict parsing.

`Envelope` is what a gateway builds and serialises. `parse_envelope` is what the cloud runs on raw bytes: faults
of the whole message raise `EnvelopeError`; faults of single readings come back as `RejectedReading` beside the
valid readings, so one bad reading never sinks its good siblings.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, NotRequired, get_args
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

from vitals.kinds import KINDS, Kind
from vitals.topics import GATEWAY_ID_PATTERN

SCHEMA = "varde.readings/1"
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_JSON_DEPTH = 16
"""No wire message nests deeper than 4 (envelope → readings → reading → device); deeper input is refused before it
is decoded, so no parser recurses on it."""
MAX_READINGS_PER_ENVELOPE = 2000
FUTURE_SKEW = timedelta(minutes=5)
RETENTION = timedelta(days=3650)
"""Readings older than this are refused; the readings table has partitions for every accepted date."""


class Reason(StrEnum):
    """Why a message or a reading was refused; the dead-letter table and metrics count by these."""

    OVERSIZED = "oversized"
    NOT_UTF8 = "not_utf8"
    BAD_JSON = "bad_json"
    WRONG_SCHEMA = "wrong_schema"
    BAD_ENVELOPE = "bad_envelope"
    TOO_MANY_READINGS = "too_many_readings"
    GATEWAY_MISMATCH = "gateway_mismatch"
    UNKNOWN_GATEWAY = "unknown_gateway"
    DISABLED_GATEWAY = "disabled_gateway"
    BAD_TOPIC = "bad_topic"
    UNKNOWN_KIND = "unknown_kind"
    WRONG_UNIT = "wrong_unit"
    NOT_FINITE = "not_finite"
    IMPLAUSIBLE_VALUE = "implausible_value"
    FUTURE_TIME = "future_time"
    TOO_OLD = "too_old"
    DUPLICATE_ID = "duplicate_id"
    BAD_READING = "bad_reading"
    TOO_DEEP = "too_deep"
    BAD_TEXT = "bad_text"
    ID_CONFLICT = "id_conflict"
    PROCESSING_ERROR = "processing_error"
    POISON_MESSAGE = "poison_message"


_Strict = ConfigDict(extra="forbid", frozen=True)
Flag = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]

UNPRINTABLE = "\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
"""Control characters (C0, DEL, C1) and invisible or bidirectional formatting characters: they have no place in a
device address, model or group, PostgreSQL cannot store NUL, and bidi overrides would spoof what a nurse reads."""
_UNPRINTABLE = re.compile(f"[{UNPRINTABLE}\ud800-\udfff]")  # and lone surrogates, which are not text at all
PRINTABLE_PATTERN = f"^[^{UNPRINTABLE}]*$"


def _printable(value: str) -> str:
    found = _UNPRINTABLE.search(value)
    if found is not None:
        raise ValueError(
            f"{Reason.BAD_TEXT}: holds the control, formatting or surrogate character U+{ord(found.group()):04X}"
        )
    return value


Text64 = Annotated[str, StringConstraints(max_length=64), AfterValidator(_printable)]
"""Free text of a reading (device address and model, group): at most 64 characters, all printable. Text that is not
valid Unicode (a lone surrogate) is refused by the string type itself."""


def _rfc3339_text(value: Any) -> Any:
    """Times travel as RFC 3339 text; a bare number is not a time on the wire."""
    if isinstance(value, int | float):
        raise ValueError("measured_at must be an RFC 3339 string with offset")
    return value


class DeviceRef(BaseModel):
    model_config = _Strict

    address: Annotated[Text64, StringConstraints(min_length=1)]
    type: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    model: Text64 | None = None


class Reading(BaseModel):
    """One measured value in its kind's canonical unit."""

    model_config = _Strict

    id: UUID
    kind: Kind
    value: StrictFloat
    unit: str
    measured_at: Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]
    device: DeviceRef
    group: Text64 | None = None
    flags: tuple[Flag, ...] = ()

    @field_validator("kind", mode="before")
    @classmethod
    def _known_kind(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in KINDS:
            raise ValueError(f"{Reason.UNKNOWN_KIND}: unknown measurement kind {value!r}")
        return value

    @model_validator(mode="after")
    def _unit_and_range(self) -> Reading:
        info = KINDS[self.kind]
        if self.unit != info.unit:
            raise ValueError(f"{Reason.WRONG_UNIT}: {self.kind} must be in {info.unit!r}, got {self.unit!r}")
        if not math.isfinite(self.value):
            raise ValueError(f"{Reason.NOT_FINITE}: {self.kind} value is not a finite number")
        if not info.is_plausible(self.value):
            raise ValueError(
                f"{Reason.IMPLAUSIBLE_VALUE}: {self.kind}={self.value:g} outside {info.range_text()} "
                f"(device {self.device.address})"
            )
        return self


class Envelope(BaseModel):
    """A batch of readings from one gateway, as published on its readings topic."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["varde.readings/1"] = Field(default="varde.readings/1", alias="schema")
    gateway_id: Annotated[str, StringConstraints(pattern=GATEWAY_ID_PATTERN.pattern)]
    sent_at: AwareDatetime
    readings: tuple[Reading, ...] = Field(min_length=1, max_length=MAX_READINGS_PER_ENVELOPE)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class _EnvelopeHead(BaseModel):
    """The envelope with its readings left raw, so each reading can be judged on its own."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: str = Field(alias="schema")
    gateway_id: str
    sent_at: AwareDatetime
    readings: list[Any] = Field(min_length=1)


class EnvelopeError(ValueError):
    """The whole message is refused; `reason` is the dead-letter reason code."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class RejectedReading:
    index: int
    raw: Any
    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class ParsedEnvelope:
    gateway_id: str
    sent_at: datetime
    readings: list[Reading]
    rejected: list[RejectedReading] = field(default_factory=list)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "string_unicode":
        msg = f"{Reason.BAD_TEXT}: is not valid Unicode text (a lone surrogate)"
    return f"{where}: {msg}" if where else msg


def _reading_reason(detail: str) -> tuple[Reason, str]:
    """The reason code a model validator put in front of its message, and the message without it."""
    for reason in (
        Reason.UNKNOWN_KIND,
        Reason.WRONG_UNIT,
        Reason.NOT_FINITE,
        Reason.IMPLAUSIBLE_VALUE,
        Reason.BAD_TEXT,
    ):
        tag = f"{reason.value}: "
        if tag in detail:
            return reason, detail.replace(tag, "", 1)
    return Reason.BAD_READING, detail


_JSON_SPECIAL = re.compile(rb'[\[\]{}"\\]')


def nesting_fault(payload: bytes, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why `payload` nests too deep for the wire, or None. One linear pass over the bytes that matter to nesting
    (brackets, quotes, backslashes), without decoding: no recursion, no quadratic backtracking."""
    depth = 0
    in_string = False
    skip_before = -1
    for match in _JSON_SPECIAL.finditer(payload):
        at = match.start()
        if at < skip_before:
            continue
        char = payload[at]
        if in_string:
            if char == 0x5C:  # backslash: the next byte is escaped
                skip_before = at + 2
            elif char == 0x22:
                in_string = False
        elif char == 0x22:
            in_string = True
        elif char in (0x5B, 0x7B):
            depth += 1
            if depth > max_depth:
                return f"JSON nests deeper than {max_depth} levels (at byte {at})"
        elif char in (0x5D, 0x7D):
            depth -= 1
    return None


def load_wire_json(payload: bytes, *, max_bytes: int = MAX_PAYLOAD_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The one bounded JSON decoder for everything a gateway sends: size, UTF-8 and nesting depth are checked before
    any parser sees the bytes; NaN and Infinity are refused. Every fault raises EnvelopeError with its reason."""
    if len(payload) > max_bytes:
        raise EnvelopeError(Reason.OVERSIZED, f"{len(payload)} bytes exceeds the {max_bytes}-byte limit")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EnvelopeError(Reason.NOT_UTF8, f"payload is not UTF-8 (byte {exc.start})") from None
    fault = nesting_fault(payload, max_depth)
    if fault is not None:
        raise EnvelopeError(Reason.TOO_DEEP, fault)
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise EnvelopeError(Reason.BAD_JSON, f"payload is not JSON: {exc}") from None
    except RecursionError:  # pragma: no cover - the depth check above makes this unreachable
        raise EnvelopeError(Reason.TOO_DEEP, "JSON nests too deep") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_envelope(
    payload: bytes,
    topic_gateway_id: str,
    *,
    now: datetime | None = None,
    future_skew: timedelta = FUTURE_SKEW,
    retention: timedelta = RETENTION,
) -> ParsedEnvelope:
    """Parse raw bytes from `varde/v1/gw/{topic_gateway_id}/readings`.

    Raises EnvelopeError for faults of the whole message; returns valid readings and rejected ones apart.
    """
    doc = load_wire_json(payload)
    if not isinstance(doc, dict):
        raise EnvelopeError(Reason.BAD_ENVELOPE, "envelope must be a JSON object")
    if doc.get("schema") != SCHEMA:
        raise EnvelopeError(Reason.WRONG_SCHEMA, f"schema {doc.get('schema')!r} is not {SCHEMA!r}")
    try:
        head = _EnvelopeHead.model_validate(doc)
    except ValidationError as exc:
        raise EnvelopeError(Reason.BAD_ENVELOPE, _first_error(exc)) from None
    if head.gateway_id != topic_gateway_id:
        raise EnvelopeError(
            Reason.GATEWAY_MISMATCH,
            f"payload gateway_id {head.gateway_id!r} differs from topic gateway {topic_gateway_id!r}",
        )
    if len(head.readings) > MAX_READINGS_PER_ENVELOPE:
        raise EnvelopeError(
            Reason.TOO_MANY_READINGS, f"{len(head.readings)} readings exceeds {MAX_READINGS_PER_ENVELOPE}"
        )
    now = now or datetime.now(UTC)
    fast = _all_valid(head.readings, now, future_skew, retention)
    if fast is not None:
        return ParsedEnvelope(head.gateway_id, head.sent_at, fast, [])
    readings: list[Reading] = []
    rejected: list[RejectedReading] = []
    seen: set[UUID] = set()
    for index, raw in enumerate(head.readings):
        try:
            reading = Reading.model_validate(raw)
        except ValidationError as exc:
            reason, detail = _reading_reason(_first_error(exc))
            rejected.append(RejectedReading(index, raw, reason, detail))
            continue
        problem = check_reading_time(reading, now, future_skew=future_skew, retention=retention)
        if problem is None and reading.id in seen:
            problem = (Reason.DUPLICATE_ID, f"reading id {reading.id} appears twice in one envelope")
        if problem is not None:
            rejected.append(RejectedReading(index, raw, *problem))
            continue
        seen.add(reading.id)
        readings.append(reading)
    return ParsedEnvelope(head.gateway_id, head.sent_at, readings, rejected)


_READINGS = TypeAdapter(list[Reading])


def _all_valid(raw: list[Any], now: datetime, future_skew: timedelta, retention: timedelta) -> list[Reading] | None:
    """The common case in one pass: every reading valid, in time and unique. None sends the caller to the
    reading-by-reading path that names each fault."""
    try:
        readings = _READINGS.validate_python(raw)
    except ValidationError:
        return None
    earliest = min(r.measured_at for r in readings)
    latest = max(r.measured_at for r in readings)
    if latest > now + future_skew or earliest < now - retention:
        return None
    if len({r.id for r in readings}) != len(readings):
        return None
    return readings


# --- the ingest path: raw bytes to plain fields ---------------------------------------------------------------------
#
# The ingest service needs the fields of each reading, not models: building a pydantic model with Python validators
# per reading was a third of its CPU. `scan_envelope` validates the whole message in one strict pass inside
# pydantic-core (typed dicts, no Python validators), then checks unit, range, time window and uniqueness in a tight
# loop. Anything that pass does not accept goes to `parse_envelope`, which names each fault; the fast pass is
# stricter than that path (strict JSON types), never laxer, so both give the same verdict on every message.

_Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
_WireText64 = Annotated[str, StringConstraints(max_length=64, pattern=PRINTABLE_PATTERN)]
"""`Text64` as a pattern inside pydantic-core (no Python validator on the fast path); the same characters refused."""
WireKind = Literal[
    "bp_systolic",
    "bp_diastolic",
    "bp_mean",
    "pulse_rate",
    "heart_rate",
    "spo2",
    "body_temperature",
    "body_weight",
    "glucose",
    "resp_rate",
]


@with_config(ConfigDict(extra="forbid", strict=True))
class WireDevice(TypedDict):
    address: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=PRINTABLE_PATTERN)]
    type: _Name
    model: NotRequired[_WireText64 | None]


@with_config(ConfigDict(extra="forbid", strict=True))
class WireReading(TypedDict):
    """A valid reading as plain fields (the ingest path's form of `Reading`)."""

    id: UUID
    kind: WireKind
    value: Annotated[float, Field(allow_inf_nan=False)]
    unit: str
    measured_at: AwareDatetime
    device: WireDevice
    group: NotRequired[_WireText64 | None]
    flags: NotRequired[list[_Name]]


@with_config(ConfigDict(extra="forbid", strict=True))
class _WireEnvelope(TypedDict):
    schema: Literal["varde.readings/1"]
    gateway_id: str
    sent_at: AwareDatetime
    readings: Annotated[list[WireReading], Field(min_length=1, max_length=MAX_READINGS_PER_ENVELOPE)]


_WIRE = TypeAdapter(_WireEnvelope)
_LIMITS = {kind.value: (info.unit, info.plausible_low, info.plausible_high) for kind, info in KINDS.items()}
if set(_LIMITS) != set(get_args(WireKind)):  # pragma: no cover - a kind added to KINDS but not here
    raise RuntimeError("WireKind must list every kind in vitals.kinds.KINDS")


@dataclass(frozen=True, slots=True)
class ScannedEnvelope:
    gateway_id: str
    sent_at: datetime
    readings: list[WireReading]
    rejected: list[RejectedReading] = field(default_factory=list)


def scan_envelope(
    payload: bytes,
    topic_gateway_id: str,
    *,
    now: datetime | None = None,
    future_skew: timedelta = FUTURE_SKEW,
    retention: timedelta = RETENTION,
) -> ScannedEnvelope:
    """`parse_envelope` with the valid readings as plain fields: same verdicts, several times faster on good
    messages. Raises EnvelopeError for faults of the whole message."""
    now = now or datetime.now(UTC)
    if len(payload) <= MAX_PAYLOAD_BYTES:
        fast = _scan_valid(payload, topic_gateway_id, now, future_skew, retention)
        if fast is not None:
            return fast
    parsed = parse_envelope(payload, topic_gateway_id, now=now, future_skew=future_skew, retention=retention)
    readings = [wire_reading(r) for r in parsed.readings]
    return ScannedEnvelope(parsed.gateway_id, parsed.sent_at, readings, parsed.rejected)


def _scan_valid(
    payload: bytes, gateway_id: str, now: datetime, future_skew: timedelta, retention: timedelta
) -> ScannedEnvelope | None:
    try:
        doc = _WIRE.validate_json(payload)
    except ValidationError:
        return None
    if doc["gateway_id"] != gateway_id:
        return None
    readings = doc["readings"]
    latest, earliest = now + future_skew, now - retention
    limits = _LIMITS
    for r in readings:
        unit, low, high = limits[r["kind"]]
        value = r["value"]
        if r["unit"] != unit or not low <= value <= high or not earliest <= r["measured_at"] <= latest:
            return None
    if len({r["id"] for r in readings}) != len(readings):
        return None
    return ScannedEnvelope(gateway_id, doc["sent_at"], readings)


def wire_reading(reading: Reading) -> WireReading:
    device = WireDevice(address=reading.device.address, type=reading.device.type, model=reading.device.model)
    return WireReading(
        id=reading.id,
        kind=reading.kind.value,
        value=reading.value,
        unit=reading.unit,
        measured_at=reading.measured_at,
        device=device,
        group=reading.group,
        flags=list(reading.flags),
    )


def check_reading_time(
    reading: Reading, now: datetime, *, future_skew: timedelta = FUTURE_SKEW, retention: timedelta = RETENTION
) -> tuple[Reason, str] | None:
    if reading.measured_at > now + future_skew:
        return Reason.FUTURE_TIME, f"measured_at {reading.measured_at.isoformat()} is in the future"
    if reading.measured_at < now - retention:
        return Reason.TOO_OLD, f"measured_at {reading.measured_at.isoformat()} is older than the retention window"
    return None
