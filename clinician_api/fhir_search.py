"""FHIR R4 search requests (http://hl7.org/fhir/R4/search.html), parsed and checked before any SQL is written:
which parameters a resource type supports, token / date / reference / string values, prefixes and modifiers,
result parameters (`_count`, `_sort`, `_include`, `_revinclude`, `_total`), and the `Prefer: handling` rule for
parameters the server does not know (strict: an error; lenient, the default: ignored and left out of `self`).

Pure: no database, no FastAPI. `fhir_query` turns a `SearchRequest` into SQL.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from store.fhir_search import Before, Between, DateTest, From, Outside

SERVER_ZONE = ZoneInfo("Europe/Oslo")
"""Dates and times searched without a zone are the server's local time (R4 search §3.1.1.4.6)."""
DEFAULT_COUNT = 50
MAX_COUNT = 1000
ParamType = Literal["token", "date", "reference", "string", "uri"]


class FhirError(Exception):
    """An error answered as an OperationOutcome: HTTP status, issue type code and what went wrong."""

    def __init__(self, status: int, diagnostics: str, code: str = "invalid") -> None:
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: ParamType
    description: str
    modifiers: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    """Reference parameters: the resource types they point at."""


_COMMON = (
    Param("_id", "token", "Logical id"),
    Param("_lastUpdated", "date", "When the resource last changed (meta.lastUpdated)"),
)
_PATIENT_REF = Param("patient", "reference", "The patient", ("Patient",), ("Patient",))
_SUBJECT_REF = Param("subject", "reference", "The patient (subject)", ("Patient",), ("Patient",))

PARAMS: dict[str, tuple[Param, ...]] = {
    "Patient": (
        *_COMMON,
        Param("identifier", "token", "fødselsnummer, D-nummer, H-nummer (urn:oid:2.16.578.1.12.4.1.4.x|number)"),
        Param("name", "string", "Any part of the name (starts with; :exact, :contains)", ("exact", "contains")),
        Param("family", "string", "Family name (starts with; :exact, :contains)", ("exact", "contains")),
        Param("given", "string", "Given name (starts with; :exact, :contains)", ("exact", "contains")),
        Param("birthdate", "date", "Date of birth"),
        Param("active", "token", "Whether the patient is followed up (true|false)"),
    ),
    "Observation": (
        *_COMMON,
        _PATIENT_REF,
        _SUBJECT_REF,
        Param("code", "token", "LOINC or IEEE 11073 MDC code of Observation.code (system|code, code, system|)"),
        Param("category", "token", "vital-signs or laboratory"),
        Param("date", "date", "When measured (effectiveDateTime); prefixes eq ne gt lt ge le sa eb ap"),
        Param("device", "reference", "The measuring device", ("Device",), ("Device",)),
    ),
    "DetectedIssue": (
        *_COMMON,
        _PATIENT_REF,
        Param("code", "token", "The alarm rule (urn:varde:alarm-rule|rule)"),
        Param("identified", "date", "When the alarm opened"),
    ),
    "CarePlan": (
        *_COMMON,
        _PATIENT_REF,
        _SUBJECT_REF,
        Param("status", "token", "draft | active | revoked"),
    ),
    "QuestionnaireResponse": (
        *_COMMON,
        _PATIENT_REF,
        _SUBJECT_REF,
        Param("authored", "date", "When the patient answered"),
        Param("questionnaire", "reference", "urn:varde:questionnaire:<id>[|<plan version>]"),
    ),
    "EpisodeOfCare": (
        *_COMMON,
        _PATIENT_REF,
        Param("status", "token", "active | finished"),
        Param("organization", "reference", "The responsible organisation", ("Organization",), ("Organization",)),
        Param(
            "care-manager", "reference", "The clinician who enrolled or took over", ("Practitioner",), ("Practitioner",)
        ),
        Param("date", "date", "When the episode started (period.start)"),
    ),
    "Device": (
        _COMMON[0],
        _PATIENT_REF,
        Param("type", "token", "Device type (urn:iso:std:iso:11073:10101 specialization code, or text)"),
        Param("identifier", "token", "Bluetooth address or gateway id"),
    ),
}

