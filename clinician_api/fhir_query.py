"""FHIR searches run against the database: a checked `SearchRequest` → one page of resources, the included
resources, keyset cursors for the next and previous pages, and the total where it is cheap.

Every search starts from the patients the caller has a duty of care for (`access.visible_patients_clause`); a
patient outside them is simply absent. Observations are read per (patient, kind) along the readings index
`(patient_id, kind, measured_at)`, newest first, so a page costs the same with a year of readings as with a day, and
a date bound prunes the readings partitions. The caller writes the audit rows for the patients shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, sql

from clinician_api import fhir
from clinician_api import fhir_coding as codes
from clinician_api.access import Principal, visible_patients_clause
from clinician_api.fhir_search import (
    Criterion,
    Cursor,
    FhirError,
    SearchRequest,
    Token,
    date_condition,
    parse_date,
    parse_reference,
    parse_token,
)
from store.episodes import EPISODE_FROM
from vitals import Kind

PATIENT_COLUMNS = "p.id, p.display_name, p.national_id, p.birth_date, p.active, p.updated_at"
PLAN_COLUMNS = "id, patient_id, version, status, created_at, activated_at, retired_at, body"
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
    clause, params = visible_patients_clause(principal)
    where: list[sql.Composable] = [clause]
    for criterion in request.values("patient") + request.values("subject"):
        where.append(sql.SQL("p.id = ANY(%s::uuid[])"))
        params.append(_patient_refs(criterion))
    rows = conn.execute(
        sql.SQL("SELECT p.id FROM patients p WHERE {} ORDER BY p.id").format(sql.SQL(" AND ").join(where)), params
    ).fetchall()
    return [r[0] for r in rows]


def narrow_to_references(request: SearchRequest, patients: list[UUID]) -> list[UUID]:
    """A compartment's patient, kept only if every `patient` / `subject` criterion names it too."""
    for criterion in request.values("patient") + request.values("subject"):
        refs = set(_patient_refs(criterion))
        patients = [p for p in patients if p in refs]
    return patients


def _any(conditions: Sequence[sql.Composable]) -> sql.Composable:
    """The conditions ORed, in parentheses; none is false."""
    return sql.SQL("({})").format(sql.SQL(" OR ").join(conditions)) if conditions else sql.SQL("false")


def _dates(request: SearchRequest, name: str, column: str, now: datetime) -> tuple[list[sql.Composable], list[Any]]:
    where: list[sql.Composable] = []
    params: list[Any] = []
    for criterion in request.values(name):
        ors: list[sql.Composable] = []
        for value in criterion.values:
            prefix, rng = parse_date(value)
            condition, p = date_condition(column, prefix, rng, now)
            ors.append(condition)
            params += p
        where.append(_any(ors))
    return where, params


def _ids(request: SearchRequest, column: str, cast: str = "text") -> tuple[list[sql.Composable], list[Any]]:
    where: list[sql.Composable] = []
    params: list[Any] = []
    for criterion in request.values("_id"):
        values: list[Any] = _uuids(criterion.values) if cast == "uuid" else list(criterion.values)
        where.append(sql.SQL("{} = ANY(%s::{}[])").format(sql.SQL(column), sql.SQL(cast)))
        params.append(values)
    return where, params


def _keyset(
    request: SearchRequest, key_sql: str, key_cast: str, id_sql: str, id_cast: str, descending: bool
) -> tuple[sql.Composable, list[Any], bool]:
    """The cursor condition and whether rows are read in reverse (a `previous` page)."""
    cursor = request.cursor
    if cursor is None:
        return sql.SQL("true"), [], False
    reverse = cursor.direction == "prev"
    after = descending != reverse  # rows that come later in the reading order have smaller keys
    op, bound = ("<", "<=") if after else (">", ">=")
    clause = sql.SQL("{} {} %s::{} AND ({}, {}) {} (%s::{}, %s::{})").format(
        sql.SQL(key_sql),
        sql.SQL(bound),
        sql.SQL(key_cast),
        sql.SQL(key_sql),
        sql.SQL(id_sql),
        sql.SQL(op),
        sql.SQL(key_cast),
        sql.SQL(id_cast),
    )
    return clause, [cursor.key[0], cursor.key[0], cursor.key[1]], reverse


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


