"""The period summary report: a PDF from the patient's real data (readings with zones, an alarm and what was
done, a plan change, adherence), looked at as a PNG of its first page, and journaled to the loopback record system
as a FHIR DocumentReference carrying the PDF."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pypdfium2
import pytest
from fhir.resources.R4B.documentreference import DocumentReference
from psycopg.types.json import Jsonb

from tests.browser.support import ARTIFACTS
from tests.integration.api.support import a_plan, add_user, audit_rows, headers_for, insert_alarm, insert_readings
from tests.integration.journal.receiver import RecordSystem
from tests.integration.journal.support import Journaled
from tests.stack_plugin import login, wait_for

pytestmark = pytest.mark.integration


def _history(db: psycopg.Connection[Any], journaled: Journaled) -> tuple[datetime, datetime]:
    tenant = journaled.tenant
    patient, gateway = tenant.patients[0], tenant.gateways[0].gateway_id
    today = datetime.now(UTC).replace(hour=7, minute=30, second=0, microsecond=0)
    times = [today - timedelta(days=d) for d in range(20, 0, -1)]
    spo2 = [94.0 - (d % 3) - (7 if d == 8 else 0) for d in range(20, 0, -1)]
    insert_readings(db, patient, gateway, "spo2", spo2, times)
    insert_readings(db, patient, gateway, "pulse_rate", [72.0 + d % 5 for d in range(20)], times)
    alarm = insert_alarm(db, patient, severity="red", kind="spo2", opened_minutes_ago=8 * 24 * 60, value=85)
    db.execute(
        "UPDATE alarms SET state = 'resolved', resolved_at = opened_at + interval '40 minutes', "
        "resolution = %s WHERE id = %s",
        ("Ringte pasienten; økte O2 til 2 l/min, ny måling etter 2 t var 92 %.", alarm),
    )
    db.execute(
        "INSERT INTO self_management_plans (patient_id, version, status, body, created_at, activated_at) "
        "VALUES (%s, 1, 'active', %s, now() - interval '15 days', now() - interval '15 days')",
        (patient, Jsonb(a_plan(timezone="UTC"))),
    )
    return today - timedelta(days=21), today


def test_period_report_renders_charts_alarms_and_plan_and_reaches_the_record_as_a_document_reference(
    journaled_tenant: Any, record_system: RecordSystem, api_url: str, db: psycopg.Connection[Any], settings: Any
) -> None:
    journaled: Journaled = journaled_tenant(protocol="copd")
    tenant, patient = journaled.tenant, journaled.tenant.patients[0]
    start, end = _history(db, journaled)
    headers = headers_for(api_url, tenant)
    period = {"start": f"{start:%Y-%m-%d}", "end": f"{end:%Y-%m-%d}"}

    for lang in ("nb", "en"):
        answer = httpx.get(
            f"{api_url}/api/v1/patients/{patient}/reports/period.pdf", headers=headers, params={**period, "lang": lang}
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/pdf" and answer.content.startswith(b"%PDF-")
        pdf = pypdfium2.PdfDocument(answer.content)
        text = pdf[0].get_textpage().get_text_range()
        heading = "Oppsummering av hjemmeoppfølging" if lang == "nb" else "Home monitoring summary"
        assert heading in text and f"Pasient {tenant.team.removeprefix('team-')}-0" in text
        assert ("Oksygenmetning" if lang == "nb" else "Oxygen saturation") in text
        words = " ".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
        assert "økte O2 til 2 l/min" in words
        assert ("Versjon 1" if lang == "nb" else "Version 1") in words
        ARTIFACTS.mkdir(exist_ok=True)
        for i in range(len(pdf)):
            pdf[i].render(scale=1.4).to_pil().save(ARTIFACTS / f"period-report-{lang}-p{i + 1}.png")
    assert audit_rows(db, resource=f"/api/v1/patients/{patient}/reports/period.pdf", patient_id=patient)

    outsider, password, _ = add_user(settings, "nurse", [journaled_tenant().tenant.team])
    refused = httpx.get(
        f"{api_url}/api/v1/patients/{patient}/reports/period.pdf",
        headers=login(api_url, outsider, password),
        params=period,
    )
    assert refused.status_code == 404

    sent = httpx.post(
        f"{api_url}/api/v1/patients/{patient}/reports/period/deliver", headers=headers, json={**period, "lang": "nb"}
    )
    assert sent.status_code == 202, sent.text

    def delivered() -> dict[str, Any] | None:
        with record_system.state.lock:
            found = [r for k, r in record_system.state.resources.items() if k.startswith("DocumentReference?")]
        return found[0] if found else None

    reference = wait_for(delivered, 20, what="the DocumentReference at the record system")
    DocumentReference.model_validate(reference)
    assert record_system.state.invalid == []
    assert reference["subject"]["identifier"]["value"] == journaled.national_ids[0]
    attachment = reference["content"][0]["attachment"]
    assert attachment["contentType"] == "application/pdf" and attachment["language"] == "nb"
    document = base64.b64decode(attachment["data"])
    assert document.startswith(b"%PDF-") and len(document) == attachment["size"]
    assert "Oppsummering" in pypdfium2.PdfDocument(io.BytesIO(document))[0].get_textpage().get_text_range()
    state = db.execute(
        "SELECT state FROM journal_outbox WHERE kind = 'period_report' AND %s = ANY(patient_ids)", (patient,)
    ).fetchone()
    assert state is not None and state[0] == "delivered"
    assert audit_rows(db, resource=f"/api/v1/patients/{patient}/reports/period/deliver", action="journal")
