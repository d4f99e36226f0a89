"""The reads behind the FHIR search API: one page of each resource's rows, keyset-paged (`Window`), and the count
of the matches. A search is a conjunction of criteria, each criterion a disjunction of tests (FHIR's AND across
repeated parameters, OR across comma-separated values); an empty criterion matches nothing. The tests are plain
values (`Between`, `CodeTest`, `NameTest`, …) that `clinician_api.fhir_query` builds from the checked request, and
only here do they become SQL. Which patients a caller may see is the caller's clause (`store.access`), passed in.

Observations are read per (patient, kind) along the readings index `(patient_id, kind, measured_at)`, newest first,
so a page costs the same with a year of readings as with a day, and a date bound prunes the readings partitions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, NamedTuple
from uuid import UUID

from psycopg import Connection, sql
from psycopg.rows import class_row, scalar_row

from store.episodes import EPISODE_COLUMNS, EPISODE_FROM, Episode
from store.plans import PlanRow
from store.readings import StoredReading, reading_columns
from vitals.vocabulary import Severity

# --- tests ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Between:
    """start ≤ t < end."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Outside:
    """t < start or t ≥ end."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class From:
    """t ≥ at."""

    at: datetime


@dataclass(frozen=True, slots=True)
class Before:
    """t < at."""

    at: datetime


DateTest = Between | Outside | From | Before


@dataclass(frozen=True, slots=True)
class Window:
    """Which page to read: the sort direction, the cursor's (key, id) with the side it points to, and how many rows
    (the page size and one more, so the caller knows whether there is a next page)."""

    descending: bool
    limit: int
    after: tuple[str, str] | None = None
    """The cursor row's sort key (an ISO instant; '' when sorted by id alone) and id."""
    reverse: bool = False
    """A previous page: rows are read the other way from the cursor (the caller turns them back)."""

    @property
    def order(self) -> sql.SQL:
        return sql.SQL("DESC" if self.descending != self.reverse else "ASC")


def _any(conditions: Sequence[sql.Composable]) -> sql.Composable:
    """The conditions ORed, in parentheses; none is false."""
    return sql.SQL("({})").format(sql.SQL(" OR ").join(conditions)) if conditions else sql.SQL("false")


def _date(column: sql.Composable, test: DateTest) -> tuple[sql.Composable, list[Any]]:
    match test:
        case Between(start, end):
            return sql.SQL("({c} >= %s AND {c} < %s)").format(c=column), [start, end]
        case Outside(start, end):
            return sql.SQL("({c} < %s OR {c} >= %s)").format(c=column), [start, end]
        case From(at):
            return sql.SQL("{} >= %s").format(column), [at]
        case Before(at):
            return sql.SQL("{} < %s").format(column), [at]


class _Where:
    """A conjunction of conditions with their parameters, in order."""

    def __init__(self, condition: sql.Composable, *params: Any) -> None:
        self.conditions: list[sql.Composable] = [condition]
        self.params: list[Any] = list(params)

    def add(self, condition: sql.Composable, *params: Any) -> None:
        self.conditions.append(condition)
        self.params += params

    def dates(self, column: str, criteria: Sequence[Sequence[DateTest]]) -> None:
        for criterion in criteria:
            ors = []
            for test in criterion:
                condition, params = _date(sql.SQL(column), test)
                ors.append(condition)
                self.params += params
            self.conditions.append(_any(ors))

    def any_of(self, column: str, cast: str, criteria: Sequence[Sequence[Any]]) -> None:
        """Per criterion: the column is one of its values."""
        for values in criteria:
            self.add(sql.SQL("{} = ANY(%s::{}[])").format(sql.SQL(column), sql.SQL(cast)), list(values))

    @property
    def sql(self) -> sql.Composable:
        return sql.SQL(" AND ").join(self.conditions)