_SAMPLE_FLAGS = [f"sample_{s}" for s in codes.GLUCOSE_SAMPLE_TYPES]


def _code_condition(chosen: list[codes.ObservationCode]) -> tuple[list[str], sql.Composable, list[Any]]:
    """The kinds to read and the condition on a reading `r` that selects exactly the chosen codes."""
    kinds = sorted({c.kind.value for c in chosen})
    ors: list[sql.Composable] = []
    params: list[Any] = []
    for kind in kinds:
        of_kind = [c for c in codes.OBSERVATION_CODES if c.kind == kind]
        picked = [c for c in chosen if c.kind == kind]
        if len(picked) == len(of_kind):
            ors.append(sql.SQL("r.kind = %s"))
            params.append(kind)
            continue
        for code in picked:
            if code.sample is not None:
                if code.sample:
                    ors.append(sql.SQL("(r.kind = %s AND %s = ANY(r.flags))"))
                    params += [kind, f"sample_{code.sample}"]
                else:
                    ors.append(sql.SQL("(r.kind = %s AND NOT (r.flags && %s::text[]))"))
                    params += [kind, _SAMPLE_FLAGS]
            elif code.device_types is not None:
                ors.append(sql.SQL("(r.kind = %s AND r.device_type = ANY(%s::text[]))"))
                params += [kind, list(code.device_types)]
            else:
                claimed = sorted({t for c in of_kind for t in c.device_types or ()})
                ors.append(sql.SQL("(r.kind = %s AND (r.device_type IS NULL OR r.device_type <> ALL(%s::text[])))"))
                params += [kind, claimed]
    return kinds, _any(ors), params


def _device_condition(
    conn: Connection[Any], request: SearchRequest, patients: list[UUID]
) -> tuple[list[sql.Composable], list[Any]]:
    where: list[sql.Composable] = []
    params: list[Any] = []
    for criterion in request.values("device"):
        wanted = {parse_reference(v, criterion.modifier).id for v in criterion.values}
        rows = conn.execute(
            "SELECT d.gateway_id, upper(d.address) FROM devices d JOIN gateways g ON g.id = d.gateway_id "
            "WHERE g.patient_id = ANY(%s)",
            (patients,),
        ).fetchall()
        pairs = [(g, a) for g, a in rows if fhir.device_id(g, a) in wanted]
        where.append(
            sql.SQL(
                "(r.gateway_id = ANY(%s::text[]) OR (r.gateway_id, upper(r.device_address)) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[])))"
            )
        )
        params += [sorted(w for w in wanted if w.startswith("gw-")), [p[0] for p in pairs], [p[1] for p in pairs]]
    return where, params


_OBS_COLS = ", ".join(f"r.{c}" for c in fhir.ReadingRow.columns().split(", "))


