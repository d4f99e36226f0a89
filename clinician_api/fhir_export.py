"""FHIR Bulk Data export (https://hl7.org/fhir/uv/bulkdata/export.html) of a care team's patients: the export
job (kick-off row → NDJSON files in the database → manifest), and the optional pseudonymised variant.

- `exportable_patients` is the one place that decides whose data an export holds.
- `Pseudonymiser`: per export, a random key gives every patient (and every resource id) a stable pseudonym and
  every patient a date shift of 30–365 days either way. It is allow-list based: only elements known to hold no
  identifier and no free text are kept (`_ALLOWED`), every date among them shifted; everything else is dropped.
- `run_export` writes the files in chunks (gzip, at most `LINES_PER_FILE` resources each) from a server-side cursor
  over the readings, so memory stays flat however many readings there are; a cancelled job stops at the next chunk.
"""

from __future__ import annotations

import gzip
import hmac
import json
import logging
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

from psycopg import Connection

from clinician_api import consent, fhir, fhir_query
from store import fhir_export as jobs
from store.db import LazyPool

EXPORT_TYPES = ("Patient", "Observation", "Device", "CarePlan", "DetectedIssue")
LINES_PER_FILE = 50_000
_BATCH = 5_000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$")
_PSEUDED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "PSEUDED"}

# The allow-list of the pseudonymised variant: per resource type, the elements that are known to hold no direct
# identifier and no free text. Every other element is dropped. A leaf is KEEP (a code, a number, a status or a
# text taken from Varde's own code tables), DATE (shifted by the patient's shift) or REF (a reference whose id is
# replaced by its pseudonym); a nested spec applies to an object, or to each object of a list.
KEEP, DATE, REF = "keep", "date", "ref"
_CODING = {"system": KEEP, "code": KEEP, "display": KEEP}
_CONCEPT = {"coding": _CODING, "text": KEEP}
"""Every CodeableConcept Varde builds is coded, its text from the code tables (kind names, rule codes)."""
_REFERENCE = {"reference": REF}
_QUANTITY = {"value": KEEP, "unit": KEEP, "system": KEEP, "code": KEEP}
_ALLOWED: dict[str, dict[str, Any]] = {
    "Patient": {"active": KEEP, "birthDate": DATE},
    "Observation": {
        "status": KEEP,
        "category": _CONCEPT,
        "code": _CONCEPT,
        "subject": _REFERENCE,
        "effectiveDateTime": DATE,
        "issued": DATE,
        "performer": _REFERENCE,
        "device": _REFERENCE,
        "valueQuantity": _QUANTITY,
        "component": {"code": _CONCEPT, "valueQuantity": _QUANTITY, "dataAbsentReason": _CONCEPT},
    },
    "Device": {
        "status": KEEP,
        "type": _CONCEPT,
        "specialization": {"systemType": _CONCEPT},
        "patient": _REFERENCE,
        "parent": _REFERENCE,
    },
    "CarePlan": {
        "language": KEEP,
        "status": KEEP,
        "intent": KEEP,
        "subject": _REFERENCE,
        "created": DATE,
        "period": {"start": DATE, "end": DATE},
        "contained": {
            "resourceType": KEEP,
            "id": KEEP,
            "lifecycleStatus": KEEP,
            "description": _CONCEPT,
            "subject": _REFERENCE,
            "target": {"measure": _CONCEPT, "detailRange": {"low": _QUANTITY, "high": _QUANTITY}},
        },
        "goal": {"reference": KEEP},
        "activity": {
            "detail": {
                "status": KEEP,
                "code": {"coding": _CODING},
                "scheduledTiming": {"repeat": {"dayOfWeek": KEEP, "timeOfDay": KEEP}},
                "goal": {"reference": KEEP},
            }
        },
    },
    "DetectedIssue": {
        "status": KEEP,
        "code": _CONCEPT,
        "severity": KEEP,
        "patient": _REFERENCE,
        "identifiedDateTime": DATE,
        "implicated": _REFERENCE,
        "mitigation": {"date": DATE},
    },
}
"""Left out on purpose: identifiers, names, telecom, addresses, narratives, notes, translations (`_x`), device
names and model numbers, CarePlan title/description (a clinician's free text) and DetectedIssue.detail (the alarm
text, which spells out the day of a missed measurement)."""
_MITIGATION = {"text": "mitigation"}
log = logging.getLogger("clinician_api.fhir_export")


def exportable_patients(conn: Connection[Any], user_id: UUID, team_id: UUID | None) -> list[UUID]:
    """The patients an export may hold: those of the requester's care teams (of the one team, for a Group
    export), by team membership only; an emergency access never widens an export.

    A patient's reservation against use of their data for research and registries (samtykke / reservasjon)
    excludes them here and nowhere else (`consent.not_reserved_sql("research", …)`)."""
    return jobs.exportable_patients(conn, user_id, team_id, partial(consent.not_reserved_sql, "research"))


