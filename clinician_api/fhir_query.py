"""FHIR searches: a checked `SearchRequest` → one page of resources, the included resources, keyset cursors for
the next and previous pages, and the total where it is cheap.

Every search starts from the patients the caller has a duty of care for (`access.visible_patients_clause`); a
patient outside them is simply absent. The request's parameters become plain tests (`store.fhir_search`), which
store turns into SQL and reads along the indexes; this module maps the rows to resources. The caller writes the
audit rows for the patients shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

from clinician_api import fhir
from clinician_api import fhir_coding as codes
from clinician_api.access import Principal, visible_patients_clause
from clinician_api.fhir_search import (
    Criterion,
    Cursor,
    FhirError,
    SearchRequest,
    Token,
    date_test,
    parse_date,
    parse_reference,
    parse_token,
)
from store import fhir_search as rows_of
from store.fhir_search import (
    ActiveIs,
    Always,
    BornOn,
    CodeTest,
    DateTest,
    DeviceTest,
    HasNationalId,
    IdIs,
    IdOrNationalId,
    NameTest,
    NationalIdIs,
    PatientTest,
    QuestionnaireIs,
    UpdatedOn,
    Window,
)
from vitals import Kind

_TOTAL_PATIENTS = 200
"""An Observation total is counted when the search covers at most this many patients (or `_total=accurate`)."""
_REVINCLUDE_LIMIT = 500


@dataclass
class Page:
    matches: list[dict[str, Any]]
    included: list[dict[str, Any]] = field(default_factory=list)
    next: Cursor | None = None
    previous: Cursor | None = None
    total: int | None = None
    patient_ids: set[UUID] = field(default_factory=set)
    """Every patient whose data the page shows (one audit row each)."""


def _uuids(values: Iterable[str]) -> list[UUID]:
    out = []
    for value in values:
        try:
            out.append(UUID(value))
        except ValueError:
            continue
    return out


def _patient_refs(criterion: Criterion) -> list[UUID]:
    ids = []
    for value in criterion.values:
        ref = parse_reference(value, criterion.modifier)
        if ref.type in (None, "Patient"):
            ids += _uuids([ref.id])
    return ids


def patients_in_scope(conn: Connection[Any], principal: Principal, request: SearchRequest) -> list[UUID]:
    """The caller's patients, narrowed by every `patient` / `subject` criterion (each ORs its values)."""
    criteria = request.values("patient") + request.values("subject")
    return rows_of.patients_in_scope(conn, visible_patients_clause(principal), [_patient_refs(c) for c in criteria])


def narrow_to_references(request: SearchRequest, patients: list[UUID]) -> list[UUID]:
    """A compartment's patient, kept only if every `patient` / `subject` criterion names it too."""
    for criterion in request.values("patient") + request.values("subject"):
        refs = set(_patient_refs(criterion))
        patients = [p for p in patients if p in refs]
    return patients


def _dates(request: SearchRequest, name: str, now: datetime) -> list[list[DateTest]]:
    """Per criterion of the date parameter, its values as tests (ORed)."""
    out = []
    for criterion in request.values(name):
        tests = []
        for value in criterion.values:
            prefix, rng = parse_date(value)
            tests.append(date_test(prefix, rng, now))
        out.append(tests)
    return out


def _ids(request: SearchRequest) -> list[list[str]]:
    return [list(criterion.values) for criterion in request.values("_id")]


def _window(request: SearchRequest, descending: bool) -> Window:
    """The page to read: one row more than the page holds, from the cursor on."""
    cursor = request.cursor
    if cursor is None:
        return Window(descending, request.count + 1)
    after = (cursor.key[0], cursor.key[1])
    return Window(descending, request.count + 1, after=after, reverse=cursor.direction == "prev")


def _paged(
    request: SearchRequest, rows: list[Any], key: Callable[[Any], tuple[str, str]], reverse: bool
) -> tuple[list[Any], Cursor | None, Cursor | None]:
    more = len(rows) > request.count
    rows = rows[: request.count]
    if reverse:
        rows.reverse()
    if not rows:
        return rows, None, None
    if reverse:
        previous = Cursor("prev", key(rows[0])) if more else None
        return rows, Cursor("next", key(rows[-1])), previous
    following = Cursor("next", key(rows[-1])) if more else None
    return rows, following, Cursor("prev", key(rows[0])) if request.cursor is not None else None


def _want_total(request: SearchRequest, cheap: bool = True) -> bool:
    return request.total != "none" and (cheap or request.total == "accurate")


# --- Observation --------------------------------------------------------------------------------------------------