def _keyset(window: Window, key_sql: str, key_cast: str, id_sql: str) -> tuple[sql.Composable, list[Any]]:
    """The cursor condition: rows after the cursor row in the reading order."""
    if window.after is None:
        return sql.SQL("true"), []
    later = window.descending != window.reverse  # rows later in the reading order have smaller keys
    op, bound = ("<", "<=") if later else (">", ">=")
    clause = sql.SQL("{key} {bound} %s::{cast} AND ({key}, {id}) {op} (%s::{cast}, %s::uuid)").format(
        key=sql.SQL(key_sql), bound=sql.SQL(bound), cast=sql.SQL(key_cast), id=sql.SQL(id_sql), op=sql.SQL(op)
    )
    key, ident = window.after
    return clause, [key, key, ident]


def _count(conn: Connection[Any], source: str, where: _Where) -> int:
    with conn.cursor(row_factory=scalar_row) as cur:
        return int(
            cur.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.SQL(source), where.sql), where.params
            ).fetchone()
            or 0
        )


def _page(
    conn: Connection[Any],
    row: type[Any],
    columns: sql.Composable,
    source: str,
    where: _Where,
    window: Window,
    key: tuple[str, str, str],
) -> list[Any]:
    """One page over `source`, ordered by (key, id) as `window` says."""
    key_sql, key_cast, id_sql = key
    cursor_sql, cursor_params = _keyset(window, key_sql, key_cast, id_sql)
    order_by = sql.SQL("{} {}, {} {}").format(sql.SQL(key_sql), window.order, sql.SQL(id_sql), window.order)
    if key_sql == "''":
        order_by = sql.SQL("{} {}").format(sql.SQL(id_sql), window.order)
    with conn.cursor(row_factory=class_row(row)) as cur:
        return cur.execute(
            sql.SQL("SELECT {} FROM {} WHERE {} AND {} ORDER BY {} LIMIT %s").format(
                columns, sql.SQL(source), where.sql, cursor_sql, order_by
            ),
            [*where.params, *cursor_params, window.limit],
        ).fetchall()


# --- patients in scope ----------------------------------------------------------------------------------------------


def patients_in_scope(
    conn: Connection[Any], visible: tuple[sql.Composable, list[Any]], references: Sequence[Sequence[UUID]]
) -> list[UUID]:
    """The patients the caller's clause (over `patients p`) lets them see, narrowed by each criterion's ids."""
    clause, params = visible
    where = _Where(clause, *params)
    where.any_of("p.id", "uuid", references)
    with conn.cursor(row_factory=scalar_row) as cur:
        return cur.execute(
            sql.SQL("SELECT p.id FROM patients p WHERE {} ORDER BY p.id").format(where.sql), where.params
        ).fetchall()


# --- Observation ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeTest:
    """Readings of `kind`, narrowed by their flags or device type (`None`: not narrowed that way)."""

    kind: str
    with_flag: str | None = None
    without_flags: tuple[str, ...] | None = None
    device_types: tuple[str, ...] | None = None
    not_device_types: tuple[str, ...] | None = None
    """The device type is none of these (or unknown)."""


@dataclass(frozen=True, slots=True)
class DeviceTest:
    """Readings through these gateways, or from these (gateway, upper-case address) devices."""

    gateway_ids: tuple[str, ...]
    devices: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ObservationFilter:
    kinds: Sequence[str]
    codes: Sequence[CodeTest]
    """ORed; a kind wholly chosen is one test without narrowing."""
    measured: Sequence[Sequence[DateTest]] = ()
    received: Sequence[Sequence[DateTest]] = ()
    ids: Sequence[Sequence[UUID]] = ()
    devices: Sequence[DeviceTest] = ()


def _code(test: CodeTest) -> tuple[sql.Composable, list[Any]]:
    parts: list[sql.Composable] = [sql.SQL("r.kind = %s")]
    params: list[Any] = [test.kind]
    if test.with_flag is not None:
        parts.append(sql.SQL("%s = ANY(r.flags)"))
        params.append(test.with_flag)
    if test.without_flags is not None:
        parts.append(sql.SQL("NOT (r.flags && %s::text[])"))
        params.append(list(test.without_flags))
    if test.device_types is not None:
        parts.append(sql.SQL("r.device_type = ANY(%s::text[])"))
        params.append(list(test.device_types))
    if test.not_device_types is not None:
        parts.append(sql.SQL("(r.device_type IS NULL OR r.device_type <> ALL(%s::text[]))"))
        params.append(list(test.not_device_types))
    return sql.SQL("({})").format(sql.SQL(" AND ").join(parts)), params