INCLUDES: dict[str, tuple[str, ...]] = {
    "Observation": ("Observation:patient", "Observation:subject", "Observation:device"),
    "DetectedIssue": ("DetectedIssue:patient",),
    "CarePlan": ("CarePlan:patient", "CarePlan:subject"),
    "Device": ("Device:patient",),
    "QuestionnaireResponse": ("QuestionnaireResponse:patient", "QuestionnaireResponse:subject"),
    "EpisodeOfCare": ("EpisodeOfCare:patient",),
}
REVINCLUDES: dict[str, tuple[str, ...]] = {
    "Patient": ("CarePlan:patient", "CarePlan:subject", "DetectedIssue:patient", "Device:patient"),
}
SORTS: dict[str, tuple[str, ...]] = {
    "Patient": ("_id", "-_id"),
    "Observation": ("date", "-date"),
    "DetectedIssue": ("identified", "-identified"),
    "CarePlan": (),
    "Device": ("_id", "-_id"),
    "QuestionnaireResponse": ("authored", "-authored"),
    "EpisodeOfCare": ("date", "-date"),
}
DEFAULT_SORT = {
    "Patient": "_id",
    "Observation": "-date",
    "DetectedIssue": "-identified",
    "CarePlan": "-created",
    "QuestionnaireResponse": "-authored",
    "EpisodeOfCare": "-date",
}
"""The order when `_sort` is absent (CarePlan: newest version first; it takes no `_sort`)."""
_ACCEPTED_FORMATS = {"json", "application/json", "application/fhir+json", "application/json+fhir"}
_RESULT_PARAMS = ("_count", "_sort", "_include", "_revinclude", "_total", "_format", "_pretty", "_cursor", "_summary")


# --- values -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """`system|code`: system None matches any system, '' no system; code None any code of the system."""

    system: str | None
    code: str | None


def parse_token(text: str) -> Token:
    if "|" not in text:
        return Token(None, _unescape(text))
    system, code = text.split("|", 1)
    return Token(_unescape(system), _unescape(code) or None)


def _unescape(text: str) -> str:
    return text.replace("\\,", ",").replace("\\$", "$").replace("\\|", "|").replace("\\\\", "\\")


def split_or(text: str) -> list[str]:
    """A parameter's comma-separated alternatives (a `\\,` is a literal comma)."""
    return [part for part in re.split(r"(?<!\\),", text)]


@dataclass(frozen=True, slots=True)
class DateRange:
    """The implicit range of a search date: [start, end), as precise as the value was written."""

    start: datetime
    end: datetime


_CURSOR_DEVICE_ID = re.compile(r"^(dev-[0-9a-f]{24}|gw-[a-z0-9][a-z0-9-]{1,60})$")
_DATE = re.compile(
    r"^(?P<y>\d{4})(-(?P<m>\d{2})(-(?P<d>\d{2})(T(?P<H>\d{2}):(?P<M>\d{2})(:(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def parse_date(text: str) -> tuple[str, DateRange]:
    """`[prefix]YYYY[-MM[-DD[Thh:mm[:ss[.fff]][zone]]]]` → (prefix, range)."""
    prefix = text[:2] if text[:2] in PREFIXES else "eq"
    value = text[2:] if text[:2] in PREFIXES else text
    m = _DATE.match(value.replace(" ", "+"))
    if not m:
        raise FhirError(400, f"invalid date {text!r}: use [prefix]YYYY, YYYY-MM, YYYY-MM-DD or an ISO date-time")
    try:
        return prefix, _range(m)
    except ValueError as exc:
        raise FhirError(400, f"invalid date {text!r}: {exc}") from None


def _range(m: re.Match[str]) -> DateRange:
    year = int(m["y"])
    tz = UTC if m["tz"] == "Z" else SERVER_ZONE
    if m["tz"] and m["tz"] != "Z":
        sign = 1 if m["tz"][0] == "+" else -1
        hours, minutes = int(m["tz"][1:3]), int(m["tz"][4:6])
        tz = UTC if hours == minutes == 0 else _fixed(sign * (hours * 60 + minutes))
    if m["m"] is None:
        return DateRange(datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz))
    month = int(m["m"])
    if m["d"] is None:
        start = datetime(year, month, 1, tzinfo=tz)
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
        return DateRange(start, end)
    day = date(year, month, int(m["d"]))
    if m["H"] is None:
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        return DateRange(start, _next_day(start))
    hour, minute = int(m["H"]), int(m["M"])
    if m["S"] is None:
        start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
        return DateRange(start, start + timedelta(minutes=1))
    fraction = m["f"] or ""
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    start = datetime(day.year, day.month, day.day, hour, minute, int(m["S"]), micro, tzinfo=tz)
    step = timedelta(microseconds=10 ** max(0, 6 - (len(fraction) - 1))) if fraction else timedelta(seconds=1)
    return DateRange(start, start + step)