@dataclass(frozen=True, slots=True)
class Pseudonymiser:
    """Stable within one export (one key), unlinkable across exports (another key). Pseudonyms of references and
    shifts are remembered: an export repeats the same few patients and devices in every Observation."""

    key: bytes
    _known: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    _shifts: dict[str, timedelta] = field(default_factory=dict, compare=False, repr=False)

    def _digest(self, *parts: object) -> bytes:
        return hmac.digest(self.key, "|".join(str(p) for p in parts).encode(), "sha256")

    def pseudonym(self, resource_type: str, ident: str) -> str:
        return self._digest(resource_type, ident)[:12].hex()

    def _reference(self, reference: str) -> str:
        known = self._known.get(reference)
        if known is None:
            rtype, _, ident = reference.partition("/")
            known = self._known[reference] = f"{rtype}/{self.pseudonym(rtype, ident)}"
        return known

    def shift(self, patient_id: str) -> timedelta:
        """30–365 days earlier or later, never zero."""
        known = self._shifts.get(patient_id)
        if known is None:
            raw = int.from_bytes(self._digest("shift", patient_id)[:4], "big")
            days = 30 + raw % 336
            known = self._shifts[patient_id] = timedelta(days=days if raw & 0x80000000 else -days)
        return known

    def resource(self, resource: dict[str, Any], patient_id: str) -> dict[str, Any]:
        """The resource reduced to its allow-listed elements (`_ALLOWED`), ids replaced, every date shifted."""
        rtype = resource["resourceType"]
        spec = _ALLOWED.get(rtype)
        if spec is None:
            raise ValueError(f"{rtype} has no pseudonymisation allow-list and cannot be exported pseudonymised")
        out: dict[str, Any] = {"resourceType": rtype, "id": self.pseudonym(rtype, str(resource["id"]))}
        out["meta"] = {"security": [_PSEUDED]}
        out.update(self._walk(resource, spec, self.shift(patient_id)))
        if rtype == "Patient" and "birthDate" in out:
            out["birthDate"] = out["birthDate"][:4]  # the (shifted) year only
        for mitigation in out.get("mitigation", []) if rtype == "DetectedIssue" else []:
            mitigation["action"] = dict(_MITIGATION)
        return out

    def _walk(self, node: dict[str, Any], spec: dict[str, Any], shift: timedelta) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            rule = spec.get(key)
            if rule is None:
                continue
            if isinstance(value, list):
                kept: Any = [v for v in (self._leaf(item, rule, shift) for item in value) if v != {}]
            else:
                kept = self._leaf(value, rule, shift)
            if kept != {} and kept != []:
                out[key] = kept
        return out

    def _leaf(self, value: Any, rule: Any, shift: timedelta) -> Any:
        if rule is KEEP:
            return value
        if rule is DATE:
            return _shift_text(value, shift)
        if rule is REF:
            return self._reference(str(value))
        return self._walk(value, rule, shift) if isinstance(value, dict) else {}


def _shift_text(text: str, shift: timedelta) -> str:
    """An ISO date or date-time moved by `shift`; anything else in a date element is refused, never passed on."""
    if not _DATE.match(text):
        raise ValueError("a date element holds something that is not an ISO date")
    if "T" in text:
        return (datetime.fromisoformat(text.replace("Z", "+00:00")) + shift).isoformat()
    return (date.fromisoformat(text) + shift).isoformat()


@dataclass(frozen=True, slots=True)
class ExportJob:
    id: UUID
    user_id: UUID
    team_id: UUID | None
    types: tuple[str, ...]
    since: datetime | None
    pseudonymiser: Pseudonymiser | None


def create(
    conn: Connection[Any],
    *,
    user_id: UUID,
    level: str,
    team_id: UUID | None,
    types: Iterable[str],
    since: datetime | None,
    pseudonymised: bool,
    request_url: str,
) -> UUID:
    """A queued export job, with a fresh pseudonym key if pseudonymised; expired jobs (anyone's) and their files
    are deleted on the way."""
    return jobs.create(
        conn,
        user_id=user_id,
        level=level,
        team_id=team_id,
        types=list(types),
        since=since,
        pseudonymised=pseudonymised,
        pseudonym_key=secrets.token_bytes(32) if pseudonymised else None,
        request_url=request_url,
    )