def _observation_where(found: ObservationFilter) -> _Where:
    ors, params = [], []
    for test in found.codes:
        condition, p = _code(test)
        ors.append(condition)
        params += p
    where = _Where(_any(ors), *params)
    where.dates("r.measured_at", found.measured)
    where.dates("r.received_at", found.received)
    where.any_of("r.id", "uuid", found.ids)
    for device in found.devices:
        where.add(
            sql.SQL(
                "(r.gateway_id = ANY(%s::text[]) OR (r.gateway_id, upper(r.device_address)) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[])))"
            ),
            list(device.gateway_ids),
            [g for g, _ in device.devices],
            [a for _, a in device.devices],
        )
    return where


def device_addresses(conn: Connection[Any], patients: Sequence[UUID]) -> list[tuple[str, str]]:
    """(gateway id, upper-case address) of every device seen through the patients' gateways."""
    return [
        (gateway_id, address)
        for gateway_id, address in conn.execute(
            "SELECT d.gateway_id, upper(d.address) FROM devices d JOIN gateways g ON g.id = d.gateway_id "
            "WHERE g.patient_id = ANY(%s)",
            (list(patients),),
        ).fetchall()
    ]


def count_observations(conn: Connection[Any], patients: Sequence[UUID], found: ObservationFilter) -> int:
    where = _observation_where(found)
    where.add(sql.SQL("r.patient_id = ANY(%s) AND r.kind = ANY(%s)"), list(patients), list(found.kinds))
    return _count(conn, "readings r", where)


def observations(
    conn: Connection[Any], patients: Sequence[UUID], found: ObservationFilter, window: Window
) -> list[StoredReading]:
    """One page of readings, read per (patient, kind) along the readings index and merged in (measured_at, id)."""
    where = _observation_where(found)
    cursor_sql, cursor_params = _keyset(window, "r.measured_at", "timestamptz", "r.id")
    order = window.order
    with conn.cursor(row_factory=class_row(StoredReading)) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT r.* FROM unnest(%s::uuid[]) AS pt(id) CROSS JOIN unnest(%s::text[]) AS k(kind) "
                "CROSS JOIN LATERAL (SELECT {} FROM readings r WHERE r.patient_id = pt.id AND r.kind = "
                "k.kind AND {} AND {} ORDER BY r.measured_at {}, r.id {} LIMIT %s) r ORDER BY "
                "r.measured_at {}, r.id {} LIMIT %s"
            ).format(reading_columns("r"), where.sql, cursor_sql, order, order, order, order),
            [list(patients), list(found.kinds), *where.params, *cursor_params, window.limit, window.limit],
        ).fetchall()


def readings_at(
    conn: Connection[Any], patients: Sequence[UUID], kinds: Sequence[str], moments: Sequence[datetime]
) -> list[StoredReading]:
    """The patients' readings of `kinds` measured at any of `moments` (a blood pressure's other components)."""
    with conn.cursor(row_factory=class_row(StoredReading)) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT {} FROM readings WHERE patient_id = ANY(%s) AND kind = ANY(%s) AND measured_at = "
                "ANY(%s::timestamptz[])"
            ).format(reading_columns("readings")),
            (list(patients), list(kinds), list(moments)),
        ).fetchall()


def observation(conn: Connection[Any], reading_id: UUID, patient_id: UUID) -> StoredReading | None:
    """The patient's reading with this id, found through `reading_ids` (which names its partition)."""
    with conn.cursor(row_factory=class_row(StoredReading)) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT {} FROM readings WHERE id = %s AND patient_id = %s AND measured_at = (SELECT "
                "measured_at FROM reading_ids WHERE id = %s) LIMIT 1"
            ).format(reading_columns("readings")),
            (reading_id, patient_id, reading_id),
        ).fetchone()


# --- Patient --------------------------------------------------------------------------------------------------------