def _next_day(start: datetime) -> datetime:
    """Midnight of the next calendar day in the same zone (a day in Oslo is 23 or 25 hours at a DST change)."""
    following = (start.replace(tzinfo=None) + timedelta(days=1)).replace(hour=0, minute=0)
    return following.replace(tzinfo=start.tzinfo)


def _fixed(minutes: int) -> Any:
    from datetime import timezone

    return timezone(timedelta(minutes=minutes))


def date_test(prefix: str, rng: DateRange, now: datetime) -> DateTest:
    """A date parameter against an instant t (the resource's range is one point): eq t ∈ [start, end); ne not; gt/sa
    t ≥ end; lt/eb t < start; ge t ≥ start; le t < end; ap within 10 % of the distance from now to the value on
    either side (at least the value's own precision)."""
    if prefix == "eq":
        return Between(rng.start, rng.end)
    if prefix == "ne":
        return Outside(rng.start, rng.end)
    if prefix in ("gt", "sa", "ge"):
        return From(rng.end if prefix != "ge" else rng.start)
    if prefix in ("lt", "eb", "le"):
        return Before(rng.start if prefix != "le" else rng.end)
    gap = abs(now - rng.start) * 0.1
    return Between(rng.start - gap, rng.end + gap)


@dataclass(frozen=True, slots=True)
class Reference:
    type: str | None
    id: str


def parse_reference(text: str, modifier: str | None) -> Reference:
    """`id`, `Type/id`, an absolute URL ending in `Type/id`, or `:Type` modifier + id."""
    parts = text.rstrip("/").split("/")
    if len(parts) >= 2:
        return Reference(parts[-2], parts[-1])
    return Reference(modifier, text)


# --- the request --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Criterion:
    """One occurrence of a parameter: its alternatives are ORed; criteria are ANDed."""

    name: str
    modifier: str | None
    values: tuple[str, ...]

    def query_item(self) -> tuple[str, str]:
        key = f"{self.name}:{self.modifier}" if self.modifier else self.name
        return key, ",".join(v.replace(",", "\\,") for v in self.values)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page starts: after (`next`) or before (`prev`) the sort key of a row."""

    direction: Literal["next", "prev"]
    key: tuple[str, str]

    def encode(self) -> str:
        raw = json.dumps([self.direction, *self.key], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor of a `next`/`previous` link; a hand-made one is refused unless its key is empty or an
        instant with a zone and its id a UUID or a device id (what the searches compare them with)."""
        try:
            direction, key, ident = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if direction not in ("next", "prev") or not isinstance(key, str) or not isinstance(ident, str):
                raise ValueError(direction)
            if key and datetime.fromisoformat(key).tzinfo is None:
                raise ValueError(key)
            if not _CURSOR_DEVICE_ID.match(ident):
                UUID(ident)
            return cls(direction, (key, ident))
        except (ValueError, TypeError, json.JSONDecodeError):
            raise FhirError(400, "invalid _cursor: follow the Bundle's next/previous links as given") from None


