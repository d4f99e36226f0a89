"""FHIR Bulk Data `$export` (https://hl7.org/fhir/uv/bulkdata/export.html), for the `data_export` role only:

- kick-off `GET /fhir/Patient/$export` (all patients of the caller's care teams) or `GET /fhir/Group/{team_id}/$export`
  (one team), with `Prefer: respond-async` → 202 and `Content-Location` (the status URL); parameters `_type`,
  `_since`, `_outputFormat` and Varde's `pseudonymised=true`;
- status `GET /fhir/$export-status/{id}`: 202 with `X-Progress` and `Retry-After` while running, 200 and the
  manifest when done, an OperationOutcome when it failed; `DELETE` cancels and deletes the files;
- files `GET /fhir/$export-file/{id}/{n}`: NDJSON (`application/fhir+ndjson`).

A job and its files belong to the user who started it: anyone else gets 404. The export runs in a thread of the API
process that took the kick-off; a job whose process ended is reported as failed (start it again).
"""

from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from clinician_api import fhir, fhir_export, problems, roles
from clinician_api.access import Principal
from clinician_api.deps import Conn, client_addr, require_roles
from clinician_api.fhir_search import FhirError, parse_date
from clinician_api.routes.fhir import OPERATIONS, FhirResponse, base_url
from store import audit
from store import fhir_export as jobs
from store.db import LazyPool

Exporter = Annotated[Principal, require_roles(roles.DATA_EXPORT)]
router = APIRouter(
    prefix="/fhir",
    tags=["fhir-bulk-data"],
    default_response_class=FhirResponse,
    responses=problems.responses(400, 401, 403, 404),
)
NDJSON = "application/fhir+ndjson"
_FORMATS = {NDJSON, "application/ndjson", "ndjson"}
_PARAMS = {"_type", "_since", "_outputFormat", "pseudonymised"}
_STALE_SECONDS = 300
_DEFINITION = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"
OPERATIONS.setdefault("Patient", []).append({"name": "export", "definition": _DEFINITION + "patient-export"})
OPERATIONS["Group"] = [{"name": "export", "definition": _DEFINITION + "group-export"}]


def _prefers(request: Request, token: str) -> bool:
    return any(token == p.strip().lower() for p in re.split(r"[,;]", request.headers.get("prefer", "")))


def _kick_off(request: Request, conn: Any, principal: Principal, level: str, team_id: UUID | None) -> Response:
    if not _prefers(request, "respond-async"):
        raise FhirError(400, "a bulk export needs the header Prefer: respond-async")
    query = request.query_params
    lenient = _prefers(request, "handling=lenient")
    unknown = sorted(set(query) - _PARAMS)
    if unknown and not lenient:
        raise FhirError(400, f"unsupported export parameter(s): {', '.join(unknown)}", "not-supported")
    output_format = query.get("_outputFormat", NDJSON)
    if output_format not in _FORMATS:
        raise FhirError(400, f"_outputFormat {output_format!r}: only {NDJSON} is produced", "not-supported")
    types = [t for raw in query.getlist("_type") for t in raw.split(",") if t] or list(fhir_export.EXPORT_TYPES)
    bad = [t for t in types if t not in fhir_export.EXPORT_TYPES]
    if bad:
        raise FhirError(400, f"_type {', '.join(bad)} is not exported (one of {', '.join(fhir_export.EXPORT_TYPES)})")
    since = None
    if "_since" in query:
        _, rng = parse_date(query["_since"])
        since = rng.start
    pseudonymised = query.get("pseudonymised", "false") == "true"
    if team_id is not None and not jobs.is_member(conn, principal.user_id, team_id):
        raise FhirError(404, "no such group among your care teams", "not-found")
    patients = fhir_export.exportable_patients(conn, principal.user_id, team_id)
    export_id = fhir_export.create(
        conn,
        user_id=principal.user_id,
        level=level,
        team_id=team_id,
        types=list(dict.fromkeys(types)),
        since=since,
        pseudonymised=pseudonymised,
        request_url=str(request.url),
    )
    variant = "pseudonymised" if pseudonymised else "identified"
    audit.record(
        conn,
        principal,
        "export",
        request.url.path,
        "ok",
        team_id=team_id,
        client_addr=client_addr(request),
        reason=f"{variant} bulk export {export_id} of {len(patients)} patients ({', '.join(types)})",
    )
    if not pseudonymised:
        audit.record_patients(conn, principal, "export", f"/fhir/$export-status/{export_id}", patients,
                              client_addr=client_addr(request))  # fmt: skip
    start = BackgroundTask(_start, request.app.state.pool, export_id)
    response = Response(status_code=202, background=start)
    response.headers["Content-Location"] = f"{base_url(request)}/$export-status/{export_id}"
    return response


