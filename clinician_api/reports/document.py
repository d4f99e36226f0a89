"""The period summary PDF journaled to the patient's record as a FHIR R4 DocumentReference, through the record
delivery's durable outbox (clinician_api/journal): a transaction Bundle that creates the DocumentReference only if
its identifier is not there yet, so a resend after a lost answer leaves one copy. The patient is referred to by
identifier (the record's own patient), never created."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection

from clinician_api import fhir
from clinician_api.journal import identity, outbox
from clinician_api.reports.period import PeriodReport
from store import journal_documents

# LOINC 34133-9 "Summary of episode note": a summary of a period of care, for the GP or the hospital record.
SUMMARY_CODE = ("34133-9", "Summary of episode note")
TITLES = {"nb": "Oppsummering av hjemmeoppfølging", "en": "Home monitoring summary"}


class NoRecordEndpoint(LookupError):
    """The patient's organisation has no record system to journal to (or the patient reserved against sharing)."""


def document_reference_bundle(report: PeriodReport, pdf: bytes, lang: str, created_at: datetime) -> dict[str, Any]:
    """A transaction Bundle with one DocumentReference whose attachment is the PDF itself."""
    digest = hashlib.sha256(pdf).hexdigest()
    patient = report.patient
    doc_id = identity.stable_id("period-report", patient.id, report.start.isoformat(), report.end.isoformat(), digest)
    bundle_id = identity.stable_id("period-report-bundle", doc_id)
    identifier = {"system": identity.RFC3986, "value": identity.urn(doc_id)}
    title = f"{TITLES[lang]} {report.first_day:%d.%m.%Y}–{report.last_day:%d.%m.%Y}"
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": str(doc_id),
        "identifier": [identifier],
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": fhir.LOINC, "code": SUMMARY_CODE[0], "display": SUMMARY_CODE[1]}]},
        "subject": identity.patient_reference(patient.id, patient.national_id, conditional=True),
        "date": created_at.isoformat(),
        "description": title,
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "language": lang,
                    "data": base64.b64encode(pdf).decode("ascii"),
                    "size": len(pdf),
                    "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode("ascii"),  # noqa: S324 - FHIR's hash is SHA-1
                    "title": title,
                    "creation": created_at.isoformat(),
                }
            }
        ],
        "context": {"period": {"start": report.start.isoformat(), "end": report.end.isoformat()}},
    }
    if patient.organisation:
        _org_id, org_name, org_number = patient.organisation
        resource["custodian"] = {
            "identifier": {"system": identity.ORGANISATION_NUMBER, "value": org_number},
            "display": org_name,
        }
    return {
        "resourceType": "Bundle",
        "id": str(bundle_id),
        "identifier": {"system": identity.RFC3986, "value": identity.urn(bundle_id)},
        "type": "transaction",
        "entry": [
            {
                "fullUrl": identity.urn(doc_id),
                "resource": resource,
                "request": {
                    "method": "POST",
                    "url": "DocumentReference",
                    "ifNoneExist": f"identifier={identifier['system']}|{identifier['value']}",
                },
            }
        ],
    }


def enqueue(conn: Connection[Any], report: PeriodReport, pdf: bytes, lang: str, created_at: datetime) -> UUID:
    """Put the report in the outbox for the record system of the patient's organisation, in the caller's
    transaction; the journal worker delivers it. Raises NoRecordEndpoint when there is none to deliver to."""
    endpoint_id = journal_documents.patient_endpoint(conn, report.patient.id, outbox.may_share)
    if endpoint_id is None:
        raise NoRecordEndpoint("the patient's organisation has no record system, or the patient reserved against it")
    bundle = document_reference_bundle(report, pdf, lang, created_at)
    outbox.insert(
        conn,
        kind="period_report",
        dedupe_key=f"period-report:{bundle['entry'][0]['resource']['id']}",
        endpoint_id=endpoint_id,
        patient_ids=[report.patient.id],
        bundle=bundle,
    )
    return UUID(bundle["id"])