class PatientRow(NamedTuple):
    """The columns `clinician_api.fhir.patient` reads, in its order."""

    id: UUID
    display_name: str
    national_id: str | None
    birth_date: date | None
    active: bool
    updated_at: datetime | None = None
    """When the record last changed (none: not told)."""


_PATIENT_COLUMNS = sql.SQL("p.id, p.display_name, p.national_id, p.birth_date, p.active, p.updated_at")

NationalIdKind = Literal["d-nummer", "h-nummer", "fodselsnummer"]
_NATIONAL_ID_KIND = {
    "d-nummer": "substr(p.national_id, 1, 1) IN ('4', '5', '6', '7')",
    "h-nummer": "substr(p.national_id, 1, 1) NOT IN ('4', '5', '6', '7') AND substr(p.national_id, 3, 1) IN ('4', '5')",
    "fodselsnummer": "substr(p.national_id, 1, 1) NOT IN ('4', '5', '6', '7') "
    "AND substr(p.national_id, 3, 1) NOT IN ('4', '5')",
}
_FAMILY = r"regexp_replace(p.display_name, '^.*\s', '')"
_GIVEN = r"regexp_replace(p.display_name, '\s*\S+$', '')"
_NAME_PART = {"name": "p.display_name", "family": _FAMILY, "given": _GIVEN}


@dataclass(frozen=True, slots=True)
class NameTest:
    """A name, family or given name: `exact` (the whole name, or one word of it; the family name whole),
    `contains`, or (default) starts the name or one of its words. Case does not matter but for `exact`."""

    part: Literal["name", "family", "given"]
    value: str
    match: Literal["exact", "contains", "starts"] = "starts"


@dataclass(frozen=True, slots=True)
class IdIs:
    """The patient's id (as text) is `value`."""

    value: str


@dataclass(frozen=True, slots=True)
class NationalIdIs:
    value: str


@dataclass(frozen=True, slots=True)
class IdOrNationalId:
    """The national id or the id (as text) is `value` (none: no patient)."""

    value: str | None


@dataclass(frozen=True, slots=True)
class HasNationalId:
    """The patient has a national id of this kind."""

    kind: NationalIdKind


@dataclass(frozen=True, slots=True)
class ActiveIs:
    value: bool


@dataclass(frozen=True, slots=True)
class BornOn:
    """The birth date (midnight in Oslo) passes the test."""

    test: DateTest


@dataclass(frozen=True, slots=True)
class UpdatedOn:
    test: DateTest


@dataclass(frozen=True, slots=True)
class Always:
    value: bool
    """True: every patient; false: none."""


PatientTest = NameTest | IdIs | NationalIdIs | IdOrNationalId | HasNationalId | ActiveIs | BornOn | UpdatedOn | Always


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _name(test: NameTest) -> tuple[sql.Composable, list[Any]]:
    words = sql.SQL(_NAME_PART[test.part])
    if test.match == "exact":
        if test.part == "family":
            return sql.SQL("{} = %s").format(words), [test.value]
        return sql.SQL("(p.display_name = %s OR %s = ANY(regexp_split_to_array({}, '\\s+')))").format(words), [
            test.value,
            test.value,
        ]
    if test.match == "contains":
        return sql.SQL("{} ILIKE %s").format(words), [f"%{_like(test.value)}%"]
    return sql.SQL("({} ILIKE %s OR {} ILIKE %s)").format(words, words), [
        f"{_like(test.value)}%",
        f"% {_like(test.value)}%",
    ]


def _patient_test(test: PatientTest) -> tuple[sql.Composable, list[Any]]:
    match test:
        case NameTest():
            return _name(test)
        case IdIs(value):
            return sql.SQL("p.id::text = %s"), [value]
        case NationalIdIs(value):
            return sql.SQL("p.national_id = %s"), [value]
        case IdOrNationalId(value):
            return sql.SQL("(p.national_id = %s OR p.id::text = %s)"), [value, value]
        case HasNationalId(kind):
            return sql.SQL("(p.national_id IS NOT NULL AND {})").format(sql.SQL(_NATIONAL_ID_KIND[kind])), []
        case ActiveIs(value):
            return sql.SQL("p.active = %s"), [value]
        case BornOn(date_test):
            return _date(sql.SQL("(p.birth_date::timestamp AT TIME ZONE 'Europe/Oslo')"), date_test)
        case UpdatedOn(date_test):
            return _date(sql.SQL("p.updated_at"), date_test)
        case Always(value):
            return sql.SQL("true" if value else "false"), []