def _token_matches(token: Token, codings: Iterable[codes.Coding]) -> bool:
    for coding in codings:
        if token.system is not None and token.system != coding.system:
            continue
        if token.code is None or token.code == coding.code:
            return True
    return False


def _category_matches(token: Token, category: str) -> bool:
    return token.system in (None, codes.CATEGORY) and token.code in (None, category)


def _observation_codes(request: SearchRequest) -> list[codes.ObservationCode]:
    chosen = list(codes.OBSERVATION_CODES)
    for criterion in request.values("code"):
        tokens = [parse_token(v) for v in criterion.values]
        chosen = [c for c in chosen if any(_token_matches(t, c.codings) for t in tokens)]
    for criterion in request.values("category"):
        tokens = [parse_token(v) for v in criterion.values]
        chosen = [c for c in chosen if any(_category_matches(t, c.category) for t in tokens)]
    return chosen


_SAMPLE_FLAGS = tuple(f"sample_{s}" for s in codes.GLUCOSE_SAMPLE_TYPES)


def _code_tests(chosen: list[codes.ObservationCode]) -> tuple[list[str], list[CodeTest]]:
    """The kinds to read and the tests on a reading that select exactly the chosen codes."""
    kinds = sorted({c.kind.value for c in chosen})
    tests: list[CodeTest] = []
    for kind in kinds:
        of_kind = [c for c in codes.OBSERVATION_CODES if c.kind == kind]
        picked = [c for c in chosen if c.kind == kind]
        if len(picked) == len(of_kind):
            tests.append(CodeTest(kind))
            continue
        for code in picked:
            if code.sample is not None:
                if code.sample:
                    tests.append(CodeTest(kind, with_flag=f"sample_{code.sample}"))
                else:
                    tests.append(CodeTest(kind, without_flags=_SAMPLE_FLAGS))
            elif code.device_types is not None:
                tests.append(CodeTest(kind, device_types=tuple(code.device_types)))
            else:
                claimed = sorted({t for c in of_kind for t in c.device_types or ()})
                tests.append(CodeTest(kind, not_device_types=tuple(claimed)))
    return kinds, tests


def _device_tests(conn: Connection[Any], request: SearchRequest, patients: list[UUID]) -> list[DeviceTest]:
    """Per `device` criterion: the gateways it names, and the measuring devices (of these patients) it names."""
    out = []
    seen: list[tuple[str, str]] | None = None
    for criterion in request.values("device"):
        wanted = {parse_reference(v, criterion.modifier).id for v in criterion.values}
        if seen is None:
            seen = rows_of.device_addresses(conn, patients)
        pairs = tuple((g, a) for g, a in seen if fhir.device_id(g, a) in wanted)
        out.append(DeviceTest(tuple(sorted(w for w in wanted if w.startswith("gw-"))), pairs))
    return out


def search_observations(conn: Connection[Any], request: SearchRequest, patients: list[UUID], now: datetime) -> Page:
    kinds, tests = _code_tests(_observation_codes(request))
    found = rows_of.ObservationFilter(
        kinds=kinds,
        codes=tests,
        measured=_dates(request, "date", now),
        received=_dates(request, "_lastUpdated", now),
        ids=[_uuids(ids) for ids in _ids(request)],
        devices=_device_tests(conn, request, patients),
    )
    if not patients or not kinds:
        return Page([], total=0)
    total = None
    if _want_total(request, len(patients) <= _TOTAL_PATIENTS):
        total = rows_of.count_observations(conn, patients, found)
    if request.count == 0:
        return Page([], total=total)
    window = _window(request, request.sort_key == "-date")
    readings = rows_of.observations(conn, patients, found, window)
    readings, following, previous = _paged(
        request, readings, lambda r: (r.measured_at.isoformat(), str(r.id)), window.reverse
    )
    resources = observation_resources(conn, readings)
    page = Page(resources, next=following, previous=previous, total=total)
    page.patient_ids = {r.patient_id for r in readings}
    _include_for_observations(conn, request, readings, page)
    return page


def observation_resources(conn: Connection[Any], anchors: Sequence[fhir.ReadingRow]) -> list[dict[str, Any]]:
    """Observations of anchor readings, in their order; a systolic anchor gets its diastolic and mean partners."""
    systolic = [r for r in anchors if r.kind == Kind.BP_SYSTOLIC]
    partners: dict[tuple[Any, ...], dict[Kind, fhir.ReadingRow]] = {}
    if systolic:
        found = rows_of.readings_at(
            conn,
            sorted({r.patient_id for r in systolic}),
            [Kind.BP_DIASTOLIC.value, Kind.BP_MEAN.value],
            sorted({r.measured_at for r in systolic}),
        )
        for reading in found:
            partners.setdefault(fhir.bp_key(reading), {})[Kind(reading.kind)] = reading
    out = []
    for reading in anchors:
        if reading.kind == Kind.BP_SYSTOLIC:
            parts = {**partners.get(fhir.bp_key(reading), {}), Kind.BP_SYSTOLIC: reading}
            out.append(fhir.bp_panel(parts))
        else:
            out.append(fhir.observation(reading))
    return out