def _load(conn: Connection[Any], export_id: UUID) -> ExportJob | None:
    started = jobs.start(conn, export_id)
    conn.commit()
    if started is None:
        return None
    key = bytes(started.pseudonym_key) if started.pseudonym_key is not None else None
    return ExportJob(
        started.id,
        started.user_id,
        started.team_id,
        tuple(started.types),
        started.since,
        Pseudonymiser(key) if key else None,
    )


class _Cancelled(Exception):
    pass


class _Files:
    """NDJSON lines gathered into gzip chunks, each written in its own transaction with a heartbeat."""

    def __init__(self, conn: Connection[Any], job: ExportJob) -> None:
        self.conn, self.job, self.seq = conn, job, 0

    def write(self, resource_type: str, resources: Iterator[dict[str, Any]]) -> int:
        count, lines = 0, []
        for resource in resources:
            lines.append(json.dumps(resource, separators=(",", ":"), ensure_ascii=False))
            count += 1
            if len(lines) >= LINES_PER_FILE:
                self._flush(resource_type, lines)
                lines = []
        if lines:
            self._flush(resource_type, lines)
        return count

    def _flush(self, resource_type: str, lines: list[str]) -> None:
        body = gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=5)
        self.seq += 1
        if not jobs.heartbeat(self.conn, self.job.id, f"{resource_type}: file {self.seq}"):
            self.conn.rollback()
            raise _Cancelled
        jobs.add_file(self.conn, self.job.id, self.seq, resource_type, len(lines), body)
        self.conn.commit()


def _observations(conn: Connection[Any], job: ExportJob, patients: list[UUID]) -> Iterator[dict[str, Any]]:
    """Every Observation of the patients, read in order of patient and time through a server-side cursor; the
    components of one blood pressure measurement are adjacent in that order and become one panel."""
    moment: list[fhir.ReadingRow] = []
    for reading in jobs.readings(conn, f"export_{job.id.hex}", patients, job.since, _BATCH):
        if moment and (moment[0].patient_id, moment[0].measured_at) != (reading.patient_id, reading.measured_at):
            yield from reversed(fhir.observations(moment))
            moment = []
        moment.append(reading)
    if moment:
        yield from reversed(fhir.observations(moment))


def _resources(conn: Connection[Any], job: ExportJob, rtype: str, patients: list[UUID]) -> Iterator[dict[str, Any]]:
    """The resources of one type; `conn` is a reading connection of its own (the files are committed on another)."""
    if rtype == "Observation":
        yield from _observations(conn, job, patients)
        return
    for start in range(0, len(patients), 500):
        chunk = patients[start : start + 500]
        if rtype == "Patient":
            yield from fhir_query.patient_resources(conn, chunk)
        elif rtype == "Device":
            yield from fhir_query.device_resources(conn, chunk)
        elif rtype == "CarePlan":
            yield from fhir_query.plan_resources(conn, chunk)
        elif rtype == "DetectedIssue":
            yield from fhir_query.issue_resources(conn, chunk, limit=None)


def _patient_of(resource: dict[str, Any]) -> str:
    if resource["resourceType"] == "Patient":
        return str(resource["id"])
    ref = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
    return str(ref).removeprefix("Patient/")


def _since_filter(job: ExportJob, resources: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for resource in resources:
        updated = resource.get("meta", {}).get("lastUpdated")
        keep = job.since is None or resource["resourceType"] == "Observation" or updated is None
        if keep or datetime.fromisoformat(updated) >= job.since:  # type: ignore[operator]
            yield resource


def run_export(pool: LazyPool, export_id: UUID) -> None:
    """Run one queued export to its end (completed, failed or cancelled) on the app's pool; safe to call from a
    thread."""
    with pool.get().connection() as conn, pool.get().connection() as reader:
        job = _load(conn, export_id)
        if job is None:
            return
        try:
            patients = exportable_patients(conn, job.user_id, job.team_id)
            jobs.set_patient_count(conn, job.id, len(patients))
            conn.commit()
            files = _Files(conn, job)
            for rtype in job.types:
                resources = _since_filter(job, _resources(reader, job, rtype, patients))
                if job.pseudonymiser is not None:
                    p = job.pseudonymiser
                    resources = (p.resource(r, _patient_of(r)) for r in resources)
                files.write(rtype, resources)
                reader.rollback()
            jobs.complete(conn, job.id)
            conn.commit()
        except _Cancelled:
            log.info("fhir_export.cancelled", extra={"event": "fhir_export.cancelled", "export_id": str(job.id)})
        except Exception as exc:
            conn.rollback()
            log.exception("fhir_export.failed", extra={"event": "fhir_export.failed", "export_id": str(job.id)})
            jobs.fail(conn, job.id, f"{type(exc).__name__}: the export failed; see the API log")
            conn.commit()