def _patient_where(patients: Sequence[UUID], criteria: Sequence[Sequence[PatientTest]]) -> _Where:
    where = _Where(sql.SQL("p.id = ANY(%s)"), list(patients))
    for criterion in criteria:
        ors = []
        for test in criterion:
            condition, params = _patient_test(test)
            ors.append(condition)
            where.params += params
        where.conditions.append(_any(ors))
    return where


def count_patients(conn: Connection[Any], patients: Sequence[UUID], criteria: Sequence[Sequence[PatientTest]]) -> int:
    return _count(conn, "patients p", _patient_where(patients, criteria))


def search_patients(
    conn: Connection[Any], patients: Sequence[UUID], criteria: Sequence[Sequence[PatientTest]], window: Window
) -> list[PatientRow]:
    where = _patient_where(patients, criteria)
    return _page(conn, PatientRow, _PATIENT_COLUMNS, "patients p", where, window, ("''", "text", "p.id"))


def patients(conn: Connection[Any], ids: Sequence[UUID]) -> list[PatientRow]:
    with conn.cursor(row_factory=class_row(PatientRow)) as cur:
        return cur.execute(
            sql.SQL("SELECT {} FROM patients p WHERE p.id = ANY(%s) ORDER BY p.id").format(_PATIENT_COLUMNS),
            (list(ids),),
        ).fetchall()


# --- DetectedIssue --------------------------------------------------------------------------------------------------


class IssueRow(NamedTuple):
    """An alarm as `clinician_api.fhir.detected_issue` reads it (the first twelve fields, in order), with the
    bokmål explanation and when it last changed."""

    id: UUID
    patient_id: UUID
    rule: str
    severity: Severity
    state: str
    opened_at: datetime
    explanation_en: str
    last_reading_id: UUID | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    kind: str | None
    explanation_nb: str | None = None
    updated_at: datetime | None = None


_ISSUE_COLUMNS = sql.SQL(", ".join(f"a.{c}" for c in IssueRow._fields))


@dataclass(frozen=True, slots=True)
class IssueFilter:
    identified: Sequence[Sequence[DateTest]] = ()
    updated: Sequence[Sequence[DateTest]] = ()
    ids: Sequence[Sequence[str]] = ()
    rules: Sequence[Sequence[str]] = ()


def _issue_where(patients: Sequence[UUID], found: IssueFilter) -> _Where:
    where = _Where(sql.SQL("a.patient_id = ANY(%s)"), list(patients))
    where.dates("a.opened_at", found.identified)
    where.dates("a.updated_at", found.updated)
    where.any_of("a.id::text", "text", found.ids)
    where.any_of("a.rule", "text", found.rules)
    return where


def count_issues(conn: Connection[Any], patients: Sequence[UUID], found: IssueFilter) -> int:
    return _count(conn, "alarms a", _issue_where(patients, found))


def search_issues(
    conn: Connection[Any], patients: Sequence[UUID], found: IssueFilter, window: Window
) -> list[IssueRow]:
    where = _issue_where(patients, found)
    return _page(conn, IssueRow, _ISSUE_COLUMNS, "alarms a", where, window, ("a.opened_at", "timestamptz", "a.id"))


def issues(conn: Connection[Any], patient_ids: Sequence[UUID], *, limit: int | None) -> list[IssueRow]:
    """The patients' alarms, newest first (at most `limit`; None for all)."""
    with conn.cursor(row_factory=class_row(IssueRow)) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT {} FROM alarms a WHERE a.patient_id = ANY(%s) ORDER BY a.opened_at DESC, a.id DESC LIMIT %s"
            ).format(_ISSUE_COLUMNS),
            (list(patient_ids), limit),
        ).fetchall()