def search_observations(conn: Connection[Any], request: SearchRequest, patients: list[UUID], now: datetime) -> Page:
    kinds, code_sql, params = _code_condition(_observation_codes(request))
    where: list[sql.Composable] = [code_sql]
    for extra, extra_params in (
        _dates(request, "date", "r.measured_at", now),
        _dates(request, "_lastUpdated", "r.received_at", now),
        _ids(request, "r.id", "uuid"),
        _device_condition(conn, request, patients),
    ):
        where += extra
        params += extra_params
    if not patients or not kinds:
        return Page([], total=0)
    descending = request.sort_key == "-date"
    cursor_sql, cursor_params, reverse = _keyset(request, "r.measured_at", "timestamptz", "r.id", "uuid", descending)
    order = "DESC" if descending != reverse else "ASC"
    total = None
    if _want_total(request, len(patients) <= _TOTAL_PATIENTS):
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM readings r WHERE r.patient_id = ANY(%s) AND r.kind = ANY(%s) AND {}").format(
                sql.SQL(" AND ").join(where)
            ),
            [patients, kinds, *params],
        ).fetchone()
        total = int(row[0]) if row else 0
    if request.count == 0:
        return Page([], total=total)
    limit = request.count + 1
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM unnest(%s::uuid[]) AS pt(id) CROSS JOIN unnest(%s::text[]) AS k(kind) "
            "CROSS JOIN LATERAL (SELECT {} FROM readings r WHERE r.patient_id = pt.id AND r.kind = "
            "k.kind AND {} AND {} ORDER BY r.measured_at {}, r.id {} LIMIT %s) r ORDER BY "
            "r.measured_at {}, r.id {} LIMIT %s"
        ).format(
            sql.SQL(_OBS_COLS),
            sql.SQL(_OBS_COLS),
            sql.SQL(" AND ").join(where),
            cursor_sql,
            sql.SQL(order),
            sql.SQL(order),
            sql.SQL(order),
            sql.SQL(order),
        ),
        [patients, kinds, *params, *cursor_params, limit, limit],
    ).fetchall()
    readings = [fhir.ReadingRow(*r) for r in rows]
    readings, following, previous = _paged(request, readings, lambda r: (r.measured_at.isoformat(), str(r.id)), reverse)
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
        rows = conn.execute(
            sql.SQL(
                "SELECT {} FROM readings WHERE patient_id = ANY(%s) AND kind = ANY(%s) AND measured_at = "
                "ANY(%s::timestamptz[])"
            ).format(sql.SQL(fhir.ReadingRow.columns())),
            (
                sorted({r.patient_id for r in systolic}),
                [Kind.BP_DIASTOLIC.value, Kind.BP_MEAN.value],
                sorted({r.measured_at for r in systolic}),
            ),
        ).fetchall()
        for row in rows:
            reading = fhir.ReadingRow(*row)
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
    rows = conn.execute(
        sql.SQL("SELECT {} FROM patients p WHERE p.id = ANY(%s) ORDER BY p.id").format(sql.SQL(PATIENT_COLUMNS)),
        (list(ids),),
    )
    return [fhir.patient(r) for r in rows.fetchall()]


_FAMILY = r"regexp_replace(p.display_name, '^.*\s', '')"
_GIVEN = r"regexp_replace(p.display_name, '\s*\S+$', '')"
_NUMBER_KIND_SQL = {
    codes.D_NUMMER: "substr(p.national_id, 1, 1) IN ('4', '5', '6', '7')",
    codes.H_NUMMER: "substr(p.national_id, 1, 1) NOT IN ('4', '5', '6', '7') "
    "AND substr(p.national_id, 3, 1) IN ('4', '5')",
    codes.FODSELSNUMMER: "substr(p.national_id, 1, 1) NOT IN ('4', '5', '6', '7') "
    "AND substr(p.national_id, 3, 1) NOT IN ('4', '5')",
}


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _string_condition(name: str, modifier: str | None, value: str) -> tuple[sql.Composable, list[Any]]:
    words = {"name": "p.display_name", "family": _FAMILY, "given": _GIVEN}[name]
    if modifier == "exact":
        if name == "family":
            return sql.SQL("{} = %s").format(sql.SQL(_FAMILY)), [value]
        return sql.SQL("(p.display_name = %s OR %s = ANY(regexp_split_to_array({}, '\\s+')))").format(sql.SQL(words)), [
            value,
            value,
        ]
    if modifier == "contains":
        return sql.SQL("{} ILIKE %s").format(sql.SQL(words)), [f"%{_like(value)}%"]
    return sql.SQL("({} ILIKE %s OR {} ILIKE %s)").format(sql.SQL(words), sql.SQL(words)), [
        f"{_like(value)}%",
        f"% {_like(value)}%",
    ]