@dataclass
class SearchRequest:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    sort: str | None = None
    includes: list[str] = field(default_factory=list)
    revincludes: list[str] = field(default_factory=list)
    total: Literal["none", "estimate", "accurate"] | None = None
    cursor: Cursor | None = None
    ignored: list[str] = field(default_factory=list)

    def values(self, name: str) -> list[Criterion]:
        return [c for c in self.criteria if c.name == name]

    @property
    def sort_key(self) -> str:
        return self.sort or DEFAULT_SORT.get(self.resource_type, "_id")

    def query(self, *, cursor: Cursor | None = None) -> list[tuple[str, str]]:
        """The applied parameters in a canonical order (for `self`, `next` and `previous` links)."""
        items = [c.query_item() for c in self.criteria]
        items += [("_include", i) for i in self.includes] + [("_revinclude", i) for i in self.revincludes]
        if self.sort:
            items.append(("_sort", self.sort))
        if self.total:
            items.append(("_total", self.total))
        items.append(("_count", str(self.count)))
        if cursor is not None:
            items.append(("_cursor", cursor.encode()))
        return items


def handling_strict(prefer: str | None) -> bool:
    """`Prefer: handling=strict` (RFC 7240; several preferences may share the header)."""
    for part in re.split(r"[,;]", prefer or ""):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "handling" and value.strip().strip('"').lower() == "strict":
            return True
    return False


def parse_search(resource_type: str, items: list[tuple[str, str]], *, strict: bool) -> SearchRequest:
    """Check every parameter against what the resource type supports. Unknown parameters (and unsupported
    `_sort`/`_include` values) are an error under strict handling and ignored under lenient; an unsupported
    modifier, a malformed value, a chained parameter (`patient.identifier=`) or `_has` is always an error."""
    supported = {p.name: p for p in PARAMS[resource_type]}
    request = SearchRequest(resource_type)

    def unsupported(what: str) -> None:
        if strict:
            raise FhirError(
                400, f"{what} is not supported for {resource_type} (Prefer: handling=strict)", "not-supported"
            )
        request.ignored.append(what)

    for key, raw in items:
        name, _, modifier = key.partition(":")
        if "." in key or name == "_has":
            # Never ignored, not even under lenient handling: without its chain the search would return every
            # patient's resources in the caller's teams instead of the one patient the chain names.
            raise FhirError(
                400,
                f"{key!r}: chained and _has parameters are not supported; find the patient first "
                "(Patient?identifier=system|number), then search with patient=<id>",
                "not-supported",
            )
        if name in _RESULT_PARAMS:
            _result_param(request, name, raw, unsupported)
            continue
        param = supported.get(name)
        if param is None:
            unsupported(f"search parameter {key!r}")
            continue
        if modifier and modifier not in param.modifiers:
            raise FhirError(400, f"modifier :{modifier} is not supported on {resource_type}.{name}", "not-supported")
        values = tuple(split_or(raw))
        if not raw or any(v == "" for v in values):
            raise FhirError(400, f"search parameter {name!r} has an empty value")
        for value in values:
            if param.type == "date":
                parse_date(value)
        request.criteria.append(Criterion(name, modifier or None, values))
    return request