def _start(pool: LazyPool, export_id: UUID) -> None:
    threading.Thread(
        target=fhir_export.run_export, args=(pool, export_id), name=f"export-{export_id}", daemon=True
    ).start()


@router.get("/Patient/$export", status_code=202, response_class=Response)
def export_patients(request: Request, conn: Conn, principal: Exporter) -> Response:
    """Kick off an export of every patient of the caller's care teams."""
    return _kick_off(request, conn, principal, "patient", None)


@router.get("/Group/{group_id}/$export", status_code=202, response_class=Response)
def export_group(group_id: UUID, request: Request, conn: Conn, principal: Exporter) -> Response:
    """Kick off an export of one care team's patients (the Group id is the care team's id)."""
    return _kick_off(request, conn, principal, "group", group_id)


def _job(conn: Any, principal: Principal, export_id: UUID) -> jobs.JobStatus:
    job = jobs.job_of(conn, export_id, principal.user_id)
    if job is None:
        raise FhirError(404, "no such export", "not-found")
    return job


@router.get("/$export-status/{export_id}", response_class=Response)
def export_status(export_id: UUID, request: Request, conn: Conn, principal: Exporter) -> Response:
    job = _job(conn, principal, export_id)
    stale = (datetime.now(UTC) - job.heartbeat_at).total_seconds() > _STALE_SECONDS
    if job.state in ("queued", "running") and not stale:
        progress = f"{job.state}: {job.progress}"[:100]
        return Response(status_code=202, headers={"X-Progress": progress, "Retry-After": "2"})
    if job.state != "completed":
        reason = job.error or "the export stopped when the API process running it ended; start it again"
        return JSONResponse(
            fhir.operation_outcome(500, reason, "exception"), status_code=500, media_type=fhir.FHIR_JSON
        )
    manifest = {
        "transactionTime": job.created_at.isoformat(),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [
            {
                "type": f.resource_type,
                "url": f"{base_url(request)}/$export-file/{export_id}/{f.seq}",
                "count": f.line_count,
            }
            for f in jobs.files(conn, export_id)
        ],
        "error": [],
    }
    return JSONResponse(manifest, status_code=200, headers={"Expires": "0"})


@router.delete("/$export-status/{export_id}", status_code=202, response_class=Response)
def cancel_export(export_id: UUID, request: Request, conn: Conn, principal: Exporter) -> Response:
    """Cancel a running export, or delete a finished one's files."""
    _job(conn, principal, export_id)
    jobs.cancel(conn, export_id)
    audit.record(conn, principal, "delete", request.url.path, "ok", client_addr=client_addr(request))
    return Response(status_code=202)


@router.get("/$export-file/{export_id}/{seq}", response_class=Response, responses={200: {"content": {NDJSON: {}}}})
def export_file(export_id: UUID, seq: int, request: Request, conn: Conn, principal: Exporter) -> Response:
    job = _job(conn, principal, export_id)
    body = jobs.file_body(conn, export_id, seq)
    if job.state != "completed" or body is None:
        raise FhirError(404, "no such export file", "not-found")
    audit.record(conn, principal, "read", request.url.path, "ok", client_addr=client_addr(request))

    def chunks() -> Iterator[bytes]:
        yield gzip.decompress(body)

    return StreamingResponse(chunks(), media_type=NDJSON)
