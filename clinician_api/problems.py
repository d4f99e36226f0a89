"""Errors as RFC 9457 problem details (application/problem+json), and their place in the OpenAPI document."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
_log = logging.getLogger("varde.api")


class FieldError(BaseModel):
    """One invalid field: where it is and what is wrong with it (English; `message_nb` in bokmål where known)."""

    loc: list[str]
    msg: str
    message_nb: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="URI reference naming the problem type")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="Field errors of a refused request")


class ProblemError(Exception):
    """Raise from a route to answer with a problem document (extra members are added to it)."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_DESCRIPTIONS = {
    400: "Bad request (for example an invalid paging cursor)",
    401: "Missing, expired or invalid bearer token",
    403: "The caller's role may not do this",
    404: "Not found, or not in the caller's care teams (existence is not revealed)",
    409: "Conflicts with the resource's current state",
    422: "The request is not valid; `errors` names the fields",
    429: "Too many attempts; retry after the number of seconds in Retry-After",
    503: "A dependency (database or message broker) is unavailable; retry after the seconds in Retry-After",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting problem details for the given status codes."""
    return {status: {"model": Problem, "description": _DESCRIPTIONS.get(status, title(status))} for status in statuses}


def _is_fhir(request: Request) -> bool:
    return request.url.path == "/fhir" or request.url.path.startswith("/fhir/")


def _outcome(
    status: int, detail: str, code: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Errors under /fhir are OperationOutcomes, as FHIR clients expect (`clinician_api.fhir.operation_outcome`)."""
    from clinician_api.fhir import FHIR_JSON, operation_outcome

    response = JSONResponse(operation_outcome(status, detail, code), status_code=status, media_type=FHIR_JSON)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def refusal_for(path: str, status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """A refusal made before routing (`hygiene`): problem details, or an OperationOutcome under /fhir."""
    if path == "/fhir" or path.startswith("/fhir/"):
        where = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in extra.get("errors") or [])
        return _outcome(status, f"{detail} ({where})" if where else detail, "invalid")
    return problem(status, title, detail, **extra)


DATABASE_RETRY_AFTER_S = 5
"""Retry-After of a 503 while the database is away: about how long a pool takes to reconnect (`store.db`)."""


def _route(request: Request) -> str:
    """The matched route's template (`/api/v1/patients/{patient_id}`) for logs: never the path, which names ids."""
    return str(getattr(request.scope.get("route"), "path", "?"))