def _identifier_condition(token: Token) -> tuple[sql.Composable, list[Any]]:
    if token.system is None:
        return sql.SQL("(p.national_id = %s OR p.id::text = %s)"), [token.code, token.code]
    if token.system == "urn:varde:patient":
        return (sql.SQL("p.id::text = %s"), [token.code]) if token.code else (sql.SQL("true"), [])
    if token.system in codes.NATIONAL_ID_SYSTEMS:
        if token.code is None:
            return sql.SQL("(p.national_id IS NOT NULL AND {})").format(sql.SQL(_NUMBER_KIND_SQL[token.system])), []
        if codes.national_id_system(token.code) != token.system:
            return sql.SQL("false"), []
        return sql.SQL("p.national_id = %s"), [token.code]
    return sql.SQL("false"), []


def search_patients(conn: Connection[Any], request: SearchRequest, patients: list[UUID], now: datetime) -> Page:
    where: list[sql.Composable] = [sql.SQL("p.id = ANY(%s)")]
    params: list[Any] = [patients]
    for criterion in request.criteria:
        ors: list[sql.Composable] = []
        for value in criterion.values:
            condition, p = _patient_condition(criterion, value, now)
            ors.append(condition)
            params += p
        where.append(_any(ors))
    descending = request.sort_key == "-_id"
    cursor_sql, cursor_params, reverse = _keyset(request, "''", "text", "p.id", "uuid", descending)
    order = "DESC" if descending != reverse else "ASC"
    total = None
    if _want_total(request):
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM patients p WHERE {}").format(sql.SQL(" AND ").join(where)), params
        ).fetchone()
        total = int(row[0]) if row else 0
    if request.count == 0:
        return Page([], total=total)
    rows = conn.execute(
        sql.SQL("SELECT {} FROM patients p WHERE {} AND {} ORDER BY p.id {} LIMIT %s").format(
            sql.SQL(PATIENT_COLUMNS), sql.SQL(" AND ").join(where), cursor_sql, sql.SQL(order)
        ),
        [*params, *cursor_params, request.count + 1],
    ).fetchall()
    rows, following, previous = _paged(request, rows, lambda r: ("", str(r[0])), reverse)
    page = Page([fhir.patient(r) for r in rows], next=following, previous=previous, total=total)
    page.patient_ids = {r[0] for r in rows}
    ids = sorted(page.patient_ids)
    if {"CarePlan:patient", "CarePlan:subject"} & set(request.revincludes):
        page.included += plan_resources(conn, ids)
    if "DetectedIssue:patient" in request.revincludes:
        page.included += issue_resources(conn, ids)
    if "Device:patient" in request.revincludes:
        page.included += device_resources(conn, ids)
    return page


def _patient_condition(criterion: Criterion, value: str, now: datetime) -> tuple[sql.Composable, list[Any]]:
    name = criterion.name
    if name == "_id":
        return sql.SQL("p.id::text = %s"), [value]
    if name == "identifier":
        return _identifier_condition(parse_token(value))
    if name in ("name", "family", "given"):
        return _string_condition(name, criterion.modifier, value)
    if name == "active":
        token = parse_token(value)
        if token.code not in ("true", "false"):
            raise FhirError(400, "active must be true or false")
        return sql.SQL("p.active = %s"), [token.code == "true"]
    prefix, rng = parse_date(value)
    column = "(p.birth_date::timestamp AT TIME ZONE 'Europe/Oslo')" if name == "birthdate" else "p.updated_at"
    return date_condition(column, prefix, rng, now)


# --- DetectedIssue, CarePlan, Device ------------------------------------------------------------------------------

_ALARM_COLS = ", ".join(f"a.{c}" for c in fhir.ALARM_COLUMNS.split(", ")) + ", a.explanation_nb, a.updated_at"