def _include_for_observations(
    conn: Connection[Any], request: SearchRequest, readings: list[fhir.ReadingRow], page: Page
) -> None:
    if {"Observation:patient", "Observation:subject"} & set(request.includes):
        page.included += patient_resources(conn, sorted({r.patient_id for r in readings}))
    if "Observation:device" in request.includes:
        pairs = {(r.gateway_id, r.device_address) for r in readings if r.device_address}
        wanted = {fhir.device_id(g, a) for g, a in pairs}
        page.included += [
            d for d in device_resources(conn, sorted({r.patient_id for r in readings})) if d["id"] in wanted
        ]


# --- Patient ------------------------------------------------------------------------------------------------------


def patient_resources(conn: Connection[Any], ids: Sequence[UUID]) -> list[dict[str, Any]]:
    return [fhir.patient(r) for r in rows_of.patients(conn, ids)]


_NATIONAL_ID_KIND: dict[str, rows_of.NationalIdKind] = {
    codes.D_NUMMER: "d-nummer",
    codes.H_NUMMER: "h-nummer",
    codes.FODSELSNUMMER: "fodselsnummer",
}


def _name_test(name: str, modifier: str | None, value: str) -> NameTest:
    match = "exact" if modifier == "exact" else "contains" if modifier == "contains" else "starts"
    return NameTest(name, value, match)  # type: ignore[arg-type]  # name is one of name/family/given


def _identifier_test(token: Token) -> PatientTest:
    if token.system is None:
        return IdOrNationalId(token.code)
    if token.system == "urn:varde:patient":
        return IdIs(token.code) if token.code else Always(True)
    if token.system in codes.NATIONAL_ID_SYSTEMS:
        if token.code is None:
            return HasNationalId(_NATIONAL_ID_KIND[token.system])
        if codes.national_id_system(token.code) != token.system:
            return Always(False)
        return NationalIdIs(token.code)
    return Always(False)


def search_patients(conn: Connection[Any], request: SearchRequest, patients: list[UUID], now: datetime) -> Page:
    criteria = [[_patient_test(c, value, now) for value in c.values] for c in request.criteria]
    total = rows_of.count_patients(conn, patients, criteria) if _want_total(request) else None
    if request.count == 0:
        return Page([], total=total)
    window = _window(request, request.sort_key == "-_id")
    rows = rows_of.search_patients(conn, patients, criteria, window)
    rows, following, previous = _paged(request, rows, lambda r: ("", str(r.id)), window.reverse)
    page = Page([fhir.patient(r) for r in rows], next=following, previous=previous, total=total)
    page.patient_ids = {r.id for r in rows}
    ids = sorted(page.patient_ids)
    if {"CarePlan:patient", "CarePlan:subject"} & set(request.revincludes):
        page.included += plan_resources(conn, ids)
    if "DetectedIssue:patient" in request.revincludes:
        page.included += issue_resources(conn, ids)
    if "Device:patient" in request.revincludes:
        page.included += device_resources(conn, ids)
    return page


def _patient_test(criterion: Criterion, value: str, now: datetime) -> PatientTest:
    name = criterion.name
    if name == "_id":
        return IdIs(value)
    if name == "identifier":
        return _identifier_test(parse_token(value))
    if name in ("name", "family", "given"):
        return _name_test(name, criterion.modifier, value)
    if name == "active":
        token = parse_token(value)
        if token.code not in ("true", "false"):
            raise FhirError(400, "active must be true or false")
        return ActiveIs(token.code == "true")
    prefix, rng = parse_date(value)
    test = date_test(prefix, rng, now)
    return BornOn(test) if name == "birthdate" else UpdatedOn(test)


# --- DetectedIssue, CarePlan, Device ------------------------------------------------------------------------------


def _issue(row: rows_of.IssueRow) -> dict[str, Any]:
    return fhir.detected_issue(row, explanation_nb=row.explanation_nb, updated_at=row.updated_at)


def issue_resources(
    conn: Connection[Any], patient_ids: Sequence[UUID], *, limit: int | None = _REVINCLUDE_LIMIT
) -> list[dict[str, Any]]:
    """The patients' alarms, newest first (at most `limit`; None for all)."""
    return [_issue(r) for r in rows_of.issues(conn, patient_ids, limit=limit)]