def install(app: FastAPI) -> None:
    from clinician_api.fhir_search import FhirError

    @app.exception_handler(FhirError)
    async def _fhir(request: Request, exc: FhirError) -> JSONResponse:
        return _outcome(exc.status, exc.diagnostics, exc.code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if _is_fhir(request):
            return _outcome(exc.status_code, str(exc.detail or title(exc.status_code)), headers=exc.headers)
        response = problem(exc.status_code, title(exc.status_code), str(exc.detail) if exc.detail else None)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        if _is_fhir(request):
            return _outcome(exc.status, exc.detail, headers=exc.headers)
        response = problem(exc.status, title(exc.status), exc.detail, **exc.extra)
        for key, value in exc.headers.items():
            response.headers[key] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")).removeprefix("Value error, "),
                "message_nb": message_nb(e),
            }
            for e in exc.errors()
        ]
        if _is_fhir(request):
            if errors and errors[0]["loc"][:1] == ["path"]:  # an id that cannot exist (not a UUID)
                return _outcome(404, "no such resource", "not-found")
            return _outcome(400, "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors))
        return problem(422, "Unprocessable Content", "the request is not valid", errors=errors)

    @app.exception_handler(psycopg.DataError)
    async def _data(request: Request, exc: psycopg.DataError) -> JSONResponse:
        # The safety net behind clinician_api/hygiene.py: a value PostgreSQL cannot take is the caller's error,
        # not a server error (and never a reset connection). Logged by class only: the value may be patient data.
        _log.warning("request_value_refused_by_database", extra={"error": type(exc).__name__, "route": _route(request)})
        if _is_fhir(request):
            return _outcome(400, "a value in the request cannot be compared", "invalid")
        return problem(422, "Unprocessable Content", "a value in the request cannot be stored or compared")

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    async def _database_away(request: Request, exc: Exception) -> JSONResponse:
        # The database is restarting or failing over (or every connection is busy): a temporary state the caller
        # may retry, not a server fault. The dashboard keeps its session through it (static/js/api.js).
        _log.warning("database_unavailable", extra={"error": type(exc).__name__, "route": _route(request)})
        headers = {"Retry-After": str(DATABASE_RETRY_AFTER_S)}
        detail = "the database is not reachable at the moment; try again shortly"
        if _is_fhir(request):
            return _outcome(503, detail, "transient", headers=headers)
        response = problem(503, title(503), detail)
        response.headers.update(headers)
        return response

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        # Starlette logs the exception with its traceback after this answer is sent; the caller gets no trace.
        if _is_fhir(request):
            return _outcome(500, "internal error", "exception")
        return PlainTextResponse("Internal Server Error", status_code=500)


# Bokmål for pydantic's error types (the dashboard shows `message_nb` in the Norwegian interface).
_NB_BY_TYPE = {
    "missing": "Må fylles ut.",
    "string_too_short": "Må ha minst {min_length} tegn.",
    "string_too_long": "Kan ha høyst {max_length} tegn.",
    "too_short": "Må ha minst {min_length}.",
    "too_long": "Kan ha høyst {max_length}.",
    "greater_than_equal": "Må være minst {ge}.",
    "greater_than": "Må være større enn {gt}.",
    "less_than_equal": "Kan være høyst {le}.",
    "less_than": "Må være mindre enn {lt}.",
    "float_parsing": "Må være et tall.",
    "float_type": "Må være et tall.",
    "int_parsing": "Må være et helt tall.",
    "int_type": "Må være et helt tall.",
    "int_from_float": "Må være et helt tall.",
    "finite_number": "Må være et endelig tall.",
    "string_pattern_mismatch": "Har feil format.",
    "literal_error": "Må være en av: {expected}.",
    "enum": "Må være en av: {expected}.",
    "time_parsing": "Må være et klokkeslett (tt:mm).",
    "time_type": "Må være et klokkeslett (tt:mm).",
    "uuid_parsing": "Må være en gyldig id.",
    "bool_parsing": "Må være ja eller nei.",
    "extra_forbidden": "Feltet er ikke kjent.",
    "json_invalid": "Ugyldig JSON.",
}
_NB_BY_PATTERN_FIELD = {
    "deadline": "Må være et klokkeslett (tt:mm).",
    "phone": "Må være et telefonnummer (sifre, gjerne med +47 foran).",
    "timezone": "Må være en tidssone som Europe/Oslo.",
}
# Bokmål for the plan's own validators (vitals.plan), by the start of their English message.
_NB_BY_PREFIX = (
    ("zones: each kind may appear once", "Hver måling kan bare ha én rad med soner."),
    ("advice: general advice (no kind) is required", "Generelle råd må fylles ut for grønn, gul og rød sone."),
    ("advice: one entry per zone and kind", "Bare ett råd per sone og måling."),
    ("questionnaires: ids must be distinct", "Hvert spørreskjema må ha sin egen id."),
    ("is outside the plausible range", "Verdien er utenfor mulig område."),
    ("set no limit; leave the kind out instead", "Fyll inn minst én grense, eller fjern raden."),
    ("must be in", "Feil enhet for målingen."),
    ("a weekday is listed twice", "En ukedag står to ganger."),
    ("limits must satisfy red_low", "Grensene må stige: rød nedre ≤ gul nedre ≤ gul øvre ≤ rød øvre."),
    ("step_ups: one step-up per kind and zone", "Bare én opptrapping per måling og sone."),
    ("zones (they decide green days)", "En opptrapping trenger soner for målingen i planen (de avgjør grønne dager)."),
    ("is not in the plan's questionnaires", "Spørreskjemaet finnes ikke i planen."),
)


def message_nb(error: Any) -> str:
    """A pydantic error in bokmål (a general sentence where its own text is not known)."""
    kind = str(error.get("type", ""))
    field = str((error.get("loc") or [""])[-1])
    if kind == "string_pattern_mismatch" and field in _NB_BY_PATTERN_FIELD:
        return _NB_BY_PATTERN_FIELD[field]
    ctx = {k: str(v).replace(".", ",") if isinstance(v, float) else str(v) for k, v in (error.get("ctx") or {}).items()}
    if kind in _NB_BY_TYPE:
        try:
            return _NB_BY_TYPE[kind].format(**ctx)
        except KeyError:
            return _NB_BY_TYPE[kind].split("{")[0].strip() or "Ugyldig verdi."
    msg = str(error.get("msg", ""))
    for prefix, text in _NB_BY_PREFIX:
        if prefix in msg:
            return text
    return "Ugyldig verdi."


def rewrite_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Error responses are documented as application/problem+json with the Problem schema (also FastAPI's own 422);
    under /fhir as application/fhir+json OperationOutcomes."""
    for path, path_item in schema.get("paths", {}).items():
        fhir_path = path == "/fhir" or path.startswith("/fhir/")
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if not str(status).isdigit() or int(status) < 400:
                    continue
                if fhir_path:
                    ref = {"$ref": "#/components/schemas/OperationOutcome"}
                    response["content"] = {"application/fhir+json": {"schema": ref}}
                    continue
                response["content"] = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
                if int(status) == 422:
                    response["description"] = _DESCRIPTIONS[422]
    components = schema.get("components", {}).get("schemas", {})
    components["OperationOutcome"] = {
        "title": "OperationOutcome",
        "description": "FHIR R4 OperationOutcome: every error under /fhir",
        "type": "object",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
            "issue": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["severity", "code"],
                    "properties": {
                        "severity": {"type": "string"},
                        "code": {"type": "string"},
                        "diagnostics": {"type": "string"},
                    },
                },
            },
        },
    }
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema
