"""Who is who in a record system: Norwegian identifier systems (OIDs) for patients, organisations and health
personnel, the stable ids that make a resend carry the same identifiers, and redaction of national ids from any
text that may reach a log, an API answer or the outbox's error column."""

from __future__ import annotations

import re
import uuid
from typing import Any
from uuid import UUID

from clinician_api.fhir import human_name, national_identifier
from clinician_api.fhir_coding import NO_BASIS_ORGANIZATION, NO_BASIS_PRACTITIONER, national_id_system
from store.journal_documents import Organisation, Practitioner

ORGANISATION_NUMBER = "urn:oid:2.16.578.1.12.4.1.4.101"
HPR_NUMBER = "urn:oid:2.16.578.1.12.4.1.4.4"
RFC3986 = "urn:ietf:rfc:3986"
VARDE_PATIENT = "urn:varde:patient"
VARDE_READING = "urn:varde:reading"
VARDE_DEVICE = "urn:varde:device"
VARDE_USER = "urn:varde:user"
VARDE_ALARM = "urn:varde:alarm"

_NAMESPACE = uuid.UUID("3b0f6a2e-9d4c-5e71-8c2a-6f1d0b7e4a93")
_NATIONAL_ID = re.compile(r"(?<!\d)\d{6}\s?\d{5}(?!\d)")


def stable_id(*parts: object) -> UUID:
    """A UUIDv5 of the parts: the same alarm, reading or batch always gets the same Bundle and resource ids."""
    return uuid.uuid5(_NAMESPACE, "|".join(str(p) for p in parts))


def urn(ident: UUID) -> str:
    return f"urn:uuid:{ident}"


def patient_identifiers(patient_id: UUID, national_id: str | None) -> list[dict[str, str]]:
    """The person number (fødselsnummer, D-nummer or H-nummer, the system chosen by the number) first when known,
    then Varde's own id."""
    identifiers = [national_identifier(national_id)] if national_id else []
    return [*identifiers, {"system": VARDE_PATIENT, "value": str(patient_id)}]


def patient_key(patient_id: UUID, national_id: str | None) -> dict[str, str]:
    """The one identifier the record system knows the patient by: the person number, else Varde's id."""
    if national_id:
        return {"system": national_id_system(national_id), "value": national_id}
    return {"system": VARDE_PATIENT, "value": str(patient_id)}


def patient_search(patient_id: UUID, national_id: str | None) -> str:
    """The FHIR search that finds the patient in the record system."""
    key = patient_key(patient_id, national_id)
    return f"identifier={key['system']}|{key['value']}"


def patient_reference(patient_id: UUID, national_id: str | None, *, conditional: bool) -> dict[str, Any]:
    """A reference to the patient as the record system already has them, never a patient to create: a
    conditional reference (`Patient?identifier=…`, resolved by the receiver in a transaction; no match fails the
    transaction) and the identifier itself (a logical reference, for a collection)."""
    key = patient_key(patient_id, national_id)
    reference: dict[str, Any] = {"identifier": key}
    if conditional:
        reference = {"reference": f"Patient?{patient_search(patient_id, national_id)}", **reference}
    return reference


def organisation(row: Organisation) -> dict[str, Any]:
    """Claims no-basis-Organization (the organisation number is its identifier)."""
    return {
        "resourceType": "Organization",
        "id": str(row.id),
        "meta": {"profile": [NO_BASIS_ORGANIZATION]},
        "identifier": [{"system": ORGANISATION_NUMBER, "value": row.org_number}],
        "active": True,
        "name": row.name,
    }


def practitioner(row: Practitioner) -> dict[str, Any]:
    """Claims no-basis-Practitioner; the name as family/given."""
    identifiers = [{"system": HPR_NUMBER, "value": row.hpr_number}] if row.hpr_number else []
    return {
        "resourceType": "Practitioner",
        "id": str(row.id),
        "meta": {"profile": [NO_BASIS_PRACTITIONER]},
        "identifier": [*identifiers, {"system": VARDE_USER, "value": row.username}],
        "active": True,
        "name": [human_name(row.display_name or row.username)],
    }


def redact(text: str) -> str:
    """Text with anything shaped like a national identity number (11 digits) masked."""
    return _NATIONAL_ID.sub("***********", text)
