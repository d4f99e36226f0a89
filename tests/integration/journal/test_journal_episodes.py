"""An episode step journaled to the patient's record: the enrolment document that arrives carries the patient's
active self-management plan as a CarePlan, its limits as Goals, next to the EpisodeOfCare."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.episodeofcare import EpisodeOfCare

from tests.integration.api.support import a_plan
from tests.integration.journal.receiver import RecordSystem
from tests.integration.journal.support import Journaled
from tests.stack_plugin import login, wait_for

pytestmark = pytest.mark.integration


def test_enrolment_arrives_in_the_record_with_the_active_plan_and_its_limits(
    journaled_tenant: Any, record_system: RecordSystem, api_url: str, db: psycopg.Connection[Any]
) -> None:
    journaled: Journaled = journaled_tenant(protocol="copd")
    tenant, patient = journaled.tenant, journaled.tenant.patients[0]
    db.execute(
        "INSERT INTO self_management_plans (patient_id, version, status, body, activated_at) "
        "VALUES (%s, 1, 'active', %s, now())",
        (patient, psycopg.types.json.Jsonb(a_plan())),
    )
    headers = login(api_url, tenant.nurse, tenant.nurse_password)
    body = {"reason": "KOLS med hyppige forverringer", "conditions": ["J44.1"], "protocol": "copd", "plan": "SpO2"}
    enrolled = httpx.post(f"{api_url}/api/v1/patients/{patient}/episodes", headers=headers, json=body)
    assert enrolled.status_code == 201, enrolled.text

    def enrolment() -> dict[str, Any] | None:
        return next(
            (
                d
                for d in list(record_system.state.documents.values())
                if d["entry"][0]["resource"].get("title") == "Varde: Innskrevet i digital hjemmeoppfølging"
            ),
            None,
        )

    doc = wait_for(enrolment, 20, what="the enrolment document in the record")
    Bundle.model_validate(doc)
    assert record_system.state.invalid == []
    resources = {e["fullUrl"]: e["resource"] for e in doc["entry"]}
    by_type = {r["resourceType"]: r for r in resources.values()}
    EpisodeOfCare.model_validate(by_type["EpisodeOfCare"])
    plan = by_type["CarePlan"]
    CarePlan.model_validate(plan)
    assert plan["status"] == "active" and plan["subject"]["reference"] in resources
    goals = {g["id"]: g for g in plan["contained"]}
    assert goals["goal-spo2"]["target"][0]["detailRange"]["low"]["value"] == 90
    assert goals["goal-spo2"]["note"][0]["text"] == "Oksygenmetning: rød under 86 %, gul under 90 %"
    section = doc["entry"][0]["resource"]["section"][-1]
    assert section["title"] == "Egenbehandlingsplan / Self-management plan"
    assert resources[section["entry"][0]["reference"]] == plan