def _issue(row: Sequence[Any]) -> dict[str, Any]:
    return fhir.detected_issue(row[:12], explanation_nb=row[12], updated_at=row[13])


def issue_resources(
    conn: Connection[Any], patient_ids: Sequence[UUID], *, limit: int | None = _REVINCLUDE_LIMIT
) -> list[dict[str, Any]]:
    """The patients' alarms, newest first (at most `limit`; None for all)."""
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM alarms a WHERE a.patient_id = ANY(%s) ORDER BY a.opened_at DESC, a.id DESC LIMIT %s"
        ).format(sql.SQL(_ALARM_COLS)),
        (list(patient_ids), limit),
    ).fetchall()
    return [_issue(r) for r in rows]


def read_issue(conn: Connection[Any], alarm_id: UUID) -> dict[str, Any] | None:
    row = conn.execute(
        sql.SQL("SELECT {} FROM alarms a WHERE a.id = %s").format(sql.SQL(_ALARM_COLS)), (alarm_id,)
    ).fetchone()
    return _issue(row) if row else None


def search_issues(conn: Connection[Any], request: SearchRequest, patients: list[UUID], now: datetime) -> Page:
    where: list[sql.Composable] = [sql.SQL("a.patient_id = ANY(%s)")]
    params: list[Any] = [patients]
    for extra, extra_params in (
        _dates(request, "identified", "a.opened_at", now),
        _dates(request, "_lastUpdated", "a.updated_at", now),
        _ids(request, "a.id::text"),
    ):
        where += extra
        params += extra_params
    for criterion in request.values("code"):
        rules = [
            t.code for t in map(parse_token, criterion.values) if t.system in (None, "urn:varde:alarm-rule") and t.code
        ]
        where.append(sql.SQL("a.rule = ANY(%s::text[])"))
        params.append(rules)
    descending = request.sort_key == "-identified"
    cursor_sql, cursor_params, reverse = _keyset(request, "a.opened_at", "timestamptz", "a.id", "uuid", descending)
    order = "DESC" if descending != reverse else "ASC"
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM alarms a WHERE {}").format(sql.SQL(" AND ").join(where)), params
    ).fetchone()
    total = int(row[0]) if row and _want_total(request) else None
    if request.count == 0:
        return Page([], total=total)
    rows = conn.execute(
        sql.SQL("SELECT {} FROM alarms a WHERE {} AND {} ORDER BY a.opened_at {}, a.id {} LIMIT %s").format(
            sql.SQL(_ALARM_COLS), sql.SQL(" AND ").join(where), cursor_sql, sql.SQL(order), sql.SQL(order)
        ),
        [*params, *cursor_params, request.count + 1],
    ).fetchall()
    rows, following, previous = _paged(request, rows, lambda r: (r[5].isoformat(), str(r[0])), reverse)
    page = Page([_issue(r) for r in rows], next=following, previous=previous, total=total)
    page.patient_ids = {r[1] for r in rows}
    if "DetectedIssue:patient" in request.includes:
        page.included += patient_resources(conn, sorted(page.patient_ids))
    return page


_PLAN_STATUS = {"draft": "draft", "active": "active", "revoked": "retired"}


def plan_resources(conn: Connection[Any], patient_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM self_management_plans WHERE patient_id = ANY(%s) ORDER BY patient_id, version DESC"
        ).format(sql.SQL(PLAN_COLUMNS)),
        (list(patient_ids),),
    ).fetchall()
    return [fhir.care_plan(r) for r in rows]