def _result_param(request: SearchRequest, name: str, raw: str, unsupported: Any) -> None:
    rtype = request.resource_type
    if name == "_count":
        if not raw.isdigit():
            raise FhirError(400, f"_count must be a whole number, got {raw!r}")
        request.count = min(int(raw), MAX_COUNT)
    elif name == "_sort":
        for value in split_or(raw):
            if value in SORTS.get(rtype, ()) and request.sort is None:
                request.sort = value
            else:
                unsupported(f"_sort={value}")
    elif name in ("_include", "_revinclude"):
        allowed = (INCLUDES if name == "_include" else REVINCLUDES).get(rtype, ())
        value = raw.removesuffix(":iterate")
        target = request.includes if name == "_include" else request.revincludes
        if value in allowed:
            if value not in target:
                target.append(value)
        else:
            unsupported(f"{name}={raw}")
    elif name == "_total":
        if raw not in ("none", "estimate", "accurate"):
            raise FhirError(400, "_total must be none, estimate or accurate")
        request.total = raw  # type: ignore[assignment]
    elif name == "_format":
        if raw not in _ACCEPTED_FORMATS:
            raise FhirError(406, f"_format {raw!r}: this server answers application/fhir+json only", "not-supported")
    elif name == "_cursor":
        request.cursor = Cursor.decode(raw)
    elif name == "_summary":
        if raw == "count":  # only the total, as `_count=0`
            request.count, request.total = 0, "accurate"
        elif raw != "false":
            unsupported(f"_summary={raw}")


_DEFINITIONS = {
    "_id": "http://hl7.org/fhir/SearchParameter/Resource-id",
    "_lastUpdated": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
}


def capability_statement(
    base_url: str, software_version: str, operations: dict[str, list[dict[str, str]]]
) -> dict[str, Any]:
    """What this server does, made from the same tables the search parser checks against."""
    resources = []
    for rtype, params in PARAMS.items():
        entry: dict[str, Any] = {
            "type": rtype,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "versioning": "no-version",
            "readHistory": False,
            "updateCreate": False,
            "conditionalCreate": False,
            "conditionalRead": "not-supported",
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
            "searchInclude": list(INCLUDES.get(rtype, ())),
            "searchRevInclude": list(REVINCLUDES.get(rtype, ())),
            "searchParam": [
                {
                    "name": p.name,
                    "definition": _DEFINITIONS.get(
                        p.name, f"http://hl7.org/fhir/SearchParameter/{_base(rtype, p.name)}"
                    ),
                    "type": p.type,
                    "documentation": p.description,
                }
                for p in params
            ],
        }
        if not entry["searchInclude"]:
            del entry["searchInclude"]
        if not entry["searchRevInclude"]:
            del entry["searchRevInclude"]
        if rtype in operations:
            entry["operation"] = operations[rtype]
        resources.append(entry)
    for rtype, ops in operations.items():
        if rtype not in PARAMS and rtype != "system":
            resources.append({"type": rtype, "operation": ops})
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-01",
        "publisher": "Varde",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "software": {"name": "Varde", "version": software_version},
        "implementation": {"description": "Varde clinician API, FHIR R4 (read and search)", "url": base_url},
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Search results are paged with opaque _cursor links (next/previous); _sort values other than "
                    "those listed per resource are ignored unless Prefer: handling=strict. Dates without a zone are "
                    "Europe/Oslo."
                ),
                "security": {
                    "cors": False,
                    "description": "OAuth2 bearer tokens; access by duty of care; every read audited",
                },
                "resource": resources,
                **({"operation": operations["system"]} if "system" in operations else {}),
            }
        ],
    }


def _base(rtype: str, name: str) -> str:
    """The id of the standard SearchParameter (clinical-patient etc. are shared across resources in R4)."""
    shared = {
        ("Observation", "patient"): "clinical-patient",
        ("DetectedIssue", "patient"): "clinical-patient",
        ("CarePlan", "patient"): "clinical-patient",
        ("EpisodeOfCare", "patient"): "clinical-patient",
        ("EpisodeOfCare", "date"): "clinical-date",
        ("Observation", "code"): "clinical-code",
        ("Observation", "date"): "clinical-date",
        ("Patient", "identifier"): "Patient-identifier",
        ("Patient", "birthdate"): "individual-birthdate",
        ("Patient", "family"): "individual-family",
        ("QuestionnaireResponse", "patient"): "QuestionnaireResponse-patient",
        ("Patient", "given"): "individual-given",
    }
    return shared.get((rtype, name), f"{rtype}-{name}")