def issue(conn: Connection[Any], alarm_id: UUID) -> IssueRow | None:
    with conn.cursor(row_factory=class_row(IssueRow)) as cur:
        return cur.execute(
            sql.SQL("SELECT {} FROM alarms a WHERE a.id = %s").format(_ISSUE_COLUMNS), (alarm_id,)
        ).fetchone()


# --- CarePlan -------------------------------------------------------------------------------------------------------


_PLAN_COLUMNS = sql.SQL(
    "s.id, s.patient_id, s.version, s.status, s.created_at, s.created_by, s.activated_at, s.retired_at, s.body"
)


@dataclass(frozen=True, slots=True)
class PlanFilter:
    updated: Sequence[Sequence[DateTest]] = ()
    ids: Sequence[Sequence[str]] = ()
    statuses: Sequence[Sequence[str]] = ()


def _plan_where(patients: Sequence[UUID], found: PlanFilter) -> _Where:
    where = _Where(sql.SQL("s.patient_id = ANY(%s)"), list(patients))
    where.dates("greatest(s.created_at, s.activated_at, s.retired_at)", found.updated)
    where.any_of("s.id::text", "text", found.ids)
    where.any_of("s.status", "text", found.statuses)
    return where


def count_plans(conn: Connection[Any], patients: Sequence[UUID], found: PlanFilter) -> int:
    return _count(conn, "self_management_plans s", _plan_where(patients, found))


def search_plans(conn: Connection[Any], patients: Sequence[UUID], found: PlanFilter, window: Window) -> list[PlanRow]:
    where = _plan_where(patients, found)
    key = ("s.created_at", "timestamptz", "s.id")
    return _page(conn, PlanRow, _PLAN_COLUMNS, "self_management_plans s", where, window, key)


def plans(conn: Connection[Any], patient_ids: Sequence[UUID]) -> list[PlanRow]:
    """Every plan version of the patients, by patient, newest version first."""
    with conn.cursor(row_factory=class_row(PlanRow)) as cur:
        return cur.execute(
            sql.SQL(
                "SELECT {} FROM self_management_plans s WHERE s.patient_id = ANY(%s) ORDER BY s.patient_id, "
                "s.version DESC"
            ).format(_PLAN_COLUMNS),
            (list(patient_ids),),
        ).fetchall()


# --- Device ---------------------------------------------------------------------------------------------------------


class GatewayRow(NamedTuple):
    """A home gateway as `clinician_api.fhir.gateway_device` reads it, in its order."""

    id: str
    patient_id: UUID | None
    enabled: bool
    agent_version: str | None
    state: str | None


class DeviceRow(NamedTuple):
    """A measuring device seen through a gateway, as `clinician_api.fhir.measuring_device` reads it."""

    gateway_id: str
    address: str
    type: str
    model: str | None


@dataclass(frozen=True, slots=True)
class HomeDevices:
    gateways: list[GatewayRow] = field(default_factory=list)
    devices: list[DeviceRow] = field(default_factory=list)


def home_devices(conn: Connection[Any], patient_ids: Sequence[UUID]) -> HomeDevices:
    """The patients' gateways (by id) and the devices seen through them (by gateway, address)."""
    with conn.cursor(row_factory=class_row(GatewayRow)) as cur:
        gateways = cur.execute(
            "SELECT id, patient_id, enabled, agent_version, state FROM gateways WHERE patient_id = ANY(%s) ORDER BY id",
            (list(patient_ids),),
        ).fetchall()
    with conn.cursor(row_factory=class_row(DeviceRow)) as cur:
        devices = cur.execute(
            "SELECT gateway_id, address, type, model FROM devices WHERE gateway_id = ANY(%s) "
            "ORDER BY gateway_id, address",
            ([g.id for g in gateways],),
        ).fetchall()
    return HomeDevices(gateways, devices)


# --- QuestionnaireResponse ------------------------------------------------------------------------------------------


class ResponseRow(NamedTuple):
    """A questionnaire answered, as `clinician_api.fhir.questionnaire_response` reads it, in its order."""

    id: UUID
    patient_id: UUID
    questionnaire: str
    plan_version: int
    answered_at: datetime
    received_at: datetime
    answers: dict[str, Any]
    score: int
    zone: str | None