def read_issue(conn: Connection[Any], alarm_id: UUID) -> dict[str, Any] | None:
    row = rows_of.issue(conn, alarm_id)
    return _issue(row) if row else None


def search_issues(conn: Connection[Any], request: SearchRequest, patients: list[UUID], now: datetime) -> Page:
    rules = [
        [t.code for t in map(parse_token, c.values) if t.system in (None, "urn:varde:alarm-rule") and t.code]
        for c in request.values("code")
    ]
    found = rows_of.IssueFilter(
        identified=_dates(request, "identified", now),
        updated=_dates(request, "_lastUpdated", now),
        ids=_ids(request),
        rules=rules,
    )
    total = rows_of.count_issues(conn, patients, found) if _want_total(request) else None
    if request.count == 0:
        return Page([], total=total)
    window = _window(request, request.sort_key == "-identified")
    rows = rows_of.search_issues(conn, patients, found, window)
    rows, following, previous = _paged(request, rows, lambda r: (r.opened_at.isoformat(), str(r.id)), window.reverse)
    page = Page([_issue(r) for r in rows], next=following, previous=previous, total=total)
    page.patient_ids = {r.patient_id for r in rows}
    if "DetectedIssue:patient" in request.includes:
        page.included += patient_resources(conn, sorted(page.patient_ids))
    return page


_PLAN_STATUS = {"draft": "draft", "active": "active", "revoked": "retired"}