def search_plans(conn: Connection[Any], request: SearchRequest, patients: list[UUID], now: datetime) -> Page:
    where: list[sql.Composable] = [sql.SQL("s.patient_id = ANY(%s)")]
    params: list[Any] = [patients]
    for extra, extra_params in (
        _dates(request, "_lastUpdated", "greatest(s.created_at, s.activated_at, s.retired_at)", now),
        _ids(request, "s.id::text"),
    ):
        where += extra
        params += extra_params
    for criterion in request.values("status"):
        statuses = [_PLAN_STATUS.get(parse_token(v).code or "", "") for v in criterion.values]
        where.append(sql.SQL("s.status = ANY(%s::text[])"))
        params.append(statuses)
    descending = True
    cursor_sql, cursor_params, reverse = _keyset(request, "s.created_at", "timestamptz", "s.id", "uuid", descending)
    order = "DESC" if descending != reverse else "ASC"
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM self_management_plans s WHERE {}").format(sql.SQL(" AND ").join(where)), params
    ).fetchone()
    total = int(row[0]) if row and _want_total(request) else None
    if request.count == 0:
        return Page([], total=total)
    cols = ", ".join(f"s.{c}" for c in PLAN_COLUMNS.split(", "))
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM self_management_plans s WHERE {} AND {} ORDER BY s.created_at {}, s.id {} LIMIT %s"
        ).format(sql.SQL(cols), sql.SQL(" AND ").join(where), cursor_sql, sql.SQL(order), sql.SQL(order)),
        [*params, *cursor_params, request.count + 1],
    ).fetchall()
    rows, following, previous = _paged(request, rows, lambda r: (r[4].isoformat(), str(r[0])), reverse)
    page = Page([fhir.care_plan(r) for r in rows], next=following, previous=previous, total=total)
    page.patient_ids = {r[1] for r in rows}
    if {"CarePlan:patient", "CarePlan:subject"} & set(request.includes):
        page.included += patient_resources(conn, sorted(page.patient_ids))
    return page