_RESPONSE_COLUMNS = sql.SQL(
    "q.id, q.patient_id, q.questionnaire, q.plan_version, q.answered_at, q.received_at, q.answers, q.score, q.zone"
)


@dataclass(frozen=True, slots=True)
class QuestionnaireIs:
    """The questionnaire's name and, when given, the plan version it was answered under."""

    name: str
    plan_version: int | None = None


@dataclass(frozen=True, slots=True)
class ResponseFilter:
    authored: Sequence[Sequence[DateTest]] = ()
    updated: Sequence[Sequence[DateTest]] = ()
    ids: Sequence[Sequence[str]] = ()
    questionnaires: Sequence[Sequence[QuestionnaireIs]] = ()


def _response_where(patients: Sequence[UUID], found: ResponseFilter) -> _Where:
    where = _Where(sql.SQL("q.patient_id = ANY(%s)"), list(patients))
    where.dates("q.answered_at", found.authored)
    where.dates("q.received_at", found.updated)
    where.any_of("q.id::text", "text", found.ids)
    for criterion in found.questionnaires:
        ors = []
        for test in criterion:
            if test.plan_version is not None:
                ors.append(sql.SQL("(q.questionnaire = %s AND q.plan_version = %s)"))
                where.params += [test.name, test.plan_version]
            else:
                ors.append(sql.SQL("q.questionnaire = %s"))
                where.params.append(test.name)
        where.conditions.append(_any(ors))
    return where


def count_responses(conn: Connection[Any], patients: Sequence[UUID], found: ResponseFilter) -> int:
    return _count(conn, "questionnaire_responses q", _response_where(patients, found))


def search_responses(
    conn: Connection[Any], patients: Sequence[UUID], found: ResponseFilter, window: Window
) -> list[ResponseRow]:
    where = _response_where(patients, found)
    key = ("q.answered_at", "timestamptz", "q.id")
    return _page(conn, ResponseRow, _RESPONSE_COLUMNS, "questionnaire_responses q", where, window, key)


# --- EpisodeOfCare --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EpisodeFilter:
    started: Sequence[Sequence[DateTest]] = ()
    updated: Sequence[Sequence[DateTest]] = ()
    ids: Sequence[Sequence[str]] = ()
    statuses: Sequence[Sequence[str]] = ()
    organisations: Sequence[Sequence[UUID]] = ()
    care_managers: Sequence[Sequence[UUID]] = ()


def _episode_where(patients: Sequence[UUID], found: EpisodeFilter) -> _Where:
    where = _Where(sql.SQL("e.patient_id = ANY(%s)"), list(patients))
    where.dates("e.started_at", found.started)
    where.dates("e.updated_at", found.updated)
    where.any_of("e.id::text", "text", found.ids)
    where.any_of("e.status", "text", found.statuses)
    where.any_of("t.organisation_id", "uuid", found.organisations)
    where.any_of("e.care_manager_id", "uuid", found.care_managers)
    return where


def count_episodes(conn: Connection[Any], patients: Sequence[UUID], found: EpisodeFilter) -> int:
    return _count(conn, EPISODE_FROM, _episode_where(patients, found))


def search_episodes(
    conn: Connection[Any], patients: Sequence[UUID], found: EpisodeFilter, window: Window
) -> list[Episode]:
    where = _episode_where(patients, found)
    key = ("e.started_at", "timestamptz", "e.id")
    return _page(conn, Episode, EPISODE_COLUMNS, EPISODE_FROM, where, window, key)


def episodes(conn: Connection[Any], patient_ids: Sequence[UUID]) -> list[Episode]:
    """Every episode of the patients, by patient, newest first."""
    with conn.cursor(row_factory=class_row(Episode)) as cur:
        return cur.execute(
            sql.SQL("SELECT {} FROM {} WHERE e.patient_id = ANY(%s) ORDER BY e.patient_id, e.started_at DESC").format(
                EPISODE_COLUMNS, sql.SQL(EPISODE_FROM)
            ),
            (list(patient_ids),),
        ).fetchall()