def plan_resources(conn: Connection[Any], patient_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    return [fhir.care_plan(r) for r in rows_of.plans(conn, patient_ids)]


def search_plans(conn: Connection[Any], request: SearchRequest, patients: list[UUID], now: datetime) -> Page:
    statuses = [[_PLAN_STATUS.get(parse_token(v).code or "", "") for v in c.values] for c in request.values("status")]
    found = rows_of.PlanFilter(updated=_dates(request, "_lastUpdated", now), ids=_ids(request), statuses=statuses)
    total = rows_of.count_plans(conn, patients, found) if _want_total(request) else None
    if request.count == 0:
        return Page([], total=total)
    window = _window(request, True)
    rows = rows_of.search_plans(conn, patients, found, window)
    rows, following, previous = _paged(request, rows, lambda r: (r.created_at.isoformat(), str(r.id)), window.reverse)
    page = Page([fhir.care_plan(r) for r in rows], next=following, previous=previous, total=total)
    page.patient_ids = {r.patient_id for r in rows}
    if {"CarePlan:patient", "CarePlan:subject"} & set(request.includes):
        page.included += patient_resources(conn, sorted(page.patient_ids))
    return page


def device_resources(conn: Connection[Any], patient_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    """The patients' home gateways and the measuring devices seen through them, ordered by id."""
    home = rows_of.home_devices(conn, patient_ids)
    patient_of = {g.id: g.patient_id for g in home.gateways if g.patient_id is not None}
    out = [fhir.gateway_device(g) for g in home.gateways]
    out += [fhir.measuring_device(d, patient_of[d.gateway_id]) for d in home.devices]
    return sorted(out, key=lambda r: str(r["id"]))


def _device_matches(resource: dict[str, Any], criterion: Criterion) -> bool:
    for value in criterion.values:
        if criterion.name == "_id" and resource["id"] == value:
            return True
        if criterion.name == "patient":
            ref = parse_reference(value, criterion.modifier)
            if resource["patient"]["reference"] == f"Patient/{ref.id}":
                return True
        if criterion.name in ("type", "identifier"):
            token = parse_token(value)
            if criterion.name == "identifier":
                pairs = [(i["system"], i["value"]) for i in resource.get("identifier", [])]
            else:
                type_ = resource.get("type", {})
                pairs = [(c["system"], c["code"]) for c in type_.get("coding", [])]
                for spec in resource.get("specialization", []):
                    pairs += [(c["system"], c["code"]) for c in spec["systemType"]["coding"]]
                pairs.append((None, type_.get("text", "").replace(" ", "_")))
            for system, code in pairs:
                if (token.system is None or token.system == system) and token.code in (None, code):
                    return True
    return False


def search_devices(conn: Connection[Any], request: SearchRequest, patients: list[UUID], now: datetime) -> Page:
    resources = device_resources(conn, patients)
    for criterion in request.criteria:
        resources = [r for r in resources if _device_matches(r, criterion)]
    if request.sort_key == "-_id":
        resources.reverse()
    total = len(resources) if _want_total(request) else None
    cursor = request.cursor
    if cursor is not None:
        key, descending = cursor.key[1], request.sort_key == "-_id"

        def after(ident: str) -> bool:
            return ident < key if descending else ident > key

        if cursor.direction == "next":
            resources = [r for r in resources if after(str(r["id"]))]
        else:
            resources = [r for r in resources if str(r["id"]) != key and not after(str(r["id"]))]
            resources.reverse()
    if request.count == 0:
        return Page([], total=total)
    reverse = cursor is not None and cursor.direction == "prev"
    rows, following, previous = _paged(request, resources, lambda r: ("", str(r["id"])), reverse)
    page = Page(rows, next=following, previous=previous, total=total)
    page.patient_ids = {UUID(r["patient"]["reference"].split("/")[1]) for r in rows}
    if "Device:patient" in request.includes:
        page.included += patient_resources(conn, sorted(page.patient_ids))
    return page


def _questionnaire_tests(criterion: Criterion) -> list[QuestionnaireIs]:
    tests = []
    for value in criterion.values:
        canonical, _, version = value.partition("|")
        name = canonical.removeprefix(f"{fhir.QUESTIONNAIRE}:")
        tests.append(QuestionnaireIs(name, int(version) if version.isdigit() else None))
    return tests


def search_questionnaire_responses(
    conn: Connection[Any], request: SearchRequest, patients: list[UUID], now: datetime
) -> Page:
    found = rows_of.ResponseFilter(
        authored=_dates(request, "authored", now),
        updated=_dates(request, "_lastUpdated", now),
        ids=_ids(request),
        questionnaires=[_questionnaire_tests(c) for c in request.values("questionnaire")],
    )
    total = rows_of.count_responses(conn, patients, found) if _want_total(request) else None
    if request.count == 0:
        return Page([], total=total)
    window = _window(request, request.sort_key == "-authored")
    rows = rows_of.search_responses(conn, patients, found, window)
    rows, following, previous = _paged(request, rows, lambda r: (r.answered_at.isoformat(), str(r.id)), window.reverse)
    page = Page([fhir.questionnaire_response(r) for r in rows], next=following, previous=previous, total=total)
    page.patient_ids = {r.patient_id for r in rows}
    if {"QuestionnaireResponse:patient", "QuestionnaireResponse:subject"} & set(request.includes):
        page.included += patient_resources(conn, sorted(page.patient_ids))
    return page


# --- EpisodeOfCare ------------------------------------------------------------------------------------------------


def _reference_ids(request: SearchRequest, name: str, rtype: str) -> list[list[UUID]]:
    """Per criterion of a reference parameter, the ids it names of `rtype` (an empty list matches nothing)."""
    out = []
    for criterion in request.values(name):
        refs = [parse_reference(v, criterion.modifier) for v in criterion.values]
        out.append(_uuids([r.id for r in refs if r.type in (None, rtype)]))
    return out


def search_episodes(conn: Connection[Any], request: SearchRequest, patients: list[UUID], now: datetime) -> Page:
    found = rows_of.EpisodeFilter(
        started=_dates(request, "date", now),
        updated=_dates(request, "_lastUpdated", now),
        ids=_ids(request),
        statuses=[[parse_token(v).code or "" for v in c.values] for c in request.values("status")],
        organisations=_reference_ids(request, "organization", "Organization"),
        care_managers=_reference_ids(request, "care-manager", "Practitioner"),
    )
    total = rows_of.count_episodes(conn, patients, found) if _want_total(request) else None
    if request.count == 0:
        return Page([], total=total)
    window = _window(request, request.sort_key == "-date")
    rows = rows_of.search_episodes(conn, patients, found, window)
    rows, following, previous = _paged(request, rows, lambda r: (r.started_at.isoformat(), str(r.id)), window.reverse)
    page = Page([fhir.episode_of_care(r) for r in rows], next=following, previous=previous, total=total)
    page.patient_ids = {r.patient_id for r in rows}
    if "EpisodeOfCare:patient" in request.includes:
        page.included += patient_resources(conn, sorted(page.patient_ids))
    return page


def episode_resources(conn: Connection[Any], patient_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    return [fhir.episode_of_care(r) for r in rows_of.episodes(conn, patient_ids)]


SEARCHES: dict[str, Callable[[Connection[Any], SearchRequest, list[UUID], datetime], Page]] = {
    "Patient": search_patients,
    "Observation": search_observations,
    "DetectedIssue": search_issues,
    "CarePlan": search_plans,
    "Device": search_devices,
    "QuestionnaireResponse": search_questionnaire_responses,
    "EpisodeOfCare": search_episodes,
}