def device_resources(conn: Connection[Any], patient_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    """The patients' home gateways and the measuring devices seen through them, ordered by id."""
    gateways = conn.execute(
        "SELECT id, patient_id, enabled, agent_version, state FROM gateways WHERE patient_id = ANY(%s) ORDER BY id",
        (list(patient_ids),),
    ).fetchall()
    patient_of = {g[0]: g[1] for g in gateways}
    devices = conn.execute(
        "SELECT gateway_id, address, type, model FROM devices WHERE gateway_id = ANY(%s) ORDER BY gateway_id, address",
        (list(patient_of),),
    ).fetchall()
    out = [fhir.gateway_device(g) for g in gateways] + [fhir.measuring_device(d, patient_of[d[0]]) for d in devices]
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


_QR_COLS = (
    "q.id, q.patient_id, q.questionnaire, q.plan_version, q.answered_at, q.received_at, q.answers, q.score, q.zone"
)


def search_questionnaire_responses(
    conn: Connection[Any], request: SearchRequest, patients: list[UUID], now: datetime
) -> Page:
    where: list[sql.Composable] = [sql.SQL("q.patient_id = ANY(%s)")]
    params: list[Any] = [patients]
    for extra, extra_params in (
        _dates(request, "authored", "q.answered_at", now),
        _dates(request, "_lastUpdated", "q.received_at", now),
        _ids(request, "q.id::text"),
    ):
        where += extra
        params += extra_params
    for criterion in request.values("questionnaire"):
        ors: list[sql.Composable] = []
        for value in criterion.values:
            canonical, _, version = value.partition("|")
            name = canonical.removeprefix(f"{fhir.QUESTIONNAIRE}:")
            if version.isdigit():
                ors.append(sql.SQL("(q.questionnaire = %s AND q.plan_version = %s)"))
                params += [name, int(version)]
            else:
                ors.append(sql.SQL("q.questionnaire = %s"))
                params.append(name)
        where.append(_any(ors))
    descending = request.sort_key == "-authored"
    cursor_sql, cursor_params, reverse = _keyset(request, "q.answered_at", "timestamptz", "q.id", "uuid", descending)
    order = "DESC" if descending != reverse else "ASC"
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM questionnaire_responses q WHERE {}").format(sql.SQL(" AND ").join(where)), params
    )
    counted = row.fetchone()
    total = int(counted[0]) if counted and _want_total(request) else None
    if request.count == 0:
        return Page([], total=total)
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM questionnaire_responses q WHERE {} AND {} ORDER BY q.answered_at {}, q.id {} LIMIT %s"
        ).format(sql.SQL(_QR_COLS), sql.SQL(" AND ").join(where), cursor_sql, sql.SQL(order), sql.SQL(order)),
        [*params, *cursor_params, request.count + 1],
    ).fetchall()
    rows, following, previous = _paged(request, rows, lambda r: (r[4].isoformat(), str(r[0])), reverse)
    page = Page([fhir.questionnaire_response(r) for r in rows], next=following, previous=previous, total=total)
    page.patient_ids = {r[1] for r in rows}
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
    where: list[sql.Composable] = [sql.SQL("e.patient_id = ANY(%s)")]
    params: list[Any] = [patients]
    for extra, extra_params in (
        _dates(request, "date", "e.started_at", now),
        _dates(request, "_lastUpdated", "e.updated_at", now),
        _ids(request, "e.id::text"),
    ):
        where += extra
        params += extra_params
    for criterion in request.values("status"):
        where.append(sql.SQL("e.status = ANY(%s::text[])"))
        params.append([parse_token(v).code or "" for v in criterion.values])
    for column, name, rtype in (
        ("t.organisation_id", "organization", "Organization"),
        ("e.care_manager_id", "care-manager", "Practitioner"),
    ):
        for ids in _reference_ids(request, name, rtype):
            where.append(sql.SQL("{} = ANY(%s::uuid[])").format(sql.SQL(column)))
            params.append(ids)
    descending = request.sort_key == "-date"
    cursor_sql, cursor_params, reverse = _keyset(request, "e.started_at", "timestamptz", "e.id", "uuid", descending)
    order = "DESC" if descending != reverse else "ASC"
    counted = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.SQL(EPISODE_FROM), sql.SQL(" AND ").join(where)), params
    ).fetchone()
    total = int(counted[0]) if counted and _want_total(request) else None
    if request.count == 0:
        return Page([], total=total)
    rows = conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE {} AND {} ORDER BY e.started_at {}, e.id {} LIMIT %s").format(
            sql.SQL(fhir.EPISODE_COLUMNS),
            sql.SQL(EPISODE_FROM),
            sql.SQL(" AND ").join(where),
            cursor_sql,
            sql.SQL(order),
            sql.SQL(order),
        ),
        [*params, *cursor_params, request.count + 1],
    ).fetchall()
    rows, following, previous = _paged(request, rows, lambda r: (r[10].isoformat(), str(r[0])), reverse)
    page = Page([fhir.episode_of_care(r) for r in rows], next=following, previous=previous, total=total)
    page.patient_ids = {r[1] for r in rows}
    if "EpisodeOfCare:patient" in request.includes:
        page.included += patient_resources(conn, sorted(page.patient_ids))
    return page


def episode_resources(conn: Connection[Any], patient_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    rows = conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE e.patient_id = ANY(%s) ORDER BY e.patient_id, e.started_at DESC").format(
            sql.SQL(fhir.EPISODE_COLUMNS), sql.SQL(EPISODE_FROM)
        ),
        (list(patient_ids),),
    ).fetchall()
    return [fhir.episode_of_care(r) for r in rows]


SEARCHES: dict[str, Callable[[Connection[Any], SearchRequest, list[UUID], datetime], Page]] = {
    "Patient": search_patients,
    "Observation": search_observations,
    "DetectedIssue": search_issues,
    "CarePlan": search_plans,
    "Device": search_devices,
    "QuestionnaireResponse": search_questionnaire_responses,
    "EpisodeOfCare": search_episodes,
}
